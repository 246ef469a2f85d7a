"""Gradio's HTTP API spoken by hand (httpx), the way a hostile client would: uploads, named calls, queue joins."""
from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from PIL import Image, ImageDraw

from .conftest import REPO


def file_ref(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def png(im: Image.Image) -> bytes:
    b = io.BytesIO()
    im.save(b, "PNG", optimize=True)
    return b.getvalue()


def blank_1bit(w: int, h: int) -> bytes:
    """A w x h 1-bit PNG: 12000x12000 is ~18 KB on disk and 576 MB as RGBA."""
    return png(Image.new("1", (w, h), 0))


def stroke_rgba(side: int) -> bytes:
    """A transparent side x side canvas with one thick vertical stroke (a "1"), as the sketchpad makes them."""
    im = Image.new("RGBA", (side, side), (255, 255, 255, 0))
    ImageDraw.Draw(im).line([(side // 2, side // 10), (side // 2, side * 9 // 10)], fill=(0, 0, 0, 255),
                            width=max(2, side // 12))  # fmt: skip
    return png(im)


def sketch(data: bytes, kind: str = "png") -> str:
    """What the drawing canvas sends (/analyse_sketch): an image as a data URL."""
    return f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")


class Api:
    """Raw calls against a served app. `local_address` picks the client's source address (127.0.0.x);
    `headers` go with every request (an X-Forwarded-For, as a proxy in front of the app adds it)."""

    def __init__(self, url: str, local_address: str | None = None, timeout: float = 120, headers: dict | None = None):
        transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
        self.http = httpx.Client(base_url=url, timeout=timeout, transport=transport, headers=headers)

    def upload(self, data: bytes, name: str = "image.png") -> str:
        r = self.http.post("/gradio_api/upload", files={"files": (name, data, "image/png")})
        r.raise_for_status()
        return r.json()[0]

    def post(self, name: str, data: list) -> httpx.Response:
        return self.http.post(f"/gradio_api/call/{name}", json={"data": data})

    def result(self, name: str, event_id: str) -> tuple[str, object]:
        """(event, data) of the last message: ("complete", [outputs]) or ("error", {"error": ...})."""
        text = self.http.get(f"/gradio_api/call/{name}/{event_id}").text
        events = [b for b in text.strip().split("\n\n") if b.startswith("event:")]
        kinds = [(b.split("\n")[0][7:].strip(), b.split("\n", 1)[1][6:] if "\n" in b else "null") for b in events]
        kinds = [k for k in kinds if k[0] != "heartbeat"]
        event, data = kinds[-1]
        return event, json.loads(data)

    def call(self, name: str, data: list) -> tuple[str, object]:
        r = self.post(name, data)
        if r.status_code != 200:
            return f"http {r.status_code}", r.json()
        return self.result(name, r.json()["event_id"])

    def info(self) -> dict:
        return self.http.get("/gradio_api/info", params={"all_endpoints": "true"}).json()

    def config(self) -> dict:
        return self.http.get("/config").json()

    def join(self, fn_index: int, data: list, session: str, event_data: dict | None = None,
             trigger_id: int | None = None) -> dict:  # fmt: skip
        """The page's protocol: join the queue as session `session`, read the stream until the event completes.
        `event_data` is what a page script sends with a custom event; `trigger_id` the component it came from."""
        r = self.http.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                           "event_data": event_data, "trigger_id": trigger_id})  # fmt: skip
        r.raise_for_status()
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as s:
            for line in s.iter_lines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    if msg.get("msg") == "process_completed":
                        return msg
        raise AssertionError("the event did not complete")


def vm_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def peak_mb(pid: int, fn) -> tuple[float, object]:
    """(peak RSS growth in MB while fn() runs, fn's result): VmHWM after `echo 5 > /proc/PID/clear_refs`."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = vm_kb(pid, "VmRSS")
    out = fn()
    time.sleep(0.3)
    return (vm_kb(pid, "VmHWM") - before) / 1024, out


class Server:
    """`python -m explorer` in a subprocess with a private GRADIO_TEMP_DIR and TMPDIR (so every file it writes
    is found), run from an empty working directory; `args` are extra flags (e.g. --allow-download)."""

    def __init__(self, tmp: Path, port: int, env: dict | None = None, args: tuple[str, ...] = ()):
        self.tmp, self.port = tmp, port
        self.url = f"http://127.0.0.1:{port}/"
        self.cache, self.tmpdir = tmp / "gradio-cache", tmp / "tmp"
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        full = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_SERVER") and k != "GRADIO_SHARE"}
        full.update(PYTHONPATH=str(REPO), GRADIO_TEMP_DIR=str(self.cache),
                    TMPDIR=str(self.tmpdir), CAPSNET_DATA=str(tmp / "no-mnist"), **(env or {}))  # fmt: skip
        self.log = tmp / "server.log"
        self._f = open(self.log, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "explorer", "--port", str(port), *args], cwd=tmp, env=full,
                                     stdout=self._f, stderr=subprocess.STDOUT)  # fmt: skip
        t0 = time.time()
        while time.time() - t0 < 180:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                httpx.get(self.url + "config", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise TimeoutError(self.log.read_text()[-3000:])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def files_left(self) -> list[Path]:
        """Files under GRADIO_TEMP_DIR and the private temp dir (the app's own capsnet-explorer-* folder)."""
        return [p for root in (self.cache, self.tmpdir) if root.exists() for p in root.rglob("*") if p.is_file()]

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> tuple[float, int | None]:
        """(seconds until the process exited, exit code); killed after `timeout`."""
        t0 = time.time()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self._f.close()
                return float("inf"), None
        self._f.close()
        return time.time() - t0, self.proc.returncode
