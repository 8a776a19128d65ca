"""`voxclone clone` and `voxclone eval` from the command line."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import soundfile
from conftest import SHARED_DATA
from test_enrolment import FORMATS, encode_as

CLIP = SHARED_DATA / "1034-121119-0000.flac"


def run(*args: str, data_dir, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "VOXCLONE_DATA_DIR": str(data_dir), **env}
    return subprocess.run(
        [sys.executable, "-m", "voxclone.cli", *args], capture_output=True, text=True, env=environment, timeout=600
    )


@pytest.mark.slow
def test_clone_then_eval_from_the_command_line(tmp_path):
    data = tmp_path / "data"
    recording = tmp_path / "recording.webm"  # as a browser's MediaRecorder saves it
    recording.write_bytes(encode_as(*soundfile.read(CLIP, dtype="float32"), *FORMATS["webm"]))
    cloned = run(
        "clone",
        "--name",
        "Reader",
        "--labels",
        "accent=american",
        str(recording),
        data_dir=data,
        VOXCLONE_ENROLMENT_TIME_BUDGET_S="6",
    )
    assert cloned.returncode == 0, cloned.stderr
    assert "is ready" in cloned.stdout and "similarity" in cloned.stdout
    assert "100%" in cloned.stderr  # the progress bar ran to the end
    report = tmp_path / "report.html"
    scored = run("eval", "--voice", "Reader", "--sentences", "2", "--report", str(report), str(CLIP), data_dir=data)
    assert scored.returncode == 0, scored.stderr
    scores = json.loads(scored.stdout)
    assert 0.0 < scores["similarity"] <= 1.0 and 0.0 <= scores["wer"] <= 0.5
    assert 1.0 <= scores["dnsmos"] <= 5.0 and scores["rtf"] > 0
    if importlib.util.find_spec("resemblyzer"):  # the optional `judge` extra adds GE2E
        assert 0.0 < scores["similarity_ge2e"] <= 1.0
    page = report.read_text()
    assert page.count("data:image/png;base64,") == 2  # similarity per sentence and pitch plots


def test_clone_of_a_bad_file_exits_non_zero_with_the_reason(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"definitely not audio")
    result = run("clone", "--name", "Nope", str(bad), data_dir=tmp_path / "data")
    assert result.returncode != 0
    assert "could not decode" in result.stderr and "Traceback" not in result.stderr
