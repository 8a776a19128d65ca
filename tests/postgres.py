"""A private PostgreSQL cluster for the tests: Debian's server binaries run on a Unix socket in a temporary
folder (as the `postgres` user when the tests run as root: PostgreSQL refuses to run as root), one
fresh database per test, copied from a template that already has voxclone's schema.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg


def _binary(name: str) -> str:
    found = shutil.which(name) or max(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), default=None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: apt-get install postgresql (scripts/test.sh does)")
    return found


class PostgresCluster:
    """`initdb` + `pg_ctl start` in a temporary folder; `url(name)` for a database in it."""

    def __init__(self, *, durable: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="voxclone-pg-"))
        self.data = self.root / "data"
        self.port = 5432  # on a Unix socket in our own folder: no TCP port, no clash with another server
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
        # Tests need no durability across power cuts; bench/kill9.py asks for it (`durable`).
        self._options = "" if durable else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresCluster:
        self._run(_binary("initdb"), "-D", str(self.data), "-U", "voxclone", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-k {self.root} -c listen_addresses='' -c max_connections=300 {self._options}"
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://voxclone@/{database}?host={self.root}&port={self.port}"

    def create_database(self, template: str | None = None) -> str:
        """A new empty database (or a copy of the database named `template`); returns its name."""
        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        return name

    def stop(self) -> None:
        try:
            self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
