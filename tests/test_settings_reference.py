"""docs/configuration.md is what Settings says: regenerate it with `vault settings-reference`."""

from __future__ import annotations

from pathlib import Path

from vault.config import Settings
from vault.settings_reference import reference_markdown

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_the_configuration_reference_matches_settings() -> None:
    assert DOC.read_text() == reference_markdown(), (
        "docs/configuration.md is stale: run `vault settings-reference --write "
        "docs/configuration.md`"
    )


def test_every_setting_is_in_the_reference() -> None:
    text = reference_markdown()
    for name in Settings.model_fields:
        assert f"`VAULT_{name.upper()}`" in text
