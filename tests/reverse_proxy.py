"""A real nginx (Debian's package) in front of a server on loopback, for the proxy tests and bench/proxy.py.

It runs as a plain child process (`daemon off`) with its configuration, pid file, logs and temporary
files in a folder of its own, so it needs no root and leaves nothing behind. The locations are the
ones the README's nginx section gives, minus TLS; `proxy_buffering` is left at nginx's default (on)
on purpose: streamed responses must get through unbuffered because of the headers voxclone sends.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

NGINX = "/usr/sbin/nginx"
# Started as root, nginx's workers would drop to `nobody`, who cannot use this process's temporary folder.
_USER = "user root;" if os.geteuid() == 0 else ""

_CONFIG = """
{user}
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 60m;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port};
        # Under a sub-path, prefix stripped (the server runs without --root-path).
        location /voice/ {{
            proxy_pass http://127.0.0.1:{upstream}/;
{common}
        }}
        # Under a sub-path, prefix kept (the server runs with --root-path /kept).
        location /kept/ {{
            proxy_pass http://127.0.0.1:{upstream};
{common}
        }}
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
{common}
        }}
    }}
}}
"""
_COMMON = """
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 300s;
"""


def nginx_available() -> bool:
    return Path(NGINX).exists() or shutil.which("nginx") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nginx:
    """nginx on 127.0.0.1:port proxying to 127.0.0.1:upstream_port; a context manager."""

    def __init__(self, upstream_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="voxclone-nginx-")
        tmp = Path(self._tmp.name)
        for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp / folder).mkdir()
        common = _COMMON.strip("\n")
        (tmp / "nginx.conf").write_text(
            _CONFIG.format(user=_USER, tmp=tmp, port=self.port, upstream=upstream_port, common=common)
        )
        self._conf = tmp / "nginx.conf"

    def __enter__(self) -> Nginx:
        binary = NGINX if Path(NGINX).exists() else shutil.which("nginx") or NGINX
        prefix = self._conf.parent
        self.process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(self._conf), "-e", str(prefix / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nginx exited: {self.process.stderr.read().decode() if self.process.stderr else ''}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start listening")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self._tmp.cleanup()
