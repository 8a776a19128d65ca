"""A voxclone server in a child process on 127.0.0.1, for benchmarks that must not share its CPU time
or GIL with the client measuring it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

OUT = Path(__file__).parent / "out"
# Benchmarks measure serving, not refusing: the per-client rate limit they run under.
UNLIMITED = "1000000/minute"


def save(name: str, result: object) -> None:
    """Print a benchmark's result and keep it as bench/out/NAME.json."""
    import json

    print(json.dumps(result, indent=2))
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=2))


class ServerProcess:
    """`voxclone serve` in a child process; `args` are more serve options (`--ray --replicas 2`)."""

    def __init__(self, *args: str, startup_s: float = 120.0, **env: str) -> None:
        self.args = args
        self.startup_s = startup_s
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._tmp = tempfile.TemporaryDirectory()
        # The rate limit is raised unless a benchmark sets its own.
        self._env = {
            **os.environ,
            "VOXCLONE_DATA_DIR": self._tmp.name,
            "VOXCLONE_LOG_LEVEL": "warning",
            "VOXCLONE_RATE_LIMIT": UNLIMITED,
            **env,
        }

    def __enter__(self) -> ServerProcess:
        self._log = open(Path(self._tmp.name) / "server.log", "w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voxclone.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *self.args,
            ],
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {self._log.name}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.3)
        raise RuntimeError("server did not start")

    def rss_mib(self, field: str = "VmRSS") -> float:
        """The server's resident memory now (VmRSS) or at its peak so far (VmHWM)."""
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def __exit__(self, *exc: object) -> None:
        # Ctrl-C, as a person would stop it: `--ray` then shuts its Ray cluster down too.
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        self._tmp.cleanup()
