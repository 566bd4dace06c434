"""Sub-commands of ``python -m offline``; each module has ``register(subparsers)`` and ``run(args)``."""
