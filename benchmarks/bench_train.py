"""Training throughput beside a straightforward reference, and single-image inference latency.

    python benchmarks/bench_train.py [--steps 15] [--batch-size 100] [--isa both|native|avx2] [--thp on|off]

Throughput: full training steps (forward, margin + reconstruction loss, backward, Adam) at the
given batch, of capsnet.CapsNet and of benchmarks/reference_capsnet.py (NCHW convolutions, u_hat
by one einsum, a plain routing loop), alternated step by step in one process so that whatever
else runs on the machine slows both alike; medians and their ratio. Each ISA runs in a fresh
child process: `native` as the CPU is, `avx2` with ONEDNN_MAX_CPU_ISA=AVX2 and
ATEN_CPU_CAPABILITY=avx2, i.e. what a CPU without AVX-512 gets. Both models run with the same
THP_MEM_ALLOC_ENABLE (huge pages for large CPU tensors; on, as the trainer runs, unless --thp off).
Latency: one 28x28 image through the whole forward under inference_mode, median and p95.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AVX2_CAP = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def measure(args) -> dict:
    import torch

    sys.path.insert(0, str(ROOT))
    from benchmarks.reference_capsnet import ReferenceCapsNet, reference_loss
    from capsnet import CapsNet, capsule_loss
    from capsnet.model import conv_memory_format

    torch.manual_seed(0)
    model = CapsNet()
    ref = ReferenceCapsNet()
    ref.load_state_dict(model.state_dict())
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    ref_opt = torch.optim.Adam(ref.parameters(), 1e-3)
    B = args.batch_size
    x = torch.rand(B, 1, 28, 28)
    y = torch.randint(0, 10, (B,))

    def step():
        out = model(x, y)
        loss = capsule_loss(out, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def ref_step():
        lengths, _, recon = ref(x, y)
        loss = reference_loss(lengths, recon, x, y)
        ref_opt.zero_grad(set_to_none=True)
        loss.backward()
        ref_opt.step()

    for _ in range(args.warmup):
        step()
        ref_step()
    times, ref_times = [], []
    for i in range(args.steps):
        for fn, acc in ((step, times), (ref_step, ref_times))[:: 1 if i % 2 == 0 else -1]:
            t = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t)
    med, ref_med = statistics.median(times), statistics.median(ref_times)
    ratios = [r / t for t, r in zip(times, ref_times)]

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
    return {
        "isa_env": {k: os.environ.get(k) for k in AVX2_CAP},
        "thp": "on" if os.environ.get("THP_MEM_ALLOC_ENABLE") == "1" else "off",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "conv_memory_format": str(conv_memory_format()).replace("torch.", ""),
        "batch_size": B,
        "steps": args.steps,
        "train_step_median_s": med,
        "train_images_per_s_median": B / med,
        "reference_step_median_s": ref_med,
        "reference_images_per_s_median": B / ref_med,
        "speedup_vs_reference": ref_med / med,
        "speedup_per_step_pair_median": statistics.median(ratios),
        "latency_ms_median": 1000 * statistics.median(lat),
        "latency_ms_p95": 1000 * pct(lat, 0.95),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "load_average_1m": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--latency-calls", type=int, default=100)
    ap.add_argument("--isa", choices=["both", "native", "avx2"], default="both")
    ap.add_argument("--thp", choices=["on", "off"], default="on",
                    help="THP_MEM_ALLOC_ENABLE for both models: on as `python -m capsnet.train` runs (capsnet sets it), "
                         "off for PyTorch's default 4 KB pages")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return
    results = []
    for isa in (["native", "avx2"] if args.isa == "both" else [args.isa]):
        env = {k: v for k, v in os.environ.items() if k not in AVX2_CAP}
        env["THP_MEM_ALLOC_ENABLE"] = "1" if args.thp == "on" else "0"  # set before the child imports torch
        if isa == "avx2":
            env.update(AVX2_CAP)
        cmd = [sys.executable, __file__, "--child", *sys.argv[1:]]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"benchmark child ({isa}) failed:\n{r.stderr}")
        results.append({"isa": isa, **json.loads(r.stdout.strip().splitlines()[-1])})
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for res in results:
        print(f"[{res['isa']}: ATen {res['cpu_capability']}, convolutions in {res['conv_memory_format']}, "
              f"{res['torch_threads']} threads, huge pages {res['thp']}, load average {res['load_average_1m']:.2f}]")
        print(f"  training, batch {res['batch_size']}, {res['steps']} steps alternated: CapsNet "
              f"{res['train_images_per_s_median']:.1f} images/s, reference {res['reference_images_per_s_median']:.1f} "
              f"images/s, ratio {res['speedup_vs_reference']:.2f}x (median of per-pair ratios "
              f"{res['speedup_per_step_pair_median']:.2f}x)")
        print(f"  inference, 1 image, full forward: median {res['latency_ms_median']:.2f} ms, "
              f"p95 {res['latency_ms_p95']:.2f} ms")


if __name__ == "__main__":
    main()
