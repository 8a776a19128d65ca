"""The README's SDK compatibility table is generated from tests/sdk/calls.json and must match it."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_readme_sdk_table_is_current():
    check = subprocess.run(
        [sys.executable, "scripts/sdk_table.py", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
