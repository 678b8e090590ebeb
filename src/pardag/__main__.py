"""``python -m pardag``: the same as the ``pardag`` command."""

from pardag.cli import main

raise SystemExit(main())
