#!/usr/bin/env bash
# Install divergence into ./.venv from nothing (Python 3.11+). `--test` adds the test
# tools and Debian's chromium for the browser tests. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build
.venv/bin/python -m pip install -q torch==2.13.0
if [ "${1:-}" = "--test" ]; then
    .venv/bin/python -m pip install -q -e '.[test,onnx]'
    if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
            || echo "install.sh: could not install chromium; browser tests will be skipped" >&2
    fi
else
    .venv/bin/python -m pip install -q -e .
fi
echo "installed: $(.venv/bin/divergence --help >/dev/null && echo ok) ($(.venv/bin/python --version))"
