"""`voxclone clone` and `voxclone eval` from the command line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import SHARED_DATA

CLIP = SHARED_DATA / "1034-121119-0000.flac"


def run(*args: str, data_dir, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "VOXCLONE_DATA_DIR": str(data_dir), **env}
    return subprocess.run([sys.executable, "-m", "voxclone.cli", *args], capture_output=True, text=True, env=environment, timeout=600)


@pytest.mark.slow
def test_clone_then_eval_from_the_command_line(tmp_path):
    data = tmp_path / "data"
    cloned = run("clone", "--name", "Reader", "--labels", "accent=american", str(CLIP), data_dir=data, VOXCLONE_ENROLMENT_TIME_BUDGET_S="6")
    assert cloned.returncode == 0, cloned.stderr
    assert "is ready" in cloned.stdout and "similarity" in cloned.stdout
    assert "100%" in cloned.stderr  # the progress bar ran to the end
    report = tmp_path / "report.html"
    scored = run("eval", "--voice", "Reader", "--report", str(report), str(CLIP), data_dir=data)
    assert scored.returncode == 0, scored.stderr
    assert '"similarity"' in scored.stdout and '"wer"' in scored.stdout
    page = report.read_text()
    assert page.count("data:image/png;base64,") == 2  # similarity per sentence and pitch plots


def test_clone_of_a_bad_file_exits_non_zero_with_the_reason(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"definitely not audio")
    result = run("clone", "--name", "Nope", str(bad), data_dir=tmp_path / "data")
    assert result.returncode != 0
    assert "could not decode" in result.stderr and "Traceback" not in result.stderr
