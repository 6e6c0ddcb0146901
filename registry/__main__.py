"""``python -m registry ...``: the same command line as ``prompt-registry ...``."""

from registry.cli import main

main()
