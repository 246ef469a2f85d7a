"""Conv1 + PrimaryCaps forward and backward on a training batch: oneDNN's kernels against capsnet.cpu_kernels.

    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/bench_kernels.py [--pairs 10]

What a training step runs for the two convolutions (images need no gradient): relu(conv1), PrimaryCaps, and the
weight, bias and PrimaryCaps-input gradients. The two ways alternate in one process, so whatever else runs on
the machine slows both alike; prints medians, the median per-pair ratio and each way's GFLOP/s (191 M + 8.3 M
multiply-adds per image forward, twice that backward, counted as the direct convolution's).
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from capsnet import cpu_kernels  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--pairs", type=int, default=10)
ap.add_argument("--batch-size", type=int, default=100)
args = ap.parse_args()
torch.manual_seed(0)
conv1, primary = torch.nn.Conv2d(1, 256, 9), torch.nn.Conv2d(256, 256, 9, stride=2)
x = torch.rand(args.batch_size, 1, 28, 28)
g = torch.randn(args.batch_size, 256, 6, 6)


def onednn():
    primary(F.relu(conv1(x))).backward(g)


def kernels():
    cpu_kernels.primary_caps_maps(x, conv1, primary).backward(g)


onednn(), kernels()
T = {"onednn": [], "kernels": []}
for r in range(args.pairs):
    for k, f in (("onednn", onednn), ("kernels", kernels))[:: 1 if r % 2 == 0 else -1]:
        t = time.perf_counter()
        f()
        T[k].append(time.perf_counter() - t)
flop = 3 * 2 * args.batch_size * (256 * 256 * 81 * 36 + 256 * 81 * 400)  # forward + two gradients
print(f"batch {args.batch_size}, {torch.get_num_threads()} threads, ATen {torch.backends.cpu.get_cpu_capability()}")
for k, v in T.items():
    print(f"{k:8s} median {statistics.median(v):.3f} s  ({flop / statistics.median(v) / 1e9:.0f} GFLOP/s)")
print(f"median per-pair ratio onednn/kernels: {statistics.median(a / b for a, b in zip(T['onednn'], T['kernels'])):.2f}x")
