#!/usr/bin/env bash
# Install voxclone (with the Piper extra) and start the server on the embedded default voice.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh piper
exec .venv/bin/voxclone serve "$@"
