#!/usr/bin/env bash
# Set up .venv and open the dashboard on the shipped sample cube and weights
# (http://localhost:5006/; Ctrl-C stops it). Options go to `kgvsf serve`, e.g. --port 5007.
# `kgvsf demo` is the same job without a browser: a what-if table and figure in build/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/kgvsf serve "$@"
