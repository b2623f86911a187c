#!/usr/bin/env bash
# Regenerate the shipped weights data_samples/weights/kgvsf-small, their forecast intervals and
# their model card: pretrain KG-VSF with the `small` preset on three simulated worlds (the
# per-pixel context path and the NDVI term, docs/model.md), calibrate its intervals on three
# worlds nothing else uses, then score it beside the peers (kgvsf evaluate-weights) on another.
# About an hour on 2 CPU cores; extra options (e.g. --device cuda) pass through to pretrain.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/kgvsf ] || bash scripts/setup.sh
KGVSF=.venv/bin/kgvsf
WORLDS=${WORLDS:-101,102,103}
STEPS=${STEPS:-6000}
TEST_SEED=${TEST_SEED:-5151}
OUT=build/weights
$KGVSF pretrain --objective kgvsf --preset small --worlds "$WORLDS" --pixel-context \
  --ndvi-weight 1 --steps "$STEPS" --out "$OUT/kgvsf-small" --seed 0 "$@"
$KGVSF calibrate --weights "$OUT/kgvsf-small" --seed 6262,6263,6264 --world-size small \
  --cases 600 --case-seed 0 --out "$OUT/kgvsf-small"
$KGVSF evaluate-weights --weights "$OUT/kgvsf-small" --seed "$TEST_SEED" \
  --out build/evaluate-weights/kgvsf-small --card "$OUT/kgvsf-small/MODEL_CARD.md"
rm -rf data_samples/weights/kgvsf-small.new
mkdir -p data_samples/weights
cp -r "$OUT/kgvsf-small" data_samples/weights/kgvsf-small.new
rm -rf data_samples/weights/kgvsf-small.new/last data_samples/weights/kgvsf-small.new/best
rm -rf data_samples/weights/kgvsf-small
mv data_samples/weights/kgvsf-small.new data_samples/weights/kgvsf-small
echo "shipped weights updated: data_samples/weights/kgvsf-small"
