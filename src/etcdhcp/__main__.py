"""`python -m etcdhcp` runs the daemon."""

from etcdhcp.daemon import main

raise SystemExit(main())
