"""Figures for a hostile client on the raw HTTP API: peak server memory per request, queue fairness under a flood,
and the files left after SIGTERM / SIGINT. The numbers in docs/robustness.md come from this script.

    nice -n 19 python benchmarks/hostile_http.py [--concurrent 30] [--parts memory,fairness,stop] [--repo DIR]

Each part starts `python -m explorer` from `--repo` (default: this checkout) as a subprocess on a free 127.0.0.1
port, with a private GRADIO_TEMP_DIR and TMPDIR. Peak memory is VmHWM after `echo 5 > /proc/PID/clear_refs`,
minus VmRSS just before the request. Sketches go to `/analyse_sketch` as the drawing canvas sends them: a PNG data
URL in the JSON body (explorer/inputs/sketch.py), hostile ones included (a 12000x12000 1-bit PNG of 18 KB, the old
sketchpad's dict, text past the sketch's and the body's limits); the largest allowed sketch is 1024x1024. /predict
gets uploaded files. `--concurrent N` also sends N of the 12000x12000 sketches at once (a server that decoded them
would need 576 MB of RGBA each; leave it out there). `--repo` takes another checkout of the project (e.g. an older
commit from `git archive`) to measure it the same way; its tests/ folder needs raw_http.py with `sketch` (a
checkout with the drawing canvas).
"""
from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def memory(server, api, concurrent: int) -> None:
    from tests.raw_http import blank_1bit, file_ref, peak_mb, sketch, stroke_rgba, vm_kb

    huge = blank_1bit(12000, 12000)
    huge_ref, max_stroke_ref = api.upload(huge), api.upload(stroke_rgba(5000))
    huge_sketch = sketch(huge)
    cases = {
        f"sketch 12000x12000 1-bit PNG ({len(huge_sketch) // 1000} KB data URL)": ("analyse_sketch", [huge_sketch]),
        "sketch 1025x1025 1-bit PNG (one pixel over)": ("analyse_sketch", [sketch(blank_1bit(1025, 1025))]),
        "sketch 1024x1024 blank 1-bit PNG (1 MP, allowed)": ("analyse_sketch", [sketch(blank_1bit(1024, 1024))]),
        "sketch 1024x1024 RGBA with a stroke (the largest allowed)": ("analyse_sketch",
                                                                      [sketch(stroke_rgba(1024))]),
        "sketch as the old sketchpad's dict, 40,000 null layers (200 KB JSON)": (
            "analyse_sketch", [{"composite": None, "layers": [None] * 40000, "background": None}]),
        "sketch of 200,022 characters (over the sketch's limit)": (
            "analyse_sketch", ["data:image/png;base64," + "A" * 200_000]),
        "sketch of 2,000,022 characters (over the body limit)": (
            "analyse_sketch", ["data:image/png;base64," + "A" * 2_000_000]),
        "/predict 12000x12000": ("predict", [file_ref(huge_ref)]),
        "/predict 5000x5000 RGBA with a stroke": ("predict", [file_ref(max_stroke_ref)]),
    }
    print("| request | peak RSS above idle | time | answer |\n|---|---|---|---|")
    for name, (endpoint, data) in cases.items():
        time.sleep(1)
        t0 = time.time()
        peak, (event, out) = peak_mb(server.pid, lambda: api.call(endpoint, data))  # noqa: B023
        answer = str(out["error"] if isinstance(out, dict) and "error" in out else out)
        answer = answer if len(answer) <= 90 else f"{answer[:40]} ... {answer[-45:]}"  # a refusal's reason: its end
        print(f"| {name} | {peak:+,.0f} MB | {time.time() - t0:.1f} s | {event}: {answer} |", flush=True)
    if concurrent:
        time.sleep(1)
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # the peak below spans the whole burst
        idle = vm_kb(server.pid, "VmRSS") / 1024
        t0 = time.time()
        with ThreadPoolExecutor(concurrent) as ex:
            outs = list(ex.map(lambda i: api.call("analyse_sketch", [huge_sketch]), range(concurrent)))
        print(f"| {concurrent} of the 12000x12000 sketches at once | {vm_kb(server.pid, 'VmHWM') / 1024 - idle:+,.0f}"
              f" MB | {time.time() - t0:.1f} s | {sum(e == 'error' for e, _ in outs)} refused in one sentence, "
              f"{sum(e.startswith('http 503') for e, _ in outs)} answered 503 (queue caps) |")


def fairness(server, api) -> None:
    from tests.raw_http import Api, file_ref, sketch, stroke_rgba

    flooder = Api(server.url, local_address="127.0.0.2")
    big, small = sketch(stroke_rgba(1024)), api.upload(stroke_rgba(336))  # the largest allowed sketch; an upload
    t0 = time.time()
    with ThreadPoolExecutor(70) as ex:
        flood = [r.status_code for r in ex.map(lambda i: flooder.post("analyse_sketch", [big]), range(70))]
    t1 = time.time()
    r = api.post("predict", [file_ref(small)])
    answer = api.result("predict", r.json()["event_id"]) if r.status_code == 200 else r.text[:80]
    print(f"flood of 70 x 1024x1024 sketches from 127.0.0.2: {flood.count(200)} queued, {flood.count(503)} answered "
          f"503 (joins took {t1 - t0:.1f} s); then /predict from 127.0.0.1: HTTP {r.status_code} in "
          f"{time.time() - t1:.1f} s -> {str(answer)[:80]}")


def stop(repo: Path, sig: int) -> None:
    from tests.raw_http import Api, Server, sketch, stroke_rgba
    from tests.test_shutdown import use_every_kind_of_file

    from explorer.serving import free_port

    server = Server(Path(tempfile.mkdtemp(prefix="hostile-stop-")), free_port())
    api = Api(server.url)
    use_every_kind_of_file(server, api)
    big = sketch(stroke_rgba(1024))  # the largest allowed sketch
    with ThreadPoolExecutor(6) as ex:
        [f.result() for f in [ex.submit(api.post, "analyse_sketch", [big]) for _ in range(6)]]
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
