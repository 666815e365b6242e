"""The README documents every setting and the two commands."""

from __future__ import annotations

from pathlib import Path

from chatkeep.config import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    missing = [name for name in Settings.model_fields if f"`CHATKEEP_{name.upper()}`" not in README]
    assert not missing, f"README lacks: {missing}"


def test_the_readme_shows_the_two_commands() -> None:
    assert "make run" in README and "make test" in README
