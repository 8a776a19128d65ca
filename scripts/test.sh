#!/usr/bin/env bash
# Install everything the tests need (Debian's chromium and nginx too), check the gates (ruff, mypy,
# import layering) and run the whole suite, slow tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages the tests drive: chromium (the web page), nginx (the reverse-proxy tests). Only
# what is missing is installed; the tests start their own nginx on a free port, never the service.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bash scripts/install.sh piper,test,coqui
# Gates first, in seconds: lint, formatting, types (strict on the contracts and the core), layering.
.venv/bin/ruff check voxclone tests bench
.venv/bin/ruff format --check voxclone tests bench
.venv/bin/mypy
.venv/bin/lint-imports
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
