#!/usr/bin/env bash
# Install everything the tests need and run the whole suite, slow tests included: Debian's chromium
# (the web page's browser tests), nginx (the reverse-proxy tests; the tests start their own on a free
# port, never the service), nodejs, npm and openssl (the SDK compatibility suite: the pinned npm SDKs
# from tests/sdk/js/package-lock.json, and a throwaway TLS certificate), postgresql (the tests start a
# private cluster in a temporary folder, never the service), then the venv with the `scale` extra (Ray
# Serve: the tests start a local Ray cluster); then the gates (ruff, mypy, import layering), then
# pytest, then the quick API suite again with the library in PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for tool in chromium node npm openssl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$([ "$tool" = node ] && echo nodejs || echo "$tool")")
done
[ -x /usr/sbin/nginx ] || missing+=(nginx)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bash scripts/install.sh piper,test,coqui,scale
# openai's npm package asks for node >= 22 but runs on Debian 12's node 18 (the suite checks it): quiet that warning.
(cd tests/sdk/js && npm ci --no-audit --no-fund --loglevel=error)
# Gates first, in seconds: lint, formatting, types (strict on the contracts and the core), layering.
.venv/bin/ruff check voxclone tests bench
.venv/bin/ruff format --check voxclone tests bench
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
if [ "$#" -eq 0 ]; then
  # The API suite against a PostgreSQL library (a fresh database per test). test_database and test_ray
  # use PostgreSQL already; the SDK suites and the browser tests build their own SQLite servers.
  VOXCLONE_TEST_DATABASE=postgresql exec .venv/bin/python -m pytest -q -p no:cacheprovider -m "not slow and not browser" \
    --ignore=tests/test_database.py --ignore=tests/test_ray.py --ignore=tests/test_sdk_python.py --ignore=tests/test_sdk_js.py
fi
