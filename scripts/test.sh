#!/usr/bin/env bash
# Install everything the tests need (Debian's chromium too), check the gates (ruff, mypy, import
# layering) and run the whole suite, slow tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
bash scripts/install.sh piper,test
# Gates first, in seconds: lint, formatting, types (strict on the contracts and the core), layering.
.venv/bin/ruff check voxclone tests bench
.venv/bin/ruff format --check voxclone tests bench
.venv/bin/mypy
.venv/bin/lint-imports
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
