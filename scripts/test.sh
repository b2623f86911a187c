#!/usr/bin/env bash
# Set up .venv and run the whole test suite: unit tests and the executed tutorial notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export KGVSF_FAST=1 MPLBACKEND=Agg
.venv/bin/python -m pytest --nbval-lax -p no:cacheprovider "$@"
