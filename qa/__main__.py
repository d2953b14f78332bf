"""`python -m qa` runs the tsqa command line."""

from qa.app.cli import main

raise SystemExit(main())
