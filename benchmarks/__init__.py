"""pardag's benchmark suite: pardag and the engines users would pick instead, side by side.

See benchmarks/README.md; ``python -m benchmarks.run --help``.
"""
