"""`python -m cem`: the `cem` command."""

from cem.cli import main

raise SystemExit(main())
