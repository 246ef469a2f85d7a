"""Classroom load: N visitors at once, each acting every ~2 s through the page's own events, from one light client.

    python benchmarks/classroom.py [--visitors 10 20 40 60] [--duration 60] [--think 2.0] [--p95-limit 1.0]
        [--one-address] [--same-server] [--json out.json] [--trace trace.json]

Run it without `nice`: it lowers its own client thread to nice 19 (`--client-nice`; Linux priorities are per
thread) and starts `python -m explorer` (load_test.Server, a free 127.0.0.1 port, a fresh server per visitor count
unless `--same-server`) at the caller's priority; under `nice -n 19` the server would inherit it.

ONE process plays all N visitors: asyncio and a minimal HTTP/1.1 client (class Http; httpx cost 6x more client
CPU per request here), no thread per visitor, no gradio_client; the client's CPU time is reported beside the
server's. Each visitor is one browser page: its own session hash, its own heartbeat and /gradio_api/queue/data
streams (opened after a join, ended by the server's close_stream, as the page does), at most 6 connections
(Chrome's per-host limit), `X-Forwarded-For: 81.2.<i>.<j>` (none with `--one-address`: one client for all) from
source address 127.0.0.2, like visitors behind the Spaces proxy. It replays what the page sends, as recorded from
the real page in chromium with Playwright (Gradio 6.31); tests/test_classroom.py checks the replay against it:

- open: GET /, the page's load events (the opening example's analysis, the first view tab's select);
- clear: the canvas's change event with "" (its Clear);
- draw: a digit stroke by stroke, 0.3 s apart: after each stroke the drawing canvas's change event with the canvas
  as a PNG data URL (static/canvas.js; always_last merges a stroke into the next event while one runs);
- pose_tab, routing_tab: the tab's select event (event data {value: label, index});
- pose_release: one of the 16 sliders moved by up to 0.3 and released (its release event, all 16 values);
- routing_map: opening the Routing tab's collapsed coupling-map section (its expand event; once, it stays open);
- routing_click: a click on the coupling map (its select event, {index: [x, y]}).

Follow-ups are found as the page finds them, from /config: the .change events of the states the answer lists in
changed_state_ids and of the components whose value it changed (the open tab's views_<tab>, view_status, the
Routing tab's capsule panel, structure views and sharpening), each with its trigger mode (always_last: once more
after the running one; once: dropped while running). Inputs go as the page sends them: states as null, components
with the values the visitor's page holds. Images in answers are fetched (GET /gradio_api/file=...) as the page
shows them. Nothing is uploaded (tests/test_sketchpad.py checks that in chromium).

Visitors open the page within `--ramp` s, then cycle clear -> draw -> pose_tab -> pose_release x2 -> routing_tab ->
routing_click (no clear before the first drawing; routing_map before the first routing_click), thinking `--think` s
+-25% (uniform) after each answer, for `--duration` s. An action's latency runs from its first request to the last completion of its chain of events; an
action unanswered after 60 s is an error. Image fetches are timed apart ("(file)").

Reported per visitor count: actions done, refusals (HTTP 429/503 or a "too many" / "queue" answer from a join
or file request, or such an event error, with their text), errors (any other failed request or event,
timeouts, broken streams), p50/p95/max latency per action kind and overall (every action but `open`), the handlers'
wall time inside the server (the answers' `duration`), the server's CPU time (utime+stime) per action, the client's
own CPU time and its share, and the 1-min load average (sampled every 5 s). Exit status 1 when a criterion fails:
any refusal or error, or the overall p95 over `--p95-limit` s (2 when the run itself breaks).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_test import Server, cpu_seconds, percentile  # noqa: E402
from light_client import Http, Page, Stats, sketches  # noqa: E402
from page_visitor import ACTION_TIMEOUT_S, Visitor  # noqa: E402


# --------------------------------------------------------------------------- a class of N visitors


async def run_class(url: str, pid: int, visitors: int, duration: float = 60.0, think: float = 2.0, ramp: float = 2.0,
                    one_address: bool = False, seed: int = 0, trace: list | None = None) -> dict:
    """N visitors against the server at `url` (process `pid`) for `duration` s; the measurements as a dict."""
    http = Http(url, timeout=30)
    status, config = await http.request("GET", "/config")
    await http.aclose()
    page = Page(json.loads(config))
    drawn, stats = sketches(), Stats()
    class_ = [Visitor(i, url, page, stats, drawn, seed, one_address, trace if i == 0 else None)
              for i in range(visitors)]  # fmt: skip
    loads, cpu_server0, cpu_client0 = [], cpu_seconds(pid), time.thread_time()
    t0 = time.perf_counter()
    sampler = asyncio.create_task(sample_load(loads))
    tasks = [asyncio.create_task(v.run(t0 + ramp + duration, think, ramp)) for v in class_]
    done, late = await asyncio.wait(tasks, timeout=ramp + duration + 2 * think + ACTION_TIMEOUT_S + 30)
    for t in late:
        t.cancel()
        stats.failed("visitor", "still acting at the hard time limit")
    elapsed = time.perf_counter() - t0
    cpu_server, cpu_client = cpu_seconds(pid), time.thread_time() - cpu_client0
    sampler.cancel()
    await asyncio.gather(*(v.close() for v in class_), return_exceptions=True)
    for t in done:
        if t.exception() is not None:
            stats.failed("visitor", "".join(traceback.format_exception(t.exception()))[-300:])
    return summary(stats, visitors, elapsed, None if None in (cpu_server, cpu_server0) else cpu_server - cpu_server0,
                   cpu_client, loads)  # fmt: skip


async def sample_load(out: list, every: float = 5.0) -> None:
    while True:
        out.append(os.getloadavg()[0])
        await asyncio.sleep(every)


def latency(samples: list[float]) -> dict:
    return {"n": len(samples), "p50_s": round(statistics.median(samples), 3),
            "p95_s": round(percentile(samples, 0.95), 3), "max_s": round(max(samples), 3)}  # fmt: skip


def summary(stats: Stats, visitors: int, elapsed: float, cpu_server: float | None, cpu_client: float,
            loads: list[float]) -> dict:
    kinds = {k: latency(v) for k, v in sorted(stats.samples.items())}
    acting = [x for k, v in stats.samples.items() if k != "open" for x in v]
    actions = sum(len(v) for v in stats.samples.values())
    return {
        "visitors": visitors, "elapsed_s": round(elapsed, 1), "actions": actions,
        "actions_per_s": round(actions / elapsed, 2), "kinds": kinds,
        "overall": latency(acting) if acting else None,
        "background": {k: latency(v) for k, v in stats.background.items()}, "dropped_background": stats.dropped,
        "refusals": sum(stats.refusals.values()), "refusal_texts": dict(stats.refusals.most_common(8)),
        "errors": sum(stats.errors.values()), "error_texts": dict(stats.errors.most_common(8)),
        "requests": dict(stats.requests),
        "handler_s": {k: {"n": len(v), "p50_s": round(statistics.median(v), 3), "total_s": round(sum(v), 1)}
                      for k, v in sorted(stats.handler_s.items(), key=lambda kv: -sum(kv[1]))},
        "cpu_s": {"server": None if cpu_server is None else round(cpu_server, 1), "client": round(cpu_client, 1)},
        "server_cpu_ms_per_action": round(1000 * cpu_server / actions, 1) if cpu_server and actions else None,
        "client_cpu_share": round(cpu_client / (cpu_client + cpu_server), 3) if cpu_server else None,
        "loadavg_1min": {"median": round(statistics.median(loads), 2), "max": round(max(loads), 2)} if loads else None,
        "cpus": len(os.sched_getaffinity(0)),
    }


def passed(r: dict, p95_limit: float) -> dict:
    return {"no_refusal": r["refusals"] == 0, "no_error": r["errors"] == 0,
            f"p95_le_{p95_limit:g}s": r["overall"] is not None and r["overall"]["p95_s"] <= p95_limit}  # fmt: skip


# --------------------------------------------------------------------------- servers, the niced client, the report


def in_client_thread(make_coro, nice: int = 19):
    """asyncio.run(make_coro()) in a thread whose own priority is lowered to `nice` (Linux priorities are per
    thread): the client yields the CPUs to the server, which keeps the caller's priority (started from here)."""
    out = {}

    def target():
        try:
            if nice:
                os.setpriority(os.PRIO_PROCESS, __import__("threading").get_native_id(), nice)
            out["value"] = asyncio.run(make_coro())
        except BaseException as e:  # re-raised in the caller
            out["error"] = e

    import threading

    th = threading.Thread(target=target, name="classroom-client")
    th.start()
    th.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def git_head() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "?"


def measure(counts, duration: float = 60.0, think: float = 2.0, ramp: float = 2.0, one_address: bool = False,
            same_server: bool = False, checkpoint: str | None = None, seed: int = 0,
            nice: int = 19, p95_limit: float = 1.0, log=print, trace: list | None = None) -> list[dict]:
    """run_class for each visitor count, on a fresh server each (or one with `same_server`), after a short warm-up
    (one visitor, one cycle, not counted). The servers run at the caller's priority, the client at `nice`."""
    import tempfile

    results, server = [], None
    with tempfile.TemporaryDirectory(prefix="capsnet-classroom-") as logs:
        try:
            for n in counts:
                if server is None or not same_server:
                    if server is not None:
                        server.stop()
                    server = Server(checkpoint, log_dir=logs)
                    log(f"server pid {server.proc.pid} on {server.url} ready in {server.wait_ready():.1f} s")
                    url, pid = server.url, server.proc.pid
                    in_client_thread(lambda: run_class(url, pid, 1, 3.0, 0.3, 0.0, one_address, seed), nice)
                started = time.strftime("%Y-%m-%d %H:%M:%S")
                r = in_client_thread(lambda: run_class(url, pid, n, duration, think, ramp, one_address, seed, trace),
                                     nice)  # fmt: skip
                r.update(started=started, git_head=git_head(), server_pid=pid, think_s=think, duration_s=duration,
                         one_address=one_address, criteria=passed(r, p95_limit))  # fmt: skip
                log(report(r))
                results.append(r)
        finally:
            if server is not None:
                server.stop()
    return results


def report(r: dict) -> str:
    load = r["loadavg_1min"] or {}
    lines = [
        f"{r['visitors']} visitors ({'one address' if r.get('one_address') else 'one X-Forwarded-For each'}), "
        f"{r['elapsed_s']} s, {r['actions']} actions ({r['actions_per_s']}/s); refusals {r['refusals']}, errors "
        f"{r['errors']}; 1-min load average median {load.get('median')} (max {load.get('max')}) on {r['cpus']} CPUs; "
        f"HEAD {r.get('git_head')} at {r.get('started')}",
        f"CPU: server {r['cpu_s']['server']} s ({r['server_cpu_ms_per_action']} ms per action), client "
        f"{r['cpu_s']['client']} s ({100 * (r['client_cpu_share'] or 0):.1f}% of server + client)",
        f"{'action':15s} {'n':>5s} {'p50 s':>7s} {'p95 s':>7s} {'max s':>7s}",
    ]
    rows = [*r["kinds"].items(), ("overall", r["overall"])] + [(f"({k})", v) for k, v in r["background"].items()]
    for name, s in rows:
        if s:
            lines.append(f"{name:15s} {s['n']:5d} {s['p50_s']:7.3f} {s['p95_s']:7.3f} {s['max_s']:7.3f}")
    top = list(r.get("handler_s", {}).items())[:6]
    if top:
        lines.append("handlers (wall time inside the server, total): " + ", ".join(
            f"{k} {v['n']}x p50 {1000 * v['p50_s']:.0f} ms = {v['total_s']} s" for k, v in top))
    if r["dropped_background"]:
        lines.append(f"background requests dropped (over {Visitor.MAX_BACKGROUND} waiting on one page): "
                     f"{r['dropped_background']}")
    lines += [f"refused {n}x: {t}" for t, n in r["refusal_texts"].items()]
    lines += [f"error {n}x: {t}" for t, n in r["error_texts"].items()]
    if "criteria" in r:
        lines.append("criteria: " + ", ".join(f"{k}={'PASS' if v else 'FAIL'}" for k, v in r["criteria"].items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--visitors", type=int, nargs="+", default=[40], help="visitor counts, run one after another")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of actions per visitor count")
    ap.add_argument("--think", type=float, default=2.0, help="think time after each answer (uniform +-25%%)")
    ap.add_argument("--ramp", type=float, default=2.0, help="visitors open the page within this many seconds")
    ap.add_argument("--p95-limit", type=float, default=1.0, help="criterion: overall p95 latency (s)")
    ap.add_argument("--one-address", action="store_true", help="no X-Forwarded-For: every visitor is one client")
    ap.add_argument("--same-server", action="store_true", help="one server for all counts (default: fresh each)")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--client-nice", type=int, default=19, help="the client thread's nice value (0: unchanged)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--trace", default=None, help="write the first visitor's requests here (JSON)")
    args = ap.parse_args(argv)
    trace = [] if args.trace else None
    results = measure(args.visitors, args.duration, args.think, args.ramp, args.one_address,
                      args.same_server, args.checkpoint, args.seed, args.client_nice, args.p95_limit, trace=trace)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.trace:
        Path(args.trace).write_text(json.dumps(trace, indent=0))
    return 0 if all(all(r["criteria"].values()) for r in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        sys.exit(2)
