"""Pose sliders in a real browser: reconstruction frames per second while a slider is dragged, with and without
added network latency, the JS decode time per frame, and the same drag through the server path for comparison.

    nice -n 19 python benchmarks/bench_pose_browser.py [--seconds 3] [--rounds 3] [--latency 0 150]

Headless Debian chromium (Playwright). Each round, per latency, drags #pose-dim-0 with one `input` event per
animation frame for `--seconds` and counts the distinct images the #reconstruction canvas shows, and the
requests made meanwhile; "server path" blocks the decoder weights, so the page falls back to a round trip per
change (what every drag did before the browser-side decoder). Latency is added with Chrome DevTools' network
emulation. Prints medians over the rounds; JS decode times are pooled over all client-side frames.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from explorer.serving import served  # noqa: E402
from tests import pose_drag as pd  # noqa: E402


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def one_drag(browser, url: str, model, latency: float, seconds: float, server_path: bool) -> dict:
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.set_default_timeout(120_000)
    try:
        if server_path:
            page.route("**/decoder-*.safetensors", lambda route: route.abort())
        mode = pd.open_pose_tab(page, url)
        if mode != ("server" if server_path else "client"):
            raise RuntimeError(f"the page is in {mode} mode")
        pd.set_latency(page, latency)
        pd.drag(page, dim=0, seconds=0.5)  # warm up the decoder's JIT (and, on the server path, the queue)
        page.wait_for_timeout(1500 if server_path else 100)
        r = pd.drag(page, dim=0, seconds=seconds)
        page.wait_for_timeout(100)
        r["error"] = pd.canvas_error(page, model) if not server_path else None
        r["queue_requests"] = sum("/queue/" in u for u in r["requests"])
        return r
    finally:
        page.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency", type=float, nargs="+", default=[0.0, 150.0], help="added latency in ms")
    ap.add_argument("--no-server-path", action="store_true", help="skip the server-path comparison")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from explorer.app import LAUNCH_OPTIONS, build_demo, explorer_ui

    demo = build_demo()
    model = explorer_ui(demo).model
    if model is None:
        print("no checkpoint: train one first (python -m capsnet.train)")
        return 2
    paths = [False] if args.no_server_path else [False, True]
    results: dict = {}
    with served(demo, **LAUNCH_OPTIONS) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=pd.CHROMIUM, args=pd.CHROMIUM_ARGS)
        try:
            for _ in range(args.rounds):  # interleaved: every configuration once per round
                for latency in args.latency:
                    for server_path in paths:
                        r = one_drag(browser, url, model, latency, args.seconds, server_path)
                        results.setdefault((server_path, latency), []).append(r)
        finally:
            browser.close()

    print(f"drag of #pose-dim-0, one input event per frame for {args.seconds:g} s, {args.rounds} rounds (medians)")
    print(f"{'path':<16}{'latency':>9}{'frames/s':>10}{'distinct/s':>12}{'requests':>10}{'queue':>7}{'max err':>9}")
    for (server_path, latency), rs in results.items():
        name = "server path" if server_path else "browser decoder"
        err = max((r["error"] for r in rs if r["error"] is not None), default=None)
        print(f"{name:<16}{latency:>7.0f}ms{statistics.median(r['frames_per_s'] for r in rs):>10.1f}"
              f"{statistics.median(r['distinct_per_s'] for r in rs):>12.1f}"
              f"{statistics.median(len(r['requests']) for r in rs):>10.0f}"
              f"{statistics.median(r['queue_requests'] for r in rs):>7.0f}"
              f"{'' if err is None else f'{err:.0f}/255':>9}")
    decode = [ms for (server_path, _), rs in results.items() if not server_path for r in rs for ms in r["decode_ms"]]
    if decode:
        print(f"JS decode per frame (browser decoder, all latencies): median {statistics.median(decode):.2f} ms, "
              f"p95 {pct(decode, 0.95):.2f} ms (n={len(decode)}; performance.now() has 0.1 ms resolution here)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
