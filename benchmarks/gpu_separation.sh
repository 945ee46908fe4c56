#!/usr/bin/env bash
# One GPU session for [6/6] music separation: the CUDA tests, the GPU figures (offline real-time factor of the three
# separators; the streaming separator in the Engine at 1024-sample blocks, eager vs CUDA graph), then a short training
# of hybrid-4stem (two learning rates) and vocals-stream side by side on the one GPU.
#
# The working tree that travels is limited to 64 MiB, so the data travels as Ogg Vorbis (recipes/separation/pack.py)
# and is decoded there; carry .gpu_data and .whl (soundfile, soxr, cffi, pycparser, jsonargparse and its pure-Python
# dependencies for the machine's Python):
#   python recipes/separation/pack.py pack data/separation .gpu_data/separation --level 0.9
#   python recipes/separation/pack.py pack data/separation_val .gpu_data/separation_val --level 0.9   (a few songs)
#   TRAIN_SECONDS=300 bash benchmarks/gpu_separation.sh
# Everything lands in $OUT: the log of each run, its metrics.csv, and each exported model as float16 safetensors +
# config.json (a tar per model).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-separation}
TRAIN_SECONDS=${TRAIN_SECONDS:-300}
DATA=${DATA:-data}
ACCEL=${ACCEL:-gpu}
source "$(dirname "$0")/gpu_setup.sh"
python3 -c "import torch, lightning; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(), 'lightning', lightning.__version__)"

if [ -d .gpu_data/separation ]; then
    python3 recipes/separation/pack.py unpack .gpu_data/separation "$DATA/separation" --workers 12
    python3 recipes/separation/pack.py unpack .gpu_data/separation_val "$DATA/separation_val" --workers 12
fi

if [ "${CHECKS:-1}" = 1 ]; then
echo "== CUDA tests"
timeout 150 python3 -m pytest -q -p no:cacheprovider -k "cuda or separators" tests/test_cuda_models.py \
    tests/test_runtime_engine.py 2>&1 | tail -n 15

echo "== figures: the recipes' architectures (untrained: time does not depend on the weights)"
python3 - <<'PY'
from neuraudio import hub
from neuraudio.separation.hybrid import HybridSeparator
from neuraudio.separation.query import QueryBandSplit
from neuraudio.separation.streaming import StreamingSeparator
hub.save_folder(HybridSeparator(sample_rate=44100, stems=["drums", "bass", "other", "vocals"], width=16, dim=256,
                                blocks=4), "/tmp/sep-hybrid", name="hybrid-untrained", task="separation")
hub.save_folder(StreamingSeparator(44100, ["vocals", "accompaniment"], n_fft=2048, hop=512, dim=256, layers=6,
                                   kernel=7), "/tmp/sep-stream", name="stream-untrained", task="separation")
hub.save_folder(QueryBandSplit(44100, n_fft=2048, hop=512, bands=40, dim=64, layers=4, query_dim=128),
                "/tmp/sep-query", name="query-untrained", task="separation")
PY
timeout 120 python3 benchmarks/separation.py speed /tmp/sep-hybrid query:/tmp/sep-query /tmp/sep-stream --device cuda 2>&1 | tail -n 5
for args in "--block-size 1024" "--block-size 1024 --no-cuda-graph" "--block-size 1024 --block-multiple 512" \
            "--block-size 1024 --block-multiple 512 --no-cuda-graph"; do
    echo "-- neuraudio bench /tmp/sep-stream --device cuda --channels 2 $args"
    timeout 60 python3 -m neuraudio bench /tmp/sep-stream --device cuda --channels 2 $args --seconds 10 2>&1 | tail -n 6
done
fi

echo "== training, ${TRAIN_SECONDS} s per run, all runs at once on the one GPU"
clock=$(printf "00:00:%02d:%02d" $((TRAIN_SECONDS / 60)) $((TRAIN_SECONDS % 60)))
common="--trainer.accelerator $ACCEL --trainer.max_time $clock --trainer.enable_progress_bar false
        --data.root $DATA/separation --data.val_root $DATA/separation_val --data.crops_per_epoch ${CROPS:-2048}
        --data.num_workers ${WORKERS:-4}"
run() {  # name recipe extra...
    local name=$1 recipe=$2; shift 2
    timeout $((TRAIN_SECONDS + 120)) python3 -m neuraudio train "$recipe" --trainer.default_root_dir "$OUT/runs/$name" \
        $common "$@" > "$OUT/train-$name.log" 2>&1
    python3 -m neuraudio export "$OUT/runs/$name" "$OUT/models/$name" >> "$OUT/train-$name.log" 2>&1
    echo "$name: $(tail -n 1 "$OUT/train-$name.log")"
}
run hybrid-4stem recipes/separation/hybrid_4stem.yaml --data.batch_size 16 --optimizer.init_args.lr 0.001 &
run hybrid-4stem-lr3e-4 recipes/separation/hybrid_4stem.yaml --data.batch_size 16 --optimizer.init_args.lr 0.0003 &
run vocals-stream recipes/separation/vocals_stream.yaml --data.batch_size 32 --optimizer.init_args.lr 0.001 &
wait
# at most 8 files come back (16 MiB each): each model as float16 safetensors + config.json in a tar; logs in one
python3 "$(dirname "$0")/gpu_pack.py" "$OUT" --per-tar 1
rm -rf "$OUT/runs" "$OUT/models" "$OUT"/train-*.log
ls -la "$OUT"
