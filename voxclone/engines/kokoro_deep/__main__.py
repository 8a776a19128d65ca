"""`python -m voxclone.engines.kokoro_deep JOB_DIR`: run (or resume) one deep fit laid out by job.write_job.

Exit status 0 when the job finished (whether or not the deep voice was accepted: see result.json),
1 when it failed (progress.json says why). Safe to kill at any time and to start again.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .run import run_job

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m voxclone.engines.kokoro_deep JOB_DIR")
    sys.exit(run_job(Path(sys.argv[1])))
