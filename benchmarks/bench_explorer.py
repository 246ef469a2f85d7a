"""Explorer latency: server-side handlers, HTTP round trips via gradio_client, and `python -m explorer` start-up.

    nice -n 19 python benchmarks/bench_explorer.py [--repeats 50] [--skip-startup]

Server-side timings call the app's own event handlers (the functions Gradio runs), so they include
preprocessing, the forward pass, every view's data and figure, and PNG writing. HTTP timings compare
each endpoint with trivial endpoints added to the benchmark's own copy of the demo, measured in the same run.
"""
from __future__ import annotations

import argparse
import os

import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from explorer.serving import free_port, served  # noqa: E402
from explorer.app import explorer_ui  # noqa: E402


def stats(samples_s: list[float]) -> str:
    ms = sorted(x * 1000 for x in samples_s)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms   (n={len(ms)})"


def timeit(fn, repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def digit_images(n: int = 8) -> list[np.ndarray]:
    """Hand-drawn-like digits: real MNIST test digits when available (never written to the repo), else strokes."""
    try:
        from capsnet.data import load_mnist

        test = load_mnist(os.environ.get("CAPSNET_TEST_MNIST", str(REPO.parent / "shared" / "data" / "mnist")), train=False)
        return [np.kron(test.images[i].numpy(), np.ones((12, 12), np.uint8)) for i in range(n)]  # 336x336 like the canvas
    except Exception:
        rng = np.random.default_rng(0)
        imgs = []
        for _ in range(n):
            a = np.zeros((336, 336), np.uint8)
            x = rng.integers(60, 200)
            a[60:280, x : x + 28] = 255
            imgs.append(a)
        return imgs


def sketch_value(a: np.ndarray) -> str:
    """What the drawing canvas sends and the handler gets (explorer/inputs/sketch.py): black ink on a transparent
    canvas, the ink `a` in the alpha channel, as a PNG data URL."""
    import base64
    import io

    from explorer.inputs.sketch import PREFIX

    canvas = np.zeros(a.shape + (4,), np.uint8)
    canvas[..., 3] = a
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, "PNG")
    return PREFIX + base64.b64encode(buf.getvalue()).decode("ascii")


def handler(demo, api_name: str):
    for fn in demo.fns.values():
        if fn.api_name == api_name:
            return fn.fn
    raise KeyError(api_name)


def tab_id(demo, label: str) -> str:
    for tab in explorer_ui(demo).view_tabs:
        if tab.label == label:
            return tab.id
    raise KeyError(label)


def server_side(demo, repeats: int) -> dict:
    ui = explorer_ui(demo)
    imgs = [sketch_value(a) for a in digit_images()]
    new_drawing = handler(demo, "analyse_sketch")
    it = iter(range(10**9))
    results = {}
    # The input event: preprocess, forward pass, prediction and model input; then the open tab draws its views.
    results["new drawing: first event (handler)"] = timeit(lambda: new_drawing(imgs[next(it) % len(imgs)]), repeats)
    for label in ("Digit capsules", "Pose", "Perturbations", "Routing", "Transforms"):
        draw = handler(demo, f"views_{tab_id(demo, label)}")

        def both(draw=draw):
            a = new_drawing(imgs[next(it) % len(imgs)])[0]
            return draw(a, a.digit, {}, *[None] * 8)  # (routing: its capsule panel follows in a third event)

        results[f"new drawing + {label} tab's views (both handlers)"] = timeit(both, repeats)
    out = new_drawing(imgs[0])
    analysis = out[0]
    k = analysis.digit
    pose = analysis.pose(k).copy()
    move = handler(demo, "pose")
    rng = np.random.default_rng(0)

    def slide():
        p = pose.copy()
        p[rng.integers(0, 16)] += rng.uniform(-0.25, 0.25)
        return move(analysis, k, *p)

    results["slider move -> reconstruction (handler)"] = timeit(slide, repeats * 4)
    from explorer.views import capsules as views

    results["  of which model.decode only"] = timeit(lambda: views.decode_pose(ui.model, analysis, k, pose), repeats * 4)
    results["  forward pass (analyse)"] = timeit(lambda: views.analyse(ui.model, analysis.image), repeats)
    results["  perturbation grid (1 batched decode + tiling)"] = timeit(lambda: views.perturbation_grid(ui.model, analysis, k), repeats)
    results["  lengths figure"] = timeit(lambda: views.lengths_figure(analysis, selected=k), repeats)

    from explorer.tabs import routing as tr

    from explorer.tabs import routing_structure as ts

    results["  routing overview (tabs.routing_structure.overview_outputs)"] = timeit(
        lambda: ts.overview_outputs(analysis, None), repeats)
    draw_routing = handler(demo, f"views_{tab_id(demo, 'Routing')}")

    def routing_new_input():
        a = new_drawing(imgs[next(it) % len(imgs)])[0]
        return draw_routing(a, a.digit, {}, *[None] * 11)

    results["routing tab for a new input (first event + overview)"] = timeit(routing_new_input, repeats)
    results["routing: coupling-map section (map + evidence + capsule panel)"] = timeit(
        lambda: tr.map_outputs(analysis, k, None, None, None, None), repeats)
    results["routing: contributions section (overlay + links)"] = timeit(lambda: ts.contribution_outputs(analysis, 1), repeats)
    results["routing: iteration step (map + evidence)"] = timeit(lambda: tr.iteration_outputs(analysis, k, 1, 0), repeats)
    results["routing: capsule click (map + details)"] = timeit(lambda: tr.capsule_outputs(analysis, k, 3, 500), repeats)
    results["routing: compare r = 1, 2, 3, 5 (button)"] = timeit(
        lambda: tr.compare_iterations_outputs(ui.model, analysis, [1, 2, 3, 5]), max(5, repeats // 4))
    from explorer.tabs import equivariance as et

    orig = analysis.image.reshape(28, 28).numpy()
    results["transforms: pose trajectories follow-up (19 values)"] = timeit(
        lambda: et.trajectory_outputs(ui.model, orig, "rotation", ui.card, 0.0), max(5, repeats // 4))
    traj = et.trajectory_outputs(ui.model, orig, "rotation", ui.card)[0]
    results["transforms: trajectories redrawn with the slider's marker"] = timeit(
        lambda: et.redraw(traj, ui.card, 10, 1, 0, 0), repeats)
    return results


def http(demo, repeats: int) -> dict:
    import gradio as gr
    from gradio_client import Client, handle_file

    with demo:  # trivial endpoints, only in the benchmark's copy of the app
        t_in, t_out = gr.Textbox(visible=False), gr.Textbox(visible=False)
        t_in.submit(lambda s: s, t_in, t_out, api_name="trivial_text")
        i_in, i_out = gr.Image(type="pil", visible=False), gr.JSON(visible=False)
        i_in.upload(lambda im: {"ok": True}, i_in, i_out, api_name="trivial_image")
    with served(demo) as url:
        client = Client(url, verbose=False, download_files=False)
        tmp = Path(tempfile.mkdtemp())
        paths = []
        for i, a in enumerate(digit_images()):
            p = tmp / f"d{i}.png"
            Image.fromarray(255 - a).save(p)
            paths.append(str(p))
        it = iter(range(10**9))
        nxt = lambda: paths[next(it) % len(paths)]  # noqa: E731
        client.predict(handle_file(paths[0]), api_name="/analyse_upload")  # this session's state for the follow-ups
        rng = np.random.default_rng(0)
        calls = {  # name -> call; all measured round-robin, so background load hits every endpoint alike
            "trivial text endpoint": lambda: client.predict("x", api_name="/trivial_text"),
            "trivial image endpoint": lambda: client.predict(handle_file(nxt()), api_name="/trivial_image"),
            "/predict": lambda: client.predict(handle_file(nxt()), api_name="/predict"),
            "/routing (summary JSON + contributions [32][6][6])": lambda: client.predict(handle_file(nxt()), None, api_name="/routing"),
            "/routing grids=True (+ 2 more x [32][6][6])": lambda: client.predict(handle_file(nxt()), None, True, api_name="/routing"),
            "/analyse_upload (new input: first event)": lambda: client.predict(handle_file(nxt()), api_name="/analyse_upload"),
            # the follow-up a browser sends for the open tab (same session: draws the last uploaded digit)
            "/views_capsules (follow-up: lengths chart)": lambda: client.predict(7, api_name="/views_capsules"),
            "/views_routing (follow-up: routing tab's overview)": lambda: client.predict(7, 3, api_name="/views_routing"),
            "/pose (slider move)": lambda: client.predict(7, *[float(x) for x in rng.uniform(-0.3, 0.3, 16)], api_name="/pose"),
            "/views_transforms (follow-up: transforms tab)": lambda: client.predict(7, 0, 1, 0, 0, api_name="/views_transforms"),
            "/transform_trajectories (tab, new digit: its 19-point sweep)": lambda: client.predict(
                ["rotation", "scale", "thickness"][next(it) % 3], 0, 1, 0, 0, api_name="/transform_trajectories"),
            "/transform_response (19-point sweep JSON)": lambda: client.predict(
                handle_file(nxt()), "rotation", None, api_name="/transform_response"),
        }
        for call in calls.values():  # warm-up
            for _ in range(3):
                call()
        res = {name: [] for name in calls}
        for _ in range(repeats):
            for name, call in calls.items():
                t = time.perf_counter()
                call()
                res[name].append(time.perf_counter() - t)
        # Choosing a transform once the page has prefetched every sweep of the digit (a browser does this right after
        # the chosen sweep): one fixed digit, every transform chosen once, then timed beside the trivial endpoint.
        client.predict(handle_file(paths[0]), api_name="/analyse_upload")
        client.predict(7, 0, 1, 0, 0, api_name="/views_transforms")
        names = ["rotation", "scale", "shift_x", "shift_y", "thickness"]
        for name in names:
            client.predict(name, 0, 1, 0, 0, api_name="/transform_trajectories")
        switch = {"trivial text endpoint (beside the cached switch)": lambda: client.predict("x", api_name="/trivial_text"),
                  "/transform_trajectories (tab: choose a transform, sweeps cached)": lambda: client.predict(
                      names[next(it) % len(names)], 0, 1, 0, 0, api_name="/transform_trajectories")}
        res.update({name: [] for name in switch})
        for _ in range(repeats):
            for name, call in switch.items():
                t = time.perf_counter()
                call()
                res[name].append(time.perf_counter() - t)
        return res


def startup(timeout: float = 60.0) -> float:
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "explorer", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        while time.perf_counter() - t < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - t
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("python -m explorer did not answer")
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--skip-startup", action="store_true")
    ap.add_argument("--startup-runs", type=int, default=3)
    args = ap.parse_args()

    from explorer.app import build_demo

    import torch

    demo = build_demo()
    if explorer_ui(demo).model is None:
        sys.exit(f"no checkpoint: {explorer_ui(demo).model_error}")
    print(f"torch threads: {torch.get_num_threads()}, cpus: {os.cpu_count()}")
    print("\n== server side (handler functions) ==")
    for name, s in server_side(demo, args.repeats).items():
        print(f"{name:50s} {stats(s)}")
    print("\n== HTTP via gradio_client on localhost ==")
    res = http(build_demo(), args.repeats)
    base = {"text": statistics.median(res["trivial text endpoint"]), "image": statistics.median(res["trivial image endpoint"])}
    for name, s in res.items():
        image_in = ("predict" in name or "upload" in name or name.startswith(("/routing", "/transform_response")))
        ref = base["image"] if image_in else base["text"]
        if "sweeps cached" in name:  # against the trivial calls timed beside it
            ref = statistics.median(res["trivial text endpoint (beside the cached switch)"])
        print(f"{name:50s} {stats(s)}   x{statistics.median(s) / ref:.2f} of trivial")
    if not args.skip_startup:
        print("\n== `python -m explorer` until it serves /config ==")
        runs = [startup() for _ in range(args.startup_runs)]
        print("ready in " + ", ".join(f"{r:.1f} s" for r in runs))


if __name__ == "__main__":
    main()
