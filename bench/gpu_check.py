"""One prepared device check: GPU correctness (the gpu tests) and CPU-vs-GPU timings of batched CROWN.

    python bench/gpu_check.py            # on a machine with CUDA; prints a table

Timings: the ``flows`` graph of bench/scaling.py (power-flow flavour, intermediate CROWN refinement),
one CROWN pass over B boxes, best of 3 after a warm-up, on the CPU and on the GPU in the same run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from graphver.bounds import output_bounds  # noqa: E402
from scaling import N_VARS, flows_graph, pairs_graph  # noqa: E402


def best_of(fn, repeat=3):
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    print(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}")
    if torch.cuda.is_available():
        print(f"device: {torch.cuda.get_device_name(0)}")
    tests = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "tests/test_gpu.py"],
                           capture_output=True, text=True)
    print(tests.stdout[-2000:], tests.stderr[-2000:])
    if not torch.cuda.is_available():
        return 1
    print(f"{'graph':<12}{'boxes':>7}{'CPU ms':>10}{'GPU ms':>10}{'CPU/GPU':>9}{'max |diff|':>12}")
    for name, (m, expr) in [("flows-1500", flows_graph(1500)), ("pairs-3400", pairs_graph(3400))]:
        tape = m.compile(expr)
        for batch in (1, 64, 1024, 4096):
            gen = torch.Generator().manual_seed(0)
            low = -0.5 + torch.rand(batch, N_VARS, generator=gen, dtype=torch.float64) * 0.5
            high = low + 0.25
            cpu_tape, gpu_tape = tape, tape.to("cuda")
            cpu_s = best_of(lambda: output_bounds(cpu_tape, low, high, "crown"), repeat=1 if batch >= 1024 else 3)
            low_g, high_g = low.cuda(), high.cuda()
            gpu_s = best_of(lambda: output_bounds(gpu_tape, low_g, high_g, "crown"))
            c = output_bounds(cpu_tape, low, high, "crown")
            g = output_bounds(gpu_tape, low_g, high_g, "crown")
            diff = max(float((c[0] - g[0].cpu()).abs().max()), float((c[1] - g[1].cpu()).abs().max()))
            print(f"{name:<12}{batch:>7}{1e3 * cpu_s:>10.1f}{1e3 * gpu_s:>10.1f}{cpu_s / gpu_s:>9.2f}{diff:>12.3g}", flush=True)
    return 0 if tests.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
