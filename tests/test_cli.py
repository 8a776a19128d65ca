"""The `voxclone` command: say, voices, serve; clear errors and non-zero exits on bad input."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import TONE, decode_audio, serve_tone, wait_healthy
from make_tone_model import SECONDS_PER_CHAR

VOXCLONE = [sys.executable, "-m", "voxclone.cli"]


@pytest.fixture
def run(tone_model: Path, tmp_path: Path):
    """Run `voxclone` in a subprocess over a fresh data dir, with the tone voice as the default."""

    def run(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            **os.environ,
            "VOXCLONE_DATA_DIR": str(tmp_path / "d"),
            "VOXCLONE_EXTRA_VOICE_PATHS": str(tone_model),
            "VOXCLONE_DEFAULT_VOICE": TONE,
            **env,
        }
        return subprocess.run(
            [*VOXCLONE, *args], capture_output=True, text=True, env=environment, input=stdin, timeout=120
        )

    return run


def test_say_writes_an_mp3_file(tmp_path, run):
    out = tmp_path / "hello.mp3"
    text = "Hello from the command line."
    result = run("say", "--voice", TONE, "--out", str(out), text)
    assert result.returncode == 0, result.stderr
    audio, rate = decode_audio(out.read_bytes())
    assert rate == 16_000 and audio.size / rate == pytest.approx(len(text) * SECONDS_PER_CHAR, abs=0.1)
    assert "Traceback" not in result.stderr


def test_say_reads_standard_input(tmp_path, run):
    out = tmp_path / "stdin.wav"
    result = run("say", "--out", str(out), "-", stdin="Words from a pipe.")
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 10_000


@pytest.mark.slow
def test_say_speaks_with_kokoro(tmp_path, run):
    out = tmp_path / "hello.mp3"
    result = run("say", "--voice", "jm_kumo", "--out", str(out), "Hello from the command line.")
    assert result.returncode == 0, result.stderr
    audio, rate = decode_audio(out.read_bytes())
    assert 1.0 < audio.size / rate < 5.0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("say", "--voice", "nobody", "--out", "x.wav", "Hi."), "no voice named"),
        (("say", "--out", "x.xyz", "Hi."), "cannot write"),
        (("say", "--speed", "9", "--out", "x.wav", "Hi."), "speed"),
        (("say", "--out", "x.wav", "..."), "speakable"),
    ],
)
def test_bad_input_gives_a_message_and_non_zero_exit(run, args, needle):
    result = run(*args)
    assert result.returncode != 0
    assert needle in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_voices_lists_the_library(run):
    result = run("voices")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "NAME", "ENGINE"]
    assert any(line.startswith("jm_kumo") and "kokoro" in line for line in lines)
    assert any(line.startswith("joe") and "piper" in line for line in lines)
    assert any(line.startswith(TONE) and "tone" in line for line in lines)


def test_serve_answers_health_and_speech(tmp_path, tone_model, run):
    assert run("voices").returncode == 0  # a library that has Kokoro's stock voices, then served without Kokoro
    server, url, log = serve_tone(tmp_path, tone_model)
    try:
        wait_healthy(url, server, seconds=60)
        response = httpx.get(f"{url}/speak_as/{TONE}", params={"prompt": "Served."}, timeout=60)
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/wav"
        health = httpx.get(f"{url}/health", timeout=5).json()
        assert health["engines"]["kokoro"]["state"] == "disabled" and health["engines"]["tone"]["state"] == "ready"
        refused = httpx.get(f"{url}/speak_as/jm_kumo", params={"prompt": "Hi."}, timeout=10)
        assert refused.status_code == 503 and "disabled" in refused.json()["detail"]["message"]
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def test_serve_on_ray_refuses_secrets_in_the_config_file(tmp_path, run):
    """Ray shows deployment arguments in its dashboard: keys must come from the environment."""
    config = tmp_path / "voxclone.toml"
    config.write_text('api_keys = ["a-long-secret-admin-key-0123456789"]\n')
    result = run("serve", "--ray", "--config", str(config))
    assert result.returncode != 0
    assert "api_keys" in result.stderr and "environment" in result.stderr
    assert "a-long-secret-admin-key" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_serve_on_ray_speaks_without_the_dashboard_and_stops_whole(tmp_path, tone_model):
    """`voxclone serve --ray` starts a Ray cluster, serves through Serve's proxy, and leaves no process
    behind on Ctrl-C; the cluster runs none of the dashboard's processes unless --ray-dashboard."""
    psutil = pytest.importorskip("psutil")
    pytest.importorskip("ray", reason="the scale extra (pip install 'voxclone[scale]') runs this")
    server, url, log = serve_tone(tmp_path, tone_model, "--ray", "--replicas", "1")
    cluster: list = []
    try:
        wait_healthy(url, server, seconds=300)
        response = httpx.get(f"{url}/speak_as/{TONE}", params={"prompt": "Served by Ray."}, timeout=60)
        assert response.status_code == 200
        audio, rate = decode_audio(response.content)
        assert rate == 16_000 and audio.size / rate == pytest.approx(len("Served by Ray.") * SECONDS_PER_CHAR, abs=0.1)
        cluster = psutil.Process(server.pid).children(recursive=True)
        titles = []
        for process in cluster:
            with contextlib.suppress(psutil.Error):  # one may end between listing and reading
                titles.append(" ".join(process.cmdline()))
        assert any("raylet" in t for t in titles) and any("voxclone:synthesis" in t for t in titles)
        assert not [t for t in titles if "ray-dashboard-" in t], "the dashboard's modules run though not asked for"
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C, as a person stops it
        code = server.wait(timeout=120)
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
    _, alive = psutil.wait_procs(cluster, timeout=30)
    assert not alive, f"left running: {[p.pid for p in alive]}"
