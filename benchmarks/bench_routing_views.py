"""Server-side latency of the routing views for a new input (median / p95 over repeated calls).

    python benchmarks/bench_routing_views.py [--repeats 50] [--checkpoint PATH]

Stages, timed separately and together:
  forward      model(x, trace_routing=True) with 3 routing iterations (the app's one forward pass, shared with
               every other view)
  structure    the structure views (explorer.views.contributions / routing_dynamics): contribution grids, pixel
               overlay, per-type table, links, counterfactual, blank change, polarization, logits, all as JSON
  app_tab      what the Routing tab draws for a new input with every section open: tabs.routing.map_outputs (map
               image, caption, evidence, capsule panel) and the structure views (figures as JSON)
  all          forward + app_tab: every routing view the app renders for a new input (budget: p95 <= 100 ms);
               *_cpu: the same in this thread's CPU time (unaffected by other processes on a shared machine)
  iterations   compare_iterations() for r = 1, 2, 3, 5 (four forward passes)
Inputs cycle through the synthetic examples so every call sees a new input.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from capsnet import CapsNet  # noqa: E402
from explorer.inputs.examples import synthetic_examples  # noqa: E402
from explorer.views import contributions as vc  # noqa: E402
from explorer.views.capsules import Analysis  # noqa: E402
from explorer.views import routing as rv  # noqa: E402
from explorer.views import routing_dynamics as rd  # noqa: E402


def stats(ts: list[float]) -> dict:
    a = np.asarray(ts) * 1000
    return {"median_ms": round(float(np.median(a)), 2), "p95_ms": round(float(np.percentile(a, 95)), 2),
            "max_ms": round(float(a.max()), 2), "n": len(a)}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the app uses 1 on a 2-core machine)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from capsnet.checkpoint import default_checkpoint, load_pretrained

    ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    if ckpt.exists():
        model, source = load_pretrained(ckpt), str(ckpt)
    else:
        torch.manual_seed(0)
        model, source = CapsNet().eval(), "seeded untrained CapsNet (no checkpoint)"
    images = [torch.from_numpy(img) for _, _, img in synthetic_examples()]

    def forward(x):
        with torch.inference_mode():
            return model(x[None, None], trace_routing=True)

    def structure(x, out):
        overlay = vc.contribution_overlay(out, x)
        figs = [vc.contribution_grids_figure(out), vc.type_summary_figure(out), vc.links_figure(out),
                rd.counterfactual_figure(out), rd.blank_change_figure(out), rd.polarization_figure(out),
                rd.logits_figure(out)]  # fmt: skip
        return overlay, [f.to_json() for f in figs], rd.counterfactual_text(out)

    from explorer.tabs import routing as tr

    def tab(x, out):
        """Every view of the Routing tab with all its sections open, for a new input: the coupling-map section
        (map image, caption, evidence, the selected capsule's panel) and the structure views, figures serialised."""
        a = Analysis(image=x[None], output=out)
        tr.map_outputs(a, a.digit, None, None, None, None)
        return structure(x, out)

    keys = ("forward", "structure", "app_tab", "all", "structure_cpu", "all_cpu", "iterations")
    timings: dict[str, list[float]] = {k: [] for k in keys}
    for i in range(args.warmup + args.repeats):
        x = images[i % len(images)]
        t0, c0 = time.perf_counter(), time.thread_time()
        out = forward(x)
        t1, c1 = time.perf_counter(), time.thread_time()
        structure(x, out)
        t2, c2 = time.perf_counter(), time.thread_time()
        tab(x, out)
        t3, c3 = time.perf_counter(), time.thread_time()
        rv.compare_iterations(model, x, (1, 2, 3, 5))
        t4 = time.perf_counter()
        if i >= args.warmup:
            timings["forward"].append(t1 - t0)
            timings["structure"].append(t2 - t1)
            timings["app_tab"].append(t3 - t2)
            timings["all"].append((t1 - t0) + (t3 - t2))
            # CPU time of this thread (torch runs with 1 thread): what other processes' load cannot inflate
            timings["structure_cpu"].append(c2 - c1)
            timings["all_cpu"].append((c1 - c0) + (c3 - c2))
            timings["iterations"].append(t4 - t3)

    report = {
        "model": source,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "results": {k: stats(v) for k, v in timings.items()},
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
