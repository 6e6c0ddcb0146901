"""``prompt-registry ...``: the command-line interface (click).

Each command group lives in its own module and registers itself on the main group.
Errors are one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import importlib

from .base import main

#: modules that add commands to ``main``; each defines ``register(group)``
COMMAND_MODULES = (
    "registry.cli.db",
    "registry.cli.prompts",
    "registry.cli.serve",
    "registry.cli.run",
    "registry.cli.users",
    "registry.cli.apikeys",
    "registry.cli.experiments",
    "registry.cli.suites",
    "registry.cli.testing",
)

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(main)

__all__ = ["main"]
