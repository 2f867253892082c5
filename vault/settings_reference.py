"""The configuration reference, generated from :class:`~vault.config.Settings`.

docs/configuration.md is this module's output (``vault settings-reference --write``), and
a test compares the two, so the reference cannot drift from the code: every setting, its
environment variable, type, default, bounds and description come from the model itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from vault.config import Settings

HEADER = """# Configuration reference

Generated from `vault.config.Settings` by `vault settings-reference --write
docs/configuration.md`; the test suite fails when the two differ. Every setting is read
from an environment variable `VAULT_<NAME>` (or given to `Settings(...)` in code), once,
when a command starts; nothing else in the vault reads the environment. Paths that are
unset resolve under `VAULT_DATA_DIR`. Secrets (`SecretStr`) are never printed.

| variable | type | default | allowed | what it does |
|---|---|---|---|---|
"""


def _type_name(info: FieldInfo) -> str:
    text = str(info.annotation).replace("typing.", "").replace("pydantic.types.", "")
    text = text.replace("pathlib._local.", "").replace("pathlib.", "")
    for plain in ("str", "int", "float", "bool"):
        text = text.replace(f"<class '{plain}'>", plain)
    return text.replace("<class '", "").replace("'>", "").replace("NoneType", "None")


def _default(name: str, info: FieldInfo) -> str:
    if info.default_factory is not None:
        return "(computed)"
    value: Any = info.default
    if value is PydanticUndefined:
        return "(required)"
    if value is None:
        return "unset"
    if isinstance(value, Path):
        return f"`{value}`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{value}`"


def _bounds(info: FieldInfo) -> str:
    parts = []
    for meta in info.metadata:
        if isinstance(meta, Ge):
            parts.append(f">= {meta.ge}")
        elif isinstance(meta, Gt):
            parts.append(f"> {meta.gt}")
        elif isinstance(meta, Le):
            parts.append(f"<= {meta.le}")
        elif isinstance(meta, Lt):
            parts.append(f"< {meta.lt}")
        elif getattr(meta, "pattern", None):
            parts.append(f"matches `{meta.pattern}`")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def reference_markdown() -> str:
    """docs/configuration.md as the current Settings model describes it."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    rows = []
    for name, info in Settings.model_fields.items():
        rows.append(
            "| `{}` | {} | {} | {} | {} |".format(
                f"{prefix}{name.upper()}",
                _cell(_type_name(info)),
                _cell(_default(name, info)),
                _cell(_bounds(info)),
                _cell(info.description or ""),
            )
        )
    return HEADER + "\n".join(rows) + "\n"
