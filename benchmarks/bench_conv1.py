"""conv1 forward + backward on a training batch: oneDNN's kernels against the batched-GEMM weight gradient.

    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/bench_conv1.py [--pairs 15]

Alternates the two, prints medians and the median per-pair ratio (the images need no gradient,
as in training, so only weight and bias gradients are formed).
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from capsnet.model import _ImageConv  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--pairs", type=int, default=15)
args = ap.parse_args()
torch.manual_seed(0)
conv = torch.nn.Conv2d(1, 256, 9)
x = torch.rand(100, 1, 28, 28)
g = torch.randn(100, 256, 20, 20)


def onednn():
    F.relu(conv(x)).backward(g)


def gemm():
    F.relu(_ImageConv.apply(x, conv.weight, conv.bias)).backward(g)


onednn(), gemm()
T = {"onednn": [], "gemm": []}
for r in range(args.pairs):
    for k, f in (("onednn", onednn), ("gemm", gemm))[:: 1 if r % 2 == 0 else -1]:
        t = time.perf_counter()
        f()
        T[k].append(time.perf_counter() - t)
for k, v in T.items():
    print(f"{k:8s} median {statistics.median(v):.3f} s  min {min(v):.3f} s")
print(f"median per-pair ratio onednn/gemm: {statistics.median(a / b for a, b in zip(T['onednn'], T['gemm'])):.2f}x")
