"""``vault settings-reference``: print (or write) the configuration reference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

WriteTo = Annotated[
    Path | None, typer.Option(help="Write the reference here instead of printing it.")
]


def settings_reference(write: WriteTo = None) -> None:
    """The configuration reference generated from Settings (docs/configuration.md)."""
    from vault.settings_reference import reference_markdown

    text = reference_markdown()
    if write is None:
        typer.echo(text, nl=False)
    else:
        write.write_text(text)
