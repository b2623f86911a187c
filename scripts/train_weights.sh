#!/usr/bin/env bash
# Regenerate the shipped weights data_samples/weights/kgvsf-small and their model card:
# pretrain KG-VSF (and, for comparison, SM-VSF: forecasting without weather) with the `small`
# preset on three simulated worlds, then evaluate both on a world whose seed no training used.
# About 35 minutes on 2 CPU cores; extra options (e.g. --device cuda) pass through to pretrain.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/kgvsf ] || bash scripts/setup.sh
KGVSF=.venv/bin/kgvsf
WORLDS=${WORLDS:-101,102,103}
TEST_SEEDS=${TEST_SEEDS:-7,8}
OUT=build/weights
for objective in kgvsf sm-vsf; do
  $KGVSF pretrain --objective "$objective" --preset small --worlds "$WORLDS" \
    --out "$OUT/$objective-small" --seed 0 "$@"
done
$KGVSF evaluate-weights --weights "$OUT/kgvsf-small" --compare "$OUT/sm-vsf-small" \
  --seeds "$TEST_SEEDS" --cases 160 --card "$OUT/kgvsf-small/MODEL_CARD.md"
rm -rf data_samples/weights/kgvsf-small.new
mkdir -p data_samples/weights
cp -r "$OUT/kgvsf-small" data_samples/weights/kgvsf-small.new
rm -rf data_samples/weights/kgvsf-small.new/last data_samples/weights/kgvsf-small.new/best
rm -rf data_samples/weights/kgvsf-small
mv data_samples/weights/kgvsf-small.new data_samples/weights/kgvsf-small
echo "shipped weights updated: data_samples/weights/kgvsf-small"
