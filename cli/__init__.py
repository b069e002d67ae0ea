"""The `qa` program: one Typer app that mounts each package's commands.

It lives above every package (`service -> qa -> index`, `eval -> qa -> index`), so that no package imports
another one's commands: `qa` (index, ask, train-reader, ...), `service` (serve) and `eval` (eval, calibrate,
bench) each expose `register(app)`, and each module imports nothing heavy until its command runs, so
`qa --help` stays fast.
"""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES = (
    "qa.commands",  # index, ask
    "qa.training.cli",  # train-reader, eval-reader, export-reader
    "service.cli",  # serve
    "eval.cli",  # eval
    "eval.calibrate_cli",  # calibrate
    "eval.bench_cli",  # bench ...
)


def build_app() -> typer.Typer:
    app = typer.Typer(
        add_completion=False, no_args_is_help=True, help="Extractive question answering over biomedical abstracts."
    )
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)
    return app


app = build_app()


def main() -> None:
    app()
