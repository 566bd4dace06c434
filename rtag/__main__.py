"""``python -m rtag`` runs the command line."""

import sys

from rtag.cli import main

sys.exit(main())
