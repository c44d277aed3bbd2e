#!/usr/bin/env bash
# The demo: a RetinaNet whose backbone is a BinaryResNet-18 (binary 3x3 convs with real-valued shortcuts, the
# structure that learns), on the bundled COCO sample, with mmdet's
# own tools: train one short epoch (6 iterations), test the checkpoint (COCO metric), price it with
# mmdet's get_flops.py and the per-layer FLOPs/BOPs/OPs table, and time it with mmdet's benchmark.py
# (its CUDA calls redirected to the CPU when there is no GPU). Sets up what is missing first.
#
#   bash tools/run_demo.sh            # work dir: work_dirs/demo (override with WORK_DIR=...)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$REPO/.venv}
VENV="$VENV" bash "$REPO/tools/setup_env.sh"
PY="$VENV/bin/python"
cd "$REPO"
CFG=configs/binary_resnet/retinanet_binary-resnet18_fpn_coco-mini.py
WORK=${WORK_DIR:-$REPO/work_dirs/demo}
TOOLS=$("$PY" -c "import mmdet, os; print(os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'tools'))")
export PYTHONWARNINGS=ignore
mkdir -p "$WORK"

echo "== 1/5 train ($CFG) with $TOOLS/train.py"
"$PY" "$TOOLS/train.py" "$CFG" --work-dir "$WORK" 2>&1 | tee "$WORK/demo_train.log" | grep -E "Epoch\(train\)|Saving"
echo "== 2/5 test $WORK/epoch_1.pth with $TOOLS/test.py"
"$PY" "$TOOLS/test.py" "$CFG" "$WORK/epoch_1.pth" --work-dir "$WORK" 2>&1 | tee "$WORK/demo_test.log" \
  | grep -E "Average Precision|bbox_mAP_copypaste"
echo "== 3/5 cost with $TOOLS/analysis_tools/get_flops.py (binary convs priced as BOPs/64)"
"$PY" "$TOOLS/analysis_tools/get_flops.py" "$CFG" --num-images 1 2>&1 | tee "$WORK/demo_flops.log" \
  | grep -E "Input shape|Flops|Params"
echo "== 4/5 per-layer table (NAS-BNN rules) with tools/analysis_tools/model_summary.py"
"$PY" tools/analysis_tools/model_summary.py "$CFG" --shape 320 320 2>&1 | tee "$WORK/demo_summary.log" \
  | grep -vE "^[0-9/]+ [0-9:]+ - mmengine"
echo "== 5/5 speed with $TOOLS/analysis_tools/benchmark.py (tools/analysis_tools/benchmark_on_cpu.py, BN folded)"
"$PY" tools/analysis_tools/benchmark_on_cpu.py "$CFG" --checkpoint "$WORK/epoch_1.pth" --task inference \
  --max-iter 16 --num-warmup 2 --log-interval 8 --fuse-conv-bn 2>&1 | tee "$WORK/demo_benchmark.log" \
  | grep -E "benchmark_on_cpu|Overall fps"

echo
echo "== demo results"
grep -E "Epoch\(train\) \[1\]\[6/6\]" "$WORK/demo_train.log" | sed -E 's/.*(loss: [0-9.]+).*/final training \1/'
grep -E "bbox_mAP_copypaste" "$WORK/demo_test.log" | sed -E 's/.*bbox_mAP_copypaste/test COCO bbox mAP (AP, AP50, AP75, APs, APm, APl)/'
grep -E "^Flops|^Input shape" "$WORK/demo_flops.log" | sed 's/^/stock get_flops.py: /'
tail -1 "$WORK/demo_summary.log" | sed 's/^/model_summary.py @320x320: /'
grep -E "Overall fps" "$WORK/demo_benchmark.log" | sed -E 's/.*(Overall fps.*)/stock benchmark.py: \1/'
