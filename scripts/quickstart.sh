#!/usr/bin/env bash
# Set up .venv and run the main job on the shipped sample cube: validate and summarise it, then ask
# the simulator what a hot, dry summer would have done (table + figure in build/demo/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/kgvsf demo "$@"
