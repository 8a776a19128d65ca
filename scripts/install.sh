#!/usr/bin/env bash
# Install voxclone into ./.venv (Python 3.11). Usage: scripts/install.sh [EXTRAS], e.g. "piper,test".
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-piper}"
python=$(command -v python3.11 || command -v python3)
"$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), "voxclone needs Python 3.11"'
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade "pip==25.3"
.venv/bin/python -m pip install --quiet -e ".[$extras]"
if [[ ",$extras," == *",deep,"* || ",$extras," == *",test,"* ]]; then
  # The deep clone (and its tests) need torch (this pin takes the CPU build on this disk) and
  # kokoro's model code, without kokoro's declared deps (misaki pulls a CUDA torch): see pyproject.
  .venv/bin/python -m pip install --quiet "torch==2.13.0" -e ".[deep]"
  .venv/bin/python -m pip install --quiet --no-deps "kokoro==0.9.4"
fi
if [[ ",$extras," == *",test,"* ]]; then
  # The speaker-similarity judge (resemblyzer, GE2E) needs torch: this pin takes the CPU build on
  # this disk. resemblyzer goes in without its declared deps (`typing`, `webrtcvad`): see pyproject.
  .venv/bin/python -m pip install --quiet "torch==2.13.0" -e ".[judge]"
  .venv/bin/python -m pip install --quiet --no-deps "resemblyzer==0.1.4"
  # torch pulls setuptools >= 77, which has no pkg_resources; pyworld imports it. Put back the one
  # the venv was made with (torch runs fine with it; only its install-time metadata asks for more).
  .venv/bin/python -m pip install --quiet "setuptools==65.5.0"
fi
