"""Training speed of the CNN baseline at three widths: why the shipped one is half the paper's.

    python benchmarks/bench_cnn_widths.py [--steps 5] [--batch 100]

One Adam step of `capsnet.baseline.BaselineCNN` (cross entropy, batch 100, float32) at the paper's widths
(256, 256, 128), half (the shipped 128, 128, 64) and a quarter, after two warm-up steps; prints parameters, the
float32 size and training images/s with the CPU's ISA (torch.backends.cpu.get_cpu_capability()).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from capsnet.baseline import BaselineCNN, CNNConfig  # noqa: E402

WIDTHS = ((256, 256, 128), (128, 128, 64), (64, 64, 32))


def images_per_second(channels, steps: int, batch: int) -> tuple[int, float]:
    torch.manual_seed(0)
    model = BaselineCNN(CNNConfig(channels=channels)).train()
    opt = torch.optim.Adam(model.parameters())
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    for i in range(steps + 2):
        if i == 2:
            t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return sum(p.numel() for p in model.parameters()), steps * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    isa = torch.backends.cpu.get_cpu_capability()
    for channels in WIDTHS:
        n, speed = images_per_second(channels, args.steps, args.batch)
        print(f"channels {channels}: {n / 1e6:.2f} M parameters, {4 * n / 2**20:.1f} MiB, {speed:.0f} training "
              f"images/s ({torch.get_num_threads()} threads, {isa})")


if __name__ == "__main__":
    main()
