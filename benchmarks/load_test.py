"""Load test: N concurrent gradio_client sessions against `python -m explorer` on 127.0.0.1.

    nice -n 19 python benchmarks/load_test.py [--clients 20] [--duration 60] [--json out.json]

Starts the server as a subprocess on a free localhost port (so its resident memory can be read from
/proc/<pid>/status), opens `--clients` sessions (one gradio_client.Client each, in threads) and has each
loop, with no think time, over a mix of:

- `/predict` with an uploaded PNG (the public API),
- `/analyse_upload` and `/analyse_sketch` (the UI's "new input" events: every view, routing included; a sketch
  goes as the drawing canvas sends it, a PNG data URL in the request),
- `/pose` (a slider move: 16 pose values for the session's current analysis),
- `/routing` (the routing-inspector API, when the app has it),

for `--duration` seconds, continuing (up to `--max-duration` seconds in all) until `--rss-late` requests
have completed so the memory criterion can be judged, and never past `--max-requests` requests: the
loop always stops by itself. Traffic goes only to the server this script started, on 127.0.0.1.

Criteria (exit status 1 when one fails): zero failed requests; the server's median RSS just before `--rss-late`
(2,000) completed requests within 10% of its median RSS just after `--rss-early` (200), each over a fifth of the
requests between them (RSS is sampled every 0.5 s). p50/p95 latency per endpoint is reported.

`--warmup N` (default 300) requests run first with the same mix and sessions; they must not fail either,
but are left out of the latency figures and the request counts for the memory marks. The server's RSS
climbs during its first few hundred requests whatever the traffic (lazy imports, Gradio's thread pool and
its malloc arenas, 20 sessions' state); the criterion is about what happens after that. `--warmup 0`
measures from the first request (the raw figures are in docs/robustness.md too).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal

import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from explorer.serving import free_port  # noqa: E402

MIX = {"predict": 0.25, "analyse_upload": 0.15, "analyse_sketch": 0.10, "pose": 0.35, "routing": 0.15}
LOCALHOST = "127.0.0.1"


def rss_mb(pid: int) -> float | None:
    """Resident memory of `pid` (VmRSS) in MB, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def percentile(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


# --------------------------------------------------------------------------- the server


class Server:
    """`python -m explorer --port N` on 127.0.0.1, as a subprocess; stopped with SIGINT (Gradio cleans its cache)."""

    def __init__(self, checkpoint: str | None = None, env: dict | None = None, log_dir: str | None = None):
        self.port = free_port()
        self.url = f"http://{LOCALHOST}:{self.port}/"
        self.log_path = Path(log_dir or tempfile.mkdtemp(prefix="capsnet-load-")) / "server.log"
        cmd = [sys.executable, "-m", "explorer", "--host", LOCALHOST, "--port", str(self.port)]
        if checkpoint:
            cmd += ["--checkpoint", str(checkpoint)]
        full_env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", **(env or {}))
        full_env.pop("GRADIO_SHARE", None)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> float:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "config", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"server did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def rss_mb(self) -> float | None:
        return rss_mb(self.proc.pid)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # KeyboardInterrupt -> demo.close() -> cache cleanup
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def endpoint_params(url: str) -> dict[str, list[dict]]:
    """api_name -> its parameters (with defaults), for every endpoint including undocumented ones."""
    with urllib.request.urlopen(url + "gradio_api/info?all_endpoints=true", timeout=30) as r:
        info = json.load(r)
    return {name.lstrip("/"): ep["parameters"] for name, ep in info["named_endpoints"].items()}


# --------------------------------------------------------------------------- the inputs


def input_files(folder: Path, n: int = 8) -> list[Path]:
    """Digit images as a visitor would upload them: dark-on-light RGB, light-on-dark L, transparent RGBA."""
    try:
        from bench_explorer import digit_images

        digits = digit_images(n)
    except Exception:
        digits = [np.kron(np.eye(28, dtype=np.uint8)[::-1] * 255, np.ones((8, 8), np.uint8)) for _ in range(n)]
    paths = []
    for i, a in enumerate(digits):
        kind = i % 3
        if kind == 0:
            im = Image.fromarray(np.stack([255 - a] * 3, -1))
        elif kind == 1:
            im = Image.fromarray(a)
        else:
            rgba = np.zeros(a.shape + (4,), np.uint8)
            rgba[..., 3] = a
            im = Image.fromarray(rgba)
        p = folder / f"digit{i}.png"
        im.save(p)
        paths.append(p)
    return paths


def sketch_urls(digits: list[Path]) -> list[str]:
    """What the drawing canvas sends (explorer/inputs/sketch.py): black ink on a transparent canvas of its size,
    the ink in the alpha channel, as a PNG data URL."""
    import base64
    import io

    from explorer.inputs.sketch import CANVAS, PREFIX

    out = []
    for p in digits:
        im = Image.open(p)
        if im.mode == "RGBA":  # a transparent digit: the ink is the alpha channel (its RGB is all black)
            a = np.asarray(im)[..., 3]
        else:
            a = np.asarray(im.convert("L"))
            if a[0, 0] > 127:
                a = 255 - a
        if a.shape != (CANVAS, CANVAS):
            a = np.asarray(Image.fromarray(a).resize((CANVAS, CANVAS), Image.BILINEAR))
        canvas = np.zeros((CANVAS, CANVAS, 4), np.uint8)
        canvas[..., 3] = a
        buf = io.BytesIO()
        Image.fromarray(canvas).save(buf, "PNG")
        out.append(PREFIX + base64.b64encode(buf.getvalue()).decode("ascii"))
    return out


# --------------------------------------------------------------------------- the sessions


class Recorder:
    def __init__(self, pid: int, marks: tuple[int, ...], cap: int):
        self.lock = threading.Lock()
        self.pid = pid
        self.samples: dict[str, list[float]] = {}
        self.failures: list[tuple[str, str]] = []
        self.count = 0
        self.cap = cap
        self.marks = sorted(marks)
        self.rss_at: dict[int, float] = {}
        self.timeline: list[tuple[float, int, float]] = []
        self.t0 = time.perf_counter()

    warmup = 0

    def record(self, endpoint: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.count += 1
            n = self.count
            if error is None:
                if n > self.warmup:
                    self.samples.setdefault(endpoint, []).append(seconds)
            else:
                self.failures.append((endpoint, error))
            for m in self.marks:
                if n == m:
                    r = rss_mb(self.pid)
                    if r is not None:
                        self.rss_at[m] = r

    def configure_stop(self, t0: float, duration: float, max_duration: float, until_requests: int) -> None:
        self.t0, self.duration, self.max_duration, self.until = t0, duration, max_duration, until_requests

    def done(self) -> bool:
        elapsed = time.perf_counter() - self.t0
        if self.count >= self.cap or elapsed >= self.max_duration:
            return True
        return elapsed >= self.duration and self.count >= self.until

    def sample_loop(self, stop: threading.Event, every: float = 0.5) -> None:
        while not stop.wait(every):
            r = rss_mb(self.pid)
            if r is not None:
                self.timeline.append((round(time.perf_counter() - self.t0, 1), self.count, round(r, 1)))


def session(idx: int, url: str, params: dict, files: list[Path], sketches: list[str], rec: Recorder,
            seed: int) -> None:
    from gradio_client import Client, handle_file

    rng = random.Random(seed * 1000 + idx)
    try:
        client = Client(url, verbose=False, download_files=False)
    except Exception as e:
        rec.record("connect", 0.0, f"{type(e).__name__}: {e}")
        return
    mix = {k: w for k, w in MIX.items() if k in params}
    names, weights = list(mix), list(mix.values())
    analysed = False

    def defaults(name: str, first) -> list:
        rest = [p.get("parameter_default") for p in params[name][1:]]
        return [first, *rest]

    while not rec.done():
        name = rng.choices(names, weights)[0]
        if name == "pose" and not analysed:
            name = "analyse_upload" if "analyse_upload" in params else "predict"
        f = handle_file(str(rng.choice(files)))
        if name == "predict":
            args = [f]
        elif name == "analyse_upload":
            args = defaults(name, f)
        elif name == "analyse_sketch":
            args = defaults(name, rng.choice(sketches))
        elif name == "pose":
            args = [rng.randrange(10), *[round(rng.uniform(-0.4, 0.4), 3) for _ in range(16)]]
            args += [p.get("parameter_default") for p in params[name][len(args):]]
        else:  # routing: image + digit class
            args = [f, rng.randrange(10)] + [p.get("parameter_default") for p in params[name][2:]]
        t = time.perf_counter()
        error = None
        try:
            out = client.predict(*args, api_name="/" + name)
            if name == "predict" and (not isinstance(out, dict) or out.get("error") is not None):
                error = f"unexpected result {str(out)[:200]}"
            if name.startswith("analyse"):
                analysed = True
        except Exception as e:
            error = f"{type(e).__name__}: {str(e)[:300]}"
        rec.record(name, time.perf_counter() - t, error)
    try:
        client.close()
    except Exception:
        pass


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of `pid` from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def window_median(timeline: list[tuple[float, int, float]], early: int, late: int) -> tuple[float | None, float | None]:
    """Median RSS of the samples taken in the first and in the last fifth of the requests from `early` to `late`.

    One sample swings by up to 10% with the requests in flight (1,253-1,386 MB at a flat steady state, 20 clients),
    so two single samples can't tell a leak from the moment they were taken; a leak moves the median of a window."""
    span = max(1, (late - early) // 5)
    first = [r for _, n, r in timeline if early <= n <= early + span]
    last = [r for _, n, r in timeline if late - span <= n <= late]
    return (statistics.median(first) if first else None), (statistics.median(last) if last else None)


def run_load(clients: int = 20, duration: float = 60.0, max_requests: int = 6000, marks=(200, 2000),
             checkpoint: str | None = None, seed: int = 0, server_env: dict | None = None, log=print,
             max_duration: float = 300.0, keep: bool = False, warmup: int = 300) -> dict:
    work = Path(tempfile.mkdtemp(prefix="capsnet-load-"))
    files = input_files(work)
    sketches = sketch_urls(files)
    server = Server(checkpoint, env=server_env, log_dir=str(work))
    try:
        ready_s = server.wait_ready()
        params = endpoint_params(server.url)
        exercised = [k for k in MIX if k in params]
        log(f"server pid {server.proc.pid} on {server.url} ready in {ready_s:.1f} s; endpoints exercised: {exercised}")
        rss_start = server.rss_mb()
        cpu_server0, cpu_self0 = cpu_seconds(server.proc.pid), time.process_time()
        rec = Recorder(server.proc.pid, (warmup,), max_requests + warmup)  # the marks are judged on rec.timeline
        rec.warmup = warmup
        stop = threading.Event()
        sampler = threading.Thread(target=rec.sample_loop, args=(stop,), daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        rec.configure_stop(t0, duration, max_duration, warmup + marks[-1])
        threads = [
            threading.Thread(target=session, args=(i, server.url, params, files, sketches, rec, seed), daemon=True)
            for i in range(clients)
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=max(1.0, t0 + max_duration - time.perf_counter()) + 120)
        elapsed = time.perf_counter() - t0
        stop.set()
        hung = sum(th.is_alive() for th in threads)
        rss_end = server.rss_mb()
        cpu_server = cpu_seconds(server.proc.pid)
        cpu_server = None if cpu_server is None or cpu_server0 is None else round(cpu_server - cpu_server0, 1)
        cpu_clients = round(time.process_time() - cpu_self0, 1)
        # the server still serves a normal request afterwards
        from gradio_client import Client, handle_file

        after = Client(server.url, verbose=False, download_files=False).predict(handle_file(str(files[0])), api_name="/predict")
        load1 = os.getloadavg()[0]
    finally:
        server.stop()
    if keep is False:
        import shutil

        shutil.rmtree(work, ignore_errors=True)

    endpoints = {}
    for name, s in sorted(rec.samples.items()):
        endpoints[name] = {
            "n": len(s), "p50_ms": round(1000 * statistics.median(s), 1), "p95_ms": round(1000 * percentile(s, 0.95), 1),
            "max_ms": round(1000 * max(s), 1),
            "failures": sum(1 for e, _ in rec.failures if e == name),
        }
    early, late = marks[0], marks[-1]
    rss_early, rss_late = window_median(rec.timeline, warmup + early, warmup + late)
    growth = (rss_late / rss_early - 1.0) if rss_early and rss_late else None
    result = {
        "clients": clients, "duration_s": round(elapsed, 1), "warmup_requests": warmup,
        "requests": rec.count - warmup, "failures": len(rec.failures),
        "failure_examples": rec.failures[:5], "hung_sessions": hung,
        "throughput_rps": round(rec.count / elapsed, 1), "endpoints": endpoints,
        "rss_mb": {"start": rss_start, "after_warmup": rec.rss_at.get(warmup) if warmup else rss_start,
                   f"median_after_{early}": rss_early, f"median_before_{late}": rss_late, "end": rss_end},
        "rss_growth": None if growth is None else round(growth, 4),
        "rss_timeline": rec.timeline[:: max(1, len(rec.timeline) // 30)],
        "predict_after_load": after, "loadavg_1min_at_end": round(load1, 2), "cpus": os.cpu_count(),
        "cpu_s": {"server": cpu_server, "clients": cpu_clients},
        "exercised": exercised, "server_log": str(server.log_path),
    }
    result["criteria"] = {
        "zero_failures": not rec.failures and hung == 0,
        f"rss_after_{late}_within_10pct_of_{early}": growth is not None and abs(growth) <= 0.10,
        "serves_after_load": isinstance(after, dict) and after.get("error") is None,
    }
    return result


def report(r: dict) -> str:
    lines = [
        f"clients {r['clients']}, {r['duration_s']} s, {r['warmup_requests']} warm-up + {r['requests']} requests "
        f"({r['throughput_rps']} req/s), "
        f"{r['failures']} failed, {r['hung_sessions']} sessions hung; load average at end {r['loadavg_1min_at_end']} "
        f"on {r['cpus']} CPUs; CPU seconds used: server {r['cpu_s']['server']}, clients {r['cpu_s']['clients']}",
        f"{'endpoint':18s} {'n':>6s} {'p50 ms':>9s} {'p95 ms':>9s} {'max ms':>9s} {'failed':>7s}",
    ]
    for name, e in r["endpoints"].items():
        lines.append(f"{'/' + name:18s} {e['n']:6d} {e['p50_ms']:9.1f} {e['p95_ms']:9.1f} {e['max_ms']:9.1f} {e['failures']:7d}")
    rss = r["rss_mb"]
    lines.append("server RSS MB: " + ", ".join(f"{k} {v:.1f}" if v else f"{k} n/a" for k, v in rss.items())
                 + (f"; growth {100 * r['rss_growth']:+.1f}%" if r["rss_growth"] is not None else ""))
    for f in r["failure_examples"]:
        lines.append(f"failure: {f}")
    lines.append("criteria: " + ", ".join(f"{k}={'PASS' if v else 'FAIL'}" for k, v in r["criteria"].items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load (at least)")
    ap.add_argument("--max-duration", type=float, default=300.0,
                    help="hard limit in seconds; between --duration and this the load goes on until --rss-late requests")
    ap.add_argument("--max-requests", type=int, default=6000, help="stop earlier after this many requests")
    ap.add_argument("--rss-early", type=int, default=200)
    ap.add_argument("--rss-late", type=int, default=2000)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=300, help="requests before counting (not in latencies / marks)")
    ap.add_argument("--json", default=None, help="also write the full result here")
    args = ap.parse_args(argv)
    r = run_load(args.clients, args.duration, args.max_requests, (args.rss_early, args.rss_late), args.checkpoint,
                 args.seed, max_duration=args.max_duration, warmup=args.warmup)
    print(report(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1, default=str))
    return 0 if all(r["criteria"].values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        sys.exit(2)
