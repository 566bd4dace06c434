"""``python -m offline.corpus``: the ``build-corpus`` command on its own."""

import sys

from offline.corpus.command import main

sys.exit(main())
