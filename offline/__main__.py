"""``python -m offline``: the training and evaluation pipeline's command line."""

import sys

from offline.cli import main

sys.exit(main())
