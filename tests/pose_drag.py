"""Drive the Pose tab in a real browser: drag a slider one `input` event per animation frame, count the distinct
images the reconstruction canvas shows and the server requests made meanwhile. Shared by the browser test and
benchmarks/bench_pose_browser.py, so both measure the same thing.
"""
from __future__ import annotations

import torch

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

# One input event per animation frame on #pose-dim-<dim>'s range input, sweeping it back and forth, while
# every frame also reads the canvas and counts how often its pixels differ from the previous frame's.
DRAG_JS = """
async ([dim, seconds]) => {
  const range = document.querySelector(`#pose-dim-${dim} input[type='range']`);
  const canvas = () => document.querySelector('#reconstruction canvas.pose-canvas');
  const snap = () => { const c = canvas(); return c ? c.getContext('2d').getImageData(0, 0, 28, 28).data.join(',') : ''; };
  const start0 = parseFloat(range.value);
  const before = window.capsnetPose ? window.capsnetPose.decodeMs.length : 0;
  let last = snap(), distinct = 0, frames = 0, events = 0;
  const t0 = performance.now();
  await new Promise((resolve) => {
    const step = (now) => {
      const cur = snap();
      if (cur !== last) { distinct += 1; last = cur; }
      if (now - t0 >= seconds * 1000) { resolve(); return; }
      frames += 1;
      const v = Math.max(-1, Math.min(1, start0 + 0.6 * Math.sin((now - t0) / 1000 * 2 * Math.PI)));
      range.value = String(Math.round(v * 100) / 100);
      range.dispatchEvent(new Event('input', { bubbles: true }));
      events += 1;
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
  const elapsed = (performance.now() - t0) / 1000;
  const ms = window.capsnetPose ? window.capsnetPose.decodeMs.slice(before) : [];
  return { distinct, frames, events, elapsed, decode_ms: ms };
}
"""

READ_POSE_JS = """
() => ({
  pose: [...Array(16).keys()].map(d => parseFloat(document.querySelector(`#pose-dim-${d} input[type='number']`).value)),
  cls: parseInt(document.querySelector('#selected-class input:checked').value),
})
"""

CANVAS_JS = """
() => { const d = document.querySelector('#reconstruction canvas.pose-canvas').getContext('2d').getImageData(0, 0, 28, 28).data;
        return Array.from({ length: 784 }, (_, j) => d[4 * j]); }
"""


def set_latency(page, latency_ms: float):
    """Add `latency_ms` to every request through Chrome DevTools' network emulation; returns the CDP session."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": latency_ms, "downloadThroughput": -1, "uploadThroughput": -1,
    })
    return cdp


def open_pose_tab(page, url: str, timeout_ms: int = 60_000) -> str:
    """Load the app, wait for the opening example, open the Pose tab and wait until the browser decoder has
    loaded or given up; returns its mode ("client" or "server")."""
    page.goto(url)
    page.locator("#prediction").filter(has_text="synthetic").wait_for(timeout=timeout_ms)
    page.get_by_role("tab", name="Pose").click()
    page.wait_for_function(
        "(() => { const i = document.querySelector(\"#pose-dim-0 input[type='number']\"); "
        "return i && i.value !== '0' && window.capsnetPose && window.capsnetPose.mode !== 'loading'; })()",
        timeout=timeout_ms,
    )
    return page.evaluate("window.capsnetPose.mode")


def drag(page, dim: int = 0, seconds: float = 3.0) -> dict:
    """Drag #pose-dim-<dim> for `seconds` (one input event per frame) and count server requests meanwhile.

    Returns distinct canvas images, frames, their rates per second, the requests made and the JS decode times."""
    requests: list[str] = []

    def on_request(req):
        requests.append(req.url)

    page.on("request", on_request)
    try:
        r = page.evaluate(DRAG_JS, [dim, seconds])
    finally:
        page.remove_listener("request", on_request)
    r["requests"] = requests
    r["distinct_per_s"] = r["distinct"] / r["elapsed"]
    r["frames_per_s"] = r["frames"] / r["elapsed"]
    return r


def reference_grey(model, pose, cls) -> torch.Tensor:
    """CapsNet.decode on the 16 values (the other capsules masked anyway), as grey levels round(255 x y)."""
    poses = torch.zeros(1, model.config.num_classes, model.config.digit_dim)
    poses[0, int(cls)] = torch.tensor(pose, dtype=torch.float32)
    with torch.inference_mode():
        y = model.decode(poses, int(cls))[0, 0].flatten()
    return (y.clamp(0, 1) * 255 + 0.5).floor()


def canvas_error(page, model) -> float:
    """Largest |canvas grey - round(255 x CapsNet.decode)| over the 784 pixels, for the values the sliders show."""
    shown = page.evaluate(READ_POSE_JS)
    ref = reference_grey(model, shown["pose"], shown["cls"])
    return float((ref - torch.tensor(page.evaluate(CANVAS_JS), dtype=torch.float32)).abs().max())


SERVER_GREY_JS = """
() => new Promise((res) => {
  const img = document.querySelector('#reconstruction img.pose-server');
  if (!img || !img.getAttribute('src')) { res(null); return; }
  const i = new Image();
  i.onload = () => {
    const c = document.createElement('canvas'); c.width = 28; c.height = 28; const x = c.getContext('2d');
    x.drawImage(i, 0, 0); const d = x.getImageData(0, 0, 28, 28).data;
    res(Array.from({ length: 784 }, (_, j) => d[4 * j]));
  };
  i.onerror = () => res(null);
  i.src = img.getAttribute('src');
})
"""


def server_error(page, model) -> float:
    """Largest |server image grey - round(255 x CapsNet.decode)| for the values the sliders show: 0 once the
    server's latest answer decoded those values (inf while no server image is shown)."""
    grey = page.evaluate(SERVER_GREY_JS)
    if grey is None:
        return float("inf")
    shown = page.evaluate(READ_POSE_JS)
    ref = reference_grey(model, shown["pose"], shown["cls"])
    return float((ref - torch.tensor(grey, dtype=torch.float32)).abs().max())


# Every animation frame, the values the sliders show for `dims`, until window.__poseLogStop() is called.
RECORD_POSE_JS = """
(dims) => {
  window.__poseLog = [];
  let on = true;
  window.__poseLogStop = () => { on = false; return window.__poseLog; };
  const rec = () => {
    if (!on) return;
    window.__poseLog.push(dims.map(d => parseFloat(document.querySelector(`#pose-dim-${d} input[type='number']`).value)));
    requestAnimationFrame(rec);
  };
  requestAnimationFrame(rec);
}
"""
