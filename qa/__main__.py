"""`python -m qa` runs the tsqa command line."""

from qa.cli import main

raise SystemExit(main())
