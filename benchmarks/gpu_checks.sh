#!/usr/bin/env bash
# The checks that need a CUDA GPU, as one script for a lent GPU machine (CI has none; these tests skip there).
# Run from the repository root. Wheels the machine lacks (soundfile, soxr, cffi, pycparser for its Python) can be
# carried in .whl/; figures and logs go to $OUT (default /tmp/gpu-checks).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-checks}
source "$(dirname "$0")/gpu_setup.sh"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

echo "== CUDA tests"
python3 -m pytest -q -p no:cacheprovider -k "cuda" tests/test_runtime_engine.py tests/test_cli.py tests/test_runtime_bench.py \
    tests/test_cuda_models.py 2>&1 | tail -n 15
echo "== engine and pretrained tests with a GPU present"
python3 -m pytest -q -p no:cacheprovider -x tests/test_runtime_engine.py tests/test_pretrained.py tests/test_stream_processor.py 2>&1 | tail -n 5

echo "== bench: the same models on the GPU and on this machine's CPU"
for args in "klon-centaur --device cuda" "klon-centaur --device cuda --no-cuda-graph" "klon-centaur --device cpu" \
            "compressor --device cuda" "compressor --device cuda --dtype bfloat16" "compressor --device cpu" \
            "klon-centaur --device cuda --dtype bfloat16" "klon-centaur --device cuda --dtype float16" \
            "aec-linear --device cuda --block-size 160" "aec-linear --device cpu --block-size 160" \
            "denoise-mmse --device cuda" "denoise-mmse --device cpu"; do
    echo "-- neuraudio bench $args"
    python3 -m neuraudio bench $args --seconds 5 2>&1 | tail -n 3
done
