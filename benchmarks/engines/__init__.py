"""One runner module per engine; each defines ``ENGINE``, a ``benchmarks.harness.Engine``."""
