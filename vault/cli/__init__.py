"""The ``vault`` command line: serve, chain, doctor, bench.

Every command builds its :class:`Settings` from the environment. Errors the vault
raises on purpose print one line ``error[code]: message`` and exit non-zero; no
stack traces reach the operator.
"""

from __future__ import annotations

import sys

import typer

from vault.cli.bench import bench_app
from vault.cli.chain import chain_app
from vault.cli.demo import demo
from vault.cli.doctor import doctor
from vault.cli.operator import audit_app, providers_app
from vault.cli.records import import_bundle, keys_app, sweep, verify
from vault.cli.serve import serve
from vault.cli.settings_doc import settings_reference
from vault.errors import VaultError

app = typer.Typer(
    help="Biometric-gated health data vault with on-chain consent.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(serve)
app.command()(doctor)
app.command()(demo)
app.command()(verify)
app.command("import-bundle")(import_bundle)
app.command("settings-reference")(settings_reference)
app.command()(sweep)
app.add_typer(chain_app, name="chain")
app.add_typer(keys_app, name="keys")
app.add_typer(providers_app, name="providers")
app.add_typer(audit_app, name="audit")
app.add_typer(bench_app, name="bench")


def main() -> None:
    try:
        app()
    except VaultError as exc:
        typer.echo(f"error[{exc.code}]: {exc.message}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
