"""python -m bench: the exporter against the ARM simulator; prints one table with PASS/FAIL per target."""

from .cli import main

raise SystemExit(main())
