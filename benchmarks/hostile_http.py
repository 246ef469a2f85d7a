"""Figures for a hostile client on the raw HTTP API: peak server memory per request, queue fairness under a flood,
and the files left after SIGTERM / SIGINT. The numbers in docs/robustness.md come from this script.

    nice -n 19 python benchmarks/hostile_http.py [--concurrent 30] [--repo DIR]

Each part starts `python -m explorer` from `--repo` (default: this checkout) as a subprocess on a free 127.0.0.1
port, with a private GRADIO_TEMP_DIR and TMPDIR. Peak memory is VmHWM after `echo 5 > /proc/PID/clear_refs`,
minus VmRSS just before the request. `--concurrent N` also sends N hostile sketches at once (against an unguarded
server that needs about 13 GB; leave it out there). `--repo` takes another checkout of the project (e.g. an
older commit from `git archive`) to measure it the same way; its tests/ folder needs raw_http.py.
"""
from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def sketch(ref, layers=(), background=None):
    from tests.raw_http import file_ref

    return {"composite": file_ref(ref), "layers": [file_ref(x) for x in layers],
            "background": None if background is None else file_ref(background)}  # fmt: skip


def memory(server, api, concurrent: int) -> None:
    from tests.raw_http import blank_1bit, file_ref, peak_mb, stroke_rgba, vm_kb

    huge, max_blank, max_stroke = (api.upload(blank_1bit(12000, 12000)), api.upload(blank_1bit(5000, 5000)),
                                   api.upload(stroke_rgba(5000)))  # fmt: skip
    cases = {
        "sketch composite 12000x12000 1-bit (18 KB file)": ("analyse_sketch", [sketch(huge)]),
        "sketch 12000x12000 as background + 3 layers + composite": ("analyse_sketch",
                                                                    [sketch(huge, [huge] * 3, huge)]),
        "sketch 5000x5000 as background + layer + composite": ("analyse_sketch",
                                                               [sketch(max_blank, [max_blank], max_blank)]),
        "sketch composite 5000x5000 1-bit (25 MP, allowed)": ("analyse_sketch", [sketch(max_blank)]),
        "sketch composite 5000x5000 RGBA with a stroke": ("analyse_sketch", [sketch(max_stroke)]),
        "sketch with 40,000 null layers (200 KB JSON)": (
            "analyse_sketch", [{"composite": None, "layers": [None] * 40000, "background": None}]),
        "/predict 12000x12000": ("predict", [file_ref(huge)]),
        "/predict 5000x5000 RGBA with a stroke": ("predict", [file_ref(max_stroke)]),
    }
    print("| request | peak RSS above idle | time | answer |\n|---|---|---|---|")
    for name, (endpoint, data) in cases.items():
        time.sleep(1)
        t0 = time.time()
        peak, (event, out) = peak_mb(server.pid, lambda: api.call(endpoint, data))  # noqa: B023
        print(f"| {name} | {peak:+,.0f} MB | {time.time() - t0:.1f} s | {event}: {str(out)[:90]} |", flush=True)
    if concurrent:
        time.sleep(1)
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # the peak below spans the whole burst
        idle = vm_kb(server.pid, "VmRSS") / 1024
        t0 = time.time()
        with ThreadPoolExecutor(concurrent) as ex:
            outs = list(ex.map(lambda i: api.call("analyse_sketch", [sketch(huge, [huge] * 3 if i % 2 else [], huge)]),
                               range(concurrent)))  # fmt: skip
        print(f"| {concurrent} of the 12000x12000 sketches at once | {vm_kb(server.pid, 'VmHWM') / 1024 - idle:+,.0f}"
              f" MB | {time.time() - t0:.1f} s | {sum(e == 'error' for e, _ in outs)} refused in one sentence, "
              f"{sum(e.startswith('http 503') for e, _ in outs)} answered 503 (queue caps) |")


def fairness(server, api) -> None:
    from tests.raw_http import Api, file_ref, stroke_rgba

    flooder = Api(server.url, local_address="127.0.0.2")
    big, small = api.upload(stroke_rgba(5000)), api.upload(stroke_rgba(336))
    t0 = time.time()
    with ThreadPoolExecutor(70) as ex:
        flood = [r.status_code for r in ex.map(lambda i: flooder.post("analyse_sketch", [sketch(big)]), range(70))]
    t1 = time.time()
    r = api.post("predict", [file_ref(small)])
    answer = api.result("predict", r.json()["event_id"]) if r.status_code == 200 else r.text[:80]
    print(f"flood of 70 x 25 MP sketches from 127.0.0.2: {flood.count(200)} queued, {flood.count(503)} answered 503 "
          f"(joins took {t1 - t0:.1f} s); then /predict from 127.0.0.1: HTTP {r.status_code} in "
          f"{time.time() - t1:.1f} s -> {str(answer)[:80]}")


def stop(repo: Path, sig: int) -> None:
    from tests.raw_http import Api, Server, file_ref, stroke_rgba
    from tests.test_shutdown import use_every_kind_of_file

    from explorer.serving import free_port

    server = Server(Path(tempfile.mkdtemp(prefix="hostile-stop-")), free_port())
    api = Api(server.url)
    use_every_kind_of_file(server, api)
    big = api.upload(stroke_rgba(5000))
    with ThreadPoolExecutor(6) as ex:
        [f.result() for f in [ex.submit(api.post, "analyse_sketch", [sketch(big)]) for _ in range(6)]]
    time.sleep(0.3)
    before = len(server.files_left())
    elapsed, code = server.stop(sig, timeout=30)
    left = server.files_left()
    in_cache = sum(1 for p in left if server.cache in p.parents)
    print(f"{signal.Signals(sig).name} with 6 requests running or queued: exit after {elapsed:.1f} s (code {code}); "
          f"files {before} before, {len(left)} after ({in_cache} in GRADIO_TEMP_DIR, {len(left) - in_cache} in the "
          f"app's temporary folder)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    p.add_argument("--concurrent", type=int, default=0)
    p.add_argument("--parts", default="memory,fairness,stop")
    args = p.parse_args()
    sys.path.insert(0, str(args.repo.resolve()))
    import tests.conftest as conftest

    conftest.REPO = args.repo.resolve()  # the server subprocess runs this checkout
    from tests.raw_http import Api, Server

    from explorer.serving import free_port

    parts = args.parts.split(",")
    if "memory" in parts or "fairness" in parts:
        server = Server(Path(tempfile.mkdtemp(prefix="hostile-")), free_port())
        api = Api(server.url)
        try:
            if "memory" in parts:
                memory(server, api, args.concurrent)
            if "fairness" in parts:
                fairness(server, api)
        finally:
            server.stop()
    if "stop" in parts:
        for sig in (signal.SIGTERM, signal.SIGINT):
            stop(args.repo, sig)


if __name__ == "__main__":
    main()
