#!/usr/bin/env bash
# The prepared GPU check of issue 12 (not run in the CPU-only sessions): on one GPU, in under
# 8 minutes, (1) the CUDA tests, (2) `al` on planted data, m1 = 2, P = 50, d = 10, over the
# n grid up to 10^6 in float64 and float32, each solve in its own process with a time limit.
# Writes $OUT/gpu_first_order.json (one row per solve: seconds to 1e-4 and 1e-6, final gap,
# peak RSS) and $OUT/gpu_tests.txt.  Usage:  OUT=build bash bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
"$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"

# (1) the CUDA tests: one small problem against Clarabel, float32 and float64 (~30 s)
timeout 90 "$PY" -m pytest -q -k cuda tests/test_al.py tests/test_al_working_set.py tests/test_al_rows.py \
    2>&1 | tee "$OUT/gpu_tests.txt" || true

# (2) the n grid: 16000, 64000, 256000, 10^6 in float64 (60 s each at most), then 10^6 in
# float32; run_first_order.py kills a child at 3 * limit + 120 s, `timeout` caps the whole step
# at 330 s so that the script ends within 8 minutes.
timeout 330 "$PY" bench/run_first_order.py --grid gpu --solvers al --device cuda \
    --dtype float64 --limit 60 --threads 1 --out "$OUT/gpu_first_order_f64.json" || true
timeout 60 "$PY" bench/run_first_order.py --n 1000000 --d 10 --solvers al --device cuda \
    --dtype float32 --limit 40 --threads 1 --out "$OUT/gpu_first_order_f32.json" || true
"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = []
for name in ("gpu_first_order_f64.json", "gpu_first_order_f32.json"):
    path = out / name
    rows += json.loads(path.read_text()) if path.is_file() else [{"missing": name}]
(out / "gpu_first_order.json").write_text(json.dumps(rows, indent=1) + "\n")
for r in rows:
    print({k: r.get(k) for k in ("n", "dtype", "status", "solve_seconds", "seconds_to_1e-04",
                                 "seconds_to_1e-06", "relative_gap", "peak_rss_mb")})
EOF
