"""Sub-commands of the ``rtag`` command line, one module each."""
