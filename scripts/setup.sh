#!/usr/bin/env bash
# Create .venv (if missing) and install kgvsf-explore with its dev/test extras.
# torch goes first, pinned to the 2.13.0 CPU wheel these machines keep on local disk; the package
# itself accepts any torch>=2.3, so elsewhere the fallback installs whatever release pip finds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0" || .venv/bin/python -m pip install -q "torch>=2.3"
.venv/bin/python -m pip install -q -e ".[dev]"
