"""Training throughput and single-image inference latency on this machine.

    python benchmarks/bench_train.py [--steps 15] [--batch-size 100] [--latency-calls 100]

Throughput: images/s of full training steps (forward, margin + reconstruction loss,
backward, Adam) at the given batch, median over `--steps` steps after warm-up.
Latency: one 28x28 image through the whole forward (lengths, poses, couplings of all
iterations, primary capsules, reconstruction) under inference_mode, median and p95.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from capsnet import CapsNet, capsule_loss  # noqa: E402


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--latency-calls", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = CapsNet()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    B = args.batch_size
    x = torch.rand(B, 1, 28, 28)
    y = torch.randint(0, 10, (B,))

    def step():
        out = model(x, y)
        loss = capsule_loss(out, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)

    model.eval()
    one = torch.rand(1, 1, 28, 28)
    lat = []
    with torch.inference_mode():
        for _ in range(10):
            model(one)
        for _ in range(args.latency_calls):
            t = time.perf_counter()
            model(one)
            lat.append(time.perf_counter() - t)
    result = {
        "batch_size": B,
        "train_step_median_s": med,
        "train_images_per_s_median": B / med,
        "train_images_per_s_min_max": [B / max(times), B / min(times)],
        "latency_ms_median": 1000 * statistics.median(lat),
        "latency_ms_p95": 1000 * pct(lat, 0.95),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "load_average_1m": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"training: {result['train_images_per_s_median']:.1f} images/s median at batch {B} "
          f"(range {result['train_images_per_s_min_max'][0]:.1f}-{result['train_images_per_s_min_max'][1]:.1f}, "
          f"{args.steps} steps, {result['torch_threads']} threads)")
    print(f"inference, 1 image, full forward with couplings and reconstruction: "
          f"median {result['latency_ms_median']:.2f} ms, p95 {result['latency_ms_p95']:.2f} ms")
    print(f"load average during the run: {result['load_average_1m']:.2f}")


if __name__ == "__main__":
    main()
