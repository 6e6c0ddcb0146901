"""``prompt-registry ...``: the command-line interface (click).

Each command group lives in its own module and defines ``register(group)``; they are added to
the main group here, in help order. A new command module is added to this list.
"""

from __future__ import annotations

from . import apikeys, batch, db, experiments, prompts, run, serve, suites, testing, users, worker
from .base import main

for _module in (
    db,
    prompts,
    serve,
    worker,
    run,
    users,
    apikeys,
    experiments,
    suites,
    batch,
    testing,
):
    _module.register(main)

__all__ = ["main"]
