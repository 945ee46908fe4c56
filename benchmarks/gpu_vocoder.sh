#!/usr/bin/env bash
# One GPU session for [2/6] and [3/6]: the CUDA tests, the GPU figures (CUDA graphs for models with a hop, the
# vocoders' offline real-time factor and Engine p99, eager vs graph), then a short training of the vocoders, several
# configurations side by side on the one GPU. Carry data/vocoder (recipes/vocoding/prepare_speech.py) and .whl/
# (soundfile, soxr, lightning and its pure-Python dependencies, safetensors for the machine's Python). Everything
# lands in $OUT: logs, each run's metrics.csv and its exported model folder (safetensors + config.json).
#   TRAIN_SECONDS=300 bash benchmarks/gpu_vocoder.sh
set -uo pipefail
OUT=${OUT:-/tmp/gpu-vocoder}
TRAIN_SECONDS=${TRAIN_SECONDS:-300}
source "$(dirname "$0")/gpu_setup.sh"
python3 -c "import torch, lightning; print('torch', torch.__version__, torch.cuda.get_device_name(), 'lightning', lightning.__version__)"

if [ "${CHECKS:-1}" = 1 ]; then
echo "== CUDA tests"
timeout 150 python3 -m pytest -q -p no:cacheprovider -k "cuda" tests/test_runtime_engine.py tests/test_cuda_models.py \
    tests/test_vocoding_apnet.py 2>&1 | tail -n 15

echo "== bench (figures): graphs for models with a hop, the vocoders on the GPU"
[ "${RUN_SET:-first}" = first ] && python3 - <<'PY'
from neuraudio import hub
from neuraudio.vocoding.apnet import APNet, APNetStream
hub.save_folder(APNetStream(), "/tmp/apnet-stream-untrained", name="apnet-stream-untrained", task="vocoder")
hub.save_folder(APNet(), "/tmp/apnet-untrained", name="apnet-untrained", task="vocoder")
PY
if [ "${RUN_SET:-first}" = first ]; then
    STREAM=/tmp/apnet-stream-untrained OFFLINE=/tmp/apnet-untrained
else  # the snapshots the second set continues from
    STREAM=data/init/stream-spectral-fixamp OFFLINE=data/init/offline-spectral-gl64
fi
for args in "$STREAM --device cuda --block-size 128 --block-multiple 128" \
            "$STREAM --device cuda --block-size 128 --block-multiple 128 --no-cuda-graph" \
            "$STREAM --device cuda --block-size 160" \
            "$OFFLINE --device cuda --block-size 512" \
            "aec-linear --device cuda --block-size 160 --block-multiple 160" \
            "aec-linear --device cuda --block-size 160 --block-multiple 160 --no-cuda-graph"; do
    echo "-- neuraudio bench $args"
    timeout 60 python3 -m neuraudio bench $args --seconds 3 2>&1 | tail -n 5
done
fi

echo "== training, ${TRAIN_SECONDS} s per run, all runs at once on the one GPU"
clock=$(printf "00:00:%02d:%02d" $((TRAIN_SECONDS / 60)) $((TRAIN_SECONDS % 60)))
ACCEL=${ACCEL:-gpu}
common="--trainer.accelerator $ACCEL --trainer.max_time $clock --trainer.enable_progress_bar false --data.batch_size 32
        --data.crops_per_epoch ${CROPS:-2048} --data.num_workers 3 --model.init_args.amplitude_weight 0
        --model.init_args.generator_optimizer.init_args.lr 0.001"
run() {  # name recipe extra...
    local name=$1 recipe=$2; shift 2
    timeout $((TRAIN_SECONDS + 150)) python3 -m neuraudio train "$recipe" --trainer.default_root_dir "$OUT/runs/$name" \
        $common "$@" > "$OUT/train-$name.log" 2>&1
    python3 -m neuraudio export "$OUT/runs/$name" "$OUT/models/$name" --checkpoint best >> "$OUT/train-$name.log" 2>&1
    echo "$name: $(tail -n 1 "$OUT/train-$name.log")"
}
M=--model.init_args.model.init_args
if [ "${RUN_SET:-first}" = first ]; then
    run offline-frame recipes/vocoding/apnet_16k.yaml &
    run offline-spectral recipes/vocoding/apnet_16k.yaml $M.phase_refiner spectral &
    run offline-frame-gan recipes/vocoding/apnet_16k.yaml --model.init_args.adversarial_from_step 0 &
    run stream-frame recipes/vocoding/apnet_stream_16k.yaml &
    run stream-spectral recipes/vocoding/apnet_stream_16k.yaml $M.phase_refiner spectral $M.refiner_channels 8 \
        $M.refiner_layers 3 &
else  # continue the best of the first set (recipes/vocoding/derive.py made data/init), validating on 12 speakers
    V="--data.val_root data/vocoder_val_small"
    run offline-spectral-gl64 recipes/vocoding/apnet_16k.yaml $V $M.phase_refiner spectral $M.prior_iters 64 \
        --model.init_args.init_from data/init/offline-spectral-gl64 &
    run offline-spectral-fixamp-gl64 recipes/vocoding/apnet_16k.yaml $V $M.phase_refiner spectral $M.prior_iters 64 \
        $M.refine_amplitude false --model.init_args.init_from data/init/offline-spectral-fixamp-gl64 &
    run stream-spectral-fixamp recipes/vocoding/apnet_stream_16k.yaml $V $M.phase_refiner spectral \
        $M.refiner_channels 8 $M.refiner_layers 3 $M.refine_amplitude false \
        --model.init_args.init_from data/init/stream-spectral-fixamp &
fi
wait
# at most 8 files come back (16 MiB each): each model as float16 safetensors + config.json, two per tar; logs in one
python3 "$(dirname "$0")/gpu_pack.py" "$OUT" --per-tar 2
rm -rf "$OUT/runs" "$OUT/models" "$OUT"/train-*.log
ls -la "$OUT"
