"""``vault bench ...``: benchmark commands. Each delegates to ``vault.bench.<area>``."""

from __future__ import annotations

import typer

bench_app = typer.Typer(help="Measure accuracy and speed; print figures.", no_args_is_help=True)
