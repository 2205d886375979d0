"""``python -m lrlab`` is the ``lrlab`` command."""

from lrlab.cli.main import main

raise SystemExit(main())
