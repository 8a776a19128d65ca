"""The README's settings table documents every setting there is, and nothing that is not."""

from __future__ import annotations

import re

from conftest import REPO

from voxclone.settings import Settings


def test_every_setting_is_in_the_readme_table_and_every_row_is_a_setting():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `VOXCLONE_([A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))
    settings = {name.upper() for name in Settings.model_fields}
    assert documented == settings, (
        f"missing from README: {settings - documented}; not settings: {documented - settings}"
    )
