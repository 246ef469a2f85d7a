"""The server's CPU time per action of a classroom visitor: one visitor, one action at a time, nothing else running.

    python benchmarks/action_cost.py [--cycles 8] [--json out.json]

Starts `python -m explorer` (load_test.Server), plays one benchmarks/page_visitor.py Visitor (the page's own events,
as the classroom replays them) through `--cycles` rounds of clear, draw, Pose tab, two pose releases, Routing tab,
the coupling-map section (first round only) and two map clicks, and reads the server's utime + stime (/proc, 10 ms
ticks) before and after each action, 0.3 s after its last answer. The idle server's own CPU (Gradio's queue loop),
measured first over 5 s, is subtracted. Reports the median per action kind: what a class's burst of one action
costs the server (40 visitors drawing at once need 40 x the drawing's figure).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from light_client import Http, Page, Stats, sketches  # noqa: E402
from load_test import Server, cpu_seconds  # noqa: E402
from page_visitor import Visitor  # noqa: E402

ROUND = ("clear", "draw", "pose_tab", "pose_release", "pose_release", "routing_tab", "routing_map", "routing_click",
         "routing_click")  # fmt: skip
SETTLE_S = 0.3


async def measure(url: str, pid: int, cycles: int) -> dict:
    http = Http(url, timeout=30)
    _, config = await http.request("GET", "/config")
    await http.aclose()
    page = Page(json.loads(config))
    stats = Stats()
    visitor = Visitor(0, url, page, stats, sketches(), seed=0)
    await visitor.act("open")
    c0, t0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(5.0)
    idle_per_s = (cpu_seconds(pid) - c0) / (time.perf_counter() - t0)
    costs: dict[str, list[float]] = {}
    for _ in range(cycles):
        for kind in ROUND:
            if kind == "routing_map" and visitor.map_open:
                continue
            c0, t0 = cpu_seconds(pid), time.perf_counter()
            await visitor.act(kind)
            await asyncio.sleep(SETTLE_S)
            spent = cpu_seconds(pid) - c0 - idle_per_s * (time.perf_counter() - t0)
            costs.setdefault(kind, []).append(1000 * spent)
    await visitor.close()
    if stats.errors or stats.refusals:
        raise RuntimeError(f"failed requests: {dict(stats.errors)} {dict(stats.refusals)}")
    return {"idle_cpu_ms_per_s": round(1000 * idle_per_s, 1),
            "server_cpu_ms": {k: {"n": len(v), "median": round(statistics.median(v), 1)} for k, v in costs.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=8, help="rounds of the visitor's actions")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    with Server() as server:
        server.wait_ready()
        result = asyncio.run(measure(server.url, server.proc.pid, args.cycles))
    print(f"idle server: {result['idle_cpu_ms_per_s']} ms of CPU per s (subtracted)")
    for kind, r in result["server_cpu_ms"].items():
        print(f"{kind:14s} n={r['n']:3d}  median {r['median']:7.1f} ms server CPU")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
