"""Fuzz the HTTP API from its own OpenAPI schema with schemathesis (issue 6: zero 5xx).

    .venv/bin/python -m pip install -e '.[bench]'   # schemathesis, pinned
    .venv/bin/python bench/fuzz.py [--examples 20]

Runs `st run` against a real server process on 127.0.0.1 with authentication on (every operation
gets a valid admin key), a short text limit so generated inputs synthesise quickly, and only the
`not_a_server_error` check: any 5xx fails. Bounded by --examples per operation.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from server import ServerProcess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=20)
    args = parser.parse_args()
    st = shutil.which("st") or str(Path(sys.executable).with_name("st"))
    env = {"VOXCLONE_API_KEYS": "fuzz-key", "VOXCLONE_MAX_TEXT_CHARS": "120"}
    with ServerProcess(**env) as server:
        result = subprocess.run(
            [
                st,
                "--config-file",
                str(Path(__file__).with_name("schemathesis.toml")),
                "run",
                f"{server.url}/openapi.json",
                "-H",
                "Authorization: Bearer fuzz-key",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                str(args.examples),
                "--phases",
                "examples,coverage,fuzzing",
                "--request-timeout",
                "120",
            ],
            capture_output=True,
            text=True,
        )
    print(result.stdout[-6000:], result.stderr[-2000:])
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
