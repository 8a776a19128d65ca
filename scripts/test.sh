#!/usr/bin/env bash
# Install everything the tests need (Debian's chromium too) and run the whole suite, slow tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
bash scripts/install.sh piper,test
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
