"""The sketchpad: its brush against MNIST (stroke width after preprocessing, ten drawn digits read right offline),
and draw, clear, draw again as a visitor does: ten digits in a row in Debian's chromium with either clear control
(the app's #clear-canvas button and the sketchpad's own clear tool), by mouse and by touch, never re-selecting
the brush by hand."""
from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.app import BRUSH_RADIUS, CANVAS
from explorer.inputs.preprocess import preprocess, stroke_width

from .conftest import SHIPPED
from .sketch_digits import DIGITS, render, scaled
from .browser_helpers import SCREENSHOT, require, wait_for_opening_example


def model_input(strokes) -> np.ndarray:
    """What the model should see for these strokes alone: (28, 28) in [0, 1]."""
    return preprocess(render(strokes, CANVAS, BRUSH_RADIUS)).image.numpy()[0]


# --------------------------------------------------------------------------- brush vs MNIST (no browser)


def test_stroke_width_measures_known_strokes():
    bar = np.zeros((28, 28))
    bar[4:24, 10:13] = 1.0
    assert stroke_width(bar)[0] == pytest.approx(3.0)
    assert stroke_width(bar.T)[0] == pytest.approx(3.0)
    soft = bar.copy()
    soft[4:24, 9] = soft[4:24, 13] = 0.5  # anti-aliased edges count by their intensity
    assert stroke_width(soft)[0] == pytest.approx(4.0)
    diagonal = np.zeros((28, 28))
    for i in range(20):
        diagonal[4 + i, 4 + i : 6 + i] = 1.0  # 2 px across horizontally: 2 / sqrt(2) perpendicular
    assert stroke_width(diagonal)[0] == pytest.approx(np.sqrt(2))
    assert stroke_width(diagonal[:, ::-1])[0] == pytest.approx(np.sqrt(2))
    assert stroke_width(np.zeros((2, 28, 28))).tolist() == [0.0, 0.0]


def test_brush_strokes_are_as_wide_as_mnist(mnist_test):
    """The brush suits digits: drawn two thirds of the canvas tall (as the browser tests draw them), strokes come out
    of preprocessing within MNIST's interquartile stroke width, near its median; drawn half or five sixths of the
    canvas tall, within its 10th-90th percentiles. The brush scales with the canvas when the browser resizes it,
    so this holds at any displayed size."""
    images = mnist_test.images.reshape(-1, 28, 28).float().numpy()[::5] / 255.0  # both halves of the test set
    mnist = stroke_width(images)
    p10, p25, p50, p75, p90 = np.percentile(mnist, [10, 25, 50, 75, 90])
    ours = {f: float(np.median(stroke_width([model_input(scaled(DIGITS[k], f)) for k in range(10)])))
            for f in (0.75, 1.0, 1.25)}  # fmt: skip
    report = f"MNIST p10/25/50/75/90 {p10:.2f}/{p25:.2f}/{p50:.2f}/{p75:.2f}/{p90:.2f}; drawn: {ours}"
    assert p25 <= ours[1.0] <= p75 and abs(ours[1.0] - p50) < 0.25, report
    assert p10 <= ours[1.25] < ours[0.75] <= p90, report


def test_test_digits_are_read_right():
    """The drawings the browser tests make are recognisable (so a failure there is the page's, not the shapes')."""
    require(SHIPPED.exists(), f"no trained checkpoint at {SHIPPED}: run `python -m capsnet.train` first")
    from capsnet import load_pretrained

    images = torch.stack([torch.from_numpy(model_input(DIGITS[k]))[None] for k in range(10)])
    with torch.no_grad():
        assert load_pretrained(SHIPPED)(images).predictions.tolist() == list(range(10))


ORDER = (3, 8, 1, 0, 6, 2, 9, 4, 7, 5)  # ten different digits, none twice in a row
WAIT = 60_000  # ms for anything the server answers; generous because the test machine may be busy
MISMATCH = 0.08  # most ink allowed outside the other image's strokes (dilated by 1 px): old strokes add far more


def mismatch(actual: np.ndarray, expected: np.ndarray) -> float:
    """The larger share of either image's ink lying off the other's strokes (widened by one pixel)."""

    def widened(a):
        m = np.pad(a > 0.1, 1)
        return np.max([m[1 + dy : 29 + dy, 1 + dx : 29 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)

    off_a = actual[~widened(expected)].sum() / max(actual.sum(), 1e-6)
    off_e = expected[~widened(actual)].sum() / max(expected.sum(), 1e-6)
    return float(max(off_a, off_e))


# --------------------------------------------------------------------------- the browser


class Sketchpad:
    """The page's sketchpad driven like a visitor: strokes by mouse or by touch, clears by click or tap."""

    # Longest pointer move (screen px). The brush paints straight between pointer events, so the polylines' own
    # points are enough; each event costs a software-WebGL render in headless chromium, slow on a busy machine.
    step = 80.0

    def __init__(self, page, url: str, touch: bool = False, latency_ms: float = 0.0):
        self.page, self.touch = page, touch
        self.expect = pytest.importorskip("playwright.sync_api").expect
        self.cdp = page.context.new_cdp_session(page) if touch or latency_ms else None
        if latency_ms:  # a remote visitor: every request and upload waits this long (Chrome's network emulation)
            self.cdp.send("Network.enable")
            self.cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": latency_ms,
                                                               "downloadThroughput": -1, "uploadThroughput": -1})
        page.set_default_timeout(WAIT)
        page.goto(url)
        self.expect(page.locator("#prediction")).to_contain_text("synthetic 7", timeout=2 * WAIT)  # page is ready
        self.expect_brush()

    def expect_brush(self):
        """The brush is selected: Gradio's "select the draw tool to start" placeholder is gone."""
        self.page.locator("#sketchpad canvas").first.wait_for(state="visible")
        self.expect(self.page.locator("#sketchpad .empty")).to_have_count(0, timeout=WAIT)

    def _square(self):
        """(left, top, side) of the canvas on screen: Gradio fits it, centred, into its drawing area at the zoom
        it shows (e.g. "86%")."""
        box = self.page.locator("#sketchpad canvas").first.bounding_box()
        zoom = float(re.search(r"(\d+)%", self.page.locator("#sketchpad .zoom-number").inner_text()).group(1)) / 100
        side = CANVAS * zoom
        return box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2, side

    def draw(self, strokes):
        self.page.locator("#sketchpad canvas").first.scroll_into_view_if_needed()
        left, top, side = self._square()
        for stroke in strokes:
            pts = [(left + x * side, top + y * side) for x, y in stroke]
            path = [pts[0]]
            for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
                n = max(1, int(np.hypot(x1 - x0, y1 - y0) / self.step))
                path += [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for i in range(1, n + 1)]
            if self.touch:
                touch = lambda kind, p: self.cdp.send(  # noqa: E731
                    "Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": p[0], "y": p[1]}] if p else []})
                touch("touchStart", path[0])
                for p in path[1:]:
                    touch("touchMove", p)
                touch("touchEnd", None)
            else:
                self.page.mouse.move(*path[0])
                self.page.mouse.down()
                for p in path[1:]:
                    self.page.mouse.move(*p)
                self.page.mouse.up()

    def press(self, locator):
        locator.tap() if self.touch else locator.click()

    def clear(self, control: str):
        """Clear with the app's button ("app") or the sketchpad's own tool ("tool", the last button of its top
        panel, whatever the language), then check the blank state: prompt shown, brush still selected."""
        page = self.page
        button = page.locator("#clear-canvas") if control == "app" else page.locator("#sketchpad .top-panel button").last
        self.press(button)
        self.expect(page.locator("#prompt")).to_be_visible(timeout=WAIT)
        self.expect(page.locator("#prompt")).to_contain_text("Draw a digit", timeout=WAIT)
        self.expect(page.locator("#lengths-plot")).to_be_hidden(timeout=WAIT)
        self.expect(page.locator("#prediction")).to_have_text("", timeout=WAIT)
        self.expect_brush()

    def model_input(self, expected: np.ndarray, timeout_s: float = 90.0) -> np.ndarray:
        """Wait until the page's 28x28 model input shows the expected strokes; return it (fails with the closest)."""
        img, seen, best = self.page.locator("#model-input img"), None, (np.inf, None)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            src = img.first.get_attribute("src") if img.count() else None
            response = self.page.request.get(src) if src and src != seen else None
            if response is not None and response.ok:
                seen = src
                actual = np.asarray(Image.open(io.BytesIO(response.body())).convert("L"), np.float32) / 255.0
                score = mismatch(actual, expected)
                if score <= MISMATCH:
                    return actual
                best = min(best, (score, actual), key=lambda t: t[0])
            self.page.wait_for_timeout(150)
        pytest.fail(f"the model input never showed only the new strokes (closest: {best[0]:.0%} of the ink off)")

    def shows(self, strokes, digit: int) -> np.ndarray:
        """The model input holds exactly these strokes, read as `digit`, and the views are shown again."""
        actual = self.model_input(model_input(strokes))
        self.expect(self.page.locator("#prediction")).to_contain_text(f"Prediction: {digit}", timeout=WAIT)
        self.expect(self.page.locator("#prompt")).to_be_hidden(timeout=WAIT)
        return actual

    def draw_digit(self, digit: int) -> np.ndarray:
        self.draw(DIGITS[digit])
        return self.shows(DIGITS[digit], digit)


def _ten_digits(pad: Sketchpad, controls) -> list[np.ndarray]:
    inputs, seconds = [], []
    for i, digit in enumerate(ORDER):
        start = time.monotonic()
        if i:
            pad.clear(controls[i % len(controls)])
        inputs.append(pad.draw_digit(digit))
        pad.expect(pad.page.locator("#lengths-plot")).to_contain_text(f"predicted {digit}", timeout=WAIT)
        seconds.append(time.monotonic() - start)
    print(f"clear + draw + check, per digit: median {np.median(seconds):.1f} s, max {max(seconds):.1f} s")
    return inputs


def _check_widths(inputs):
    """Strokes as wide in the browser as `test_brush_strokes_are_as_wide_as_mnist` measures offline."""
    drawn = float(np.median(stroke_width(inputs)))
    expected = float(np.median(stroke_width([model_input(DIGITS[d]) for d in ORDER])))
    assert abs(drawn - expected) < 0.3, (drawn, expected)


@pytest.mark.browser
@pytest.mark.parametrize("control, latency_ms", [("app", 0.0), ("tool", 150.0)])
def test_ten_digits_with_clears_by_mouse(explorer_url, browser, control, latency_ms):
    """Ten digits in a row by mouse, cleared each time with one control and never re-selecting the brush (the
    sketchpad's own tool as a remote visitor, 150 ms away); then undo and redo within a drawing, never past a clear."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100}, locale="en-US")
    try:
        pad = Sketchpad(page, explorer_url, latency_ms=latency_ms)
        top = page.locator("#sketchpad .top-panel button")
        # the controls static/sketchpad.js finds by position are the ones it means
        assert top.last.get_attribute("aria-label") == "Clear canvas"
        assert page.locator("#sketchpad .toolbar-wrap .half-container button").first.get_attribute("aria-label") == "Brush"
        _check_widths(_ten_digits(pad, [control]))

        # Undo and redo work within the current drawing, and never reach past a clear.
        undo, redo = page.locator("#sketchpad").get_by_role("button", name="Undo"), page.locator("#sketchpad").get_by_role("button", name="Redo")
        pad.clear(control)
        pad.expect(undo).to_be_disabled(timeout=WAIT)
        loop, stem = DIGITS[9]
        pad.draw([loop])
        pad.shows([loop], 0)
        pad.draw([stem])
        pad.shows([loop, stem], 9)
        pad.press(undo)
        pad.shows([loop], 0)
        pad.press(redo)
        pad.shows([loop, stem], 9)
        pad.press(undo)
        pad.press(undo)  # back to the blank canvas of the clear, not to the 5 before it
        pad.expect(page.locator("#prompt")).to_be_visible(timeout=WAIT)
        pad.expect(undo).to_be_disabled(timeout=WAIT)
        pad.draw_digit(4)  # the brush is still selected
    finally:
        page.close()


@pytest.mark.browser
def test_ten_digits_with_clears_by_touch(explorer_url, browser):
    """On a phone-sized touch screen, in another language (the script must not rely on English labels): strokes
    by touch, clears by tapping each control in turn."""
    context = browser.new_context(viewport={"width": 412, "height": 915}, has_touch=True, is_mobile=True,
                                  device_scale_factor=2, locale="es-ES")  # fmt: skip
    try:
        page = context.new_page()
        pad = Sketchpad(page, explorer_url, touch=True)
        assert page.locator("#sketchpad .top-panel button").last.get_attribute("aria-label") != "Clear canvas"
        try:
            _check_widths(_ten_digits(pad, ["app", "tool"]))
        except BaseException:
            page.screenshot(path=str(SCREENSHOT.with_name(SCREENSHOT.stem + "-touch-failure.png")), full_page=True)
            raise
    finally:
        context.close()


# --------------------------------------------------------------------------- one upload per drawing


UPLOAD = "/gradio_api/upload"


# Installed before the page's scripts, so static/upload_reuse.js wraps it: it sees the uploads that reach the network.
RECORD_UPLOADS_JS = """
window.__uploads = [];
const sendUpload = window.fetch.bind(window);
window.fetch = async (input, init) => {
  const url = typeof input === "string" ? input : input.url;
  if (init && init.body instanceof FormData && url.includes("/gradio_api/upload")) {
    for (const file of init.body.getAll("files")) {
      const bytes = new Uint8Array(await file.arrayBuffer());
      let h = 7;
      for (const b of bytes) h = (Math.imul(h, 31) + b) >>> 0;
      window.__uploads.push([performance.now() / 1000, file.name, `${bytes.length}:${h}`]);
    }
  }
  return sendUpload(input, init);
};
"""


@pytest.mark.browser
def test_each_drawing_is_uploaded_once(explorer_url, browser):
    """Gradio 6.31's page posts the drawing's three images again at every status message of every event (15 per
    pose release, 90 per clear, before static/upload_reuse.js). Now, through digits, clears, tab changes and pose
    releases, no image is sent twice within the reuse window, each canvas state (a stroke, a clear) costs at most
    three uploads, and every view still follows the drawing."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100}, locale="en-US")
    page.add_init_script(RECORD_UPLOADS_JS)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and UPLOAD in r.url else None)
    try:
        pad = Sketchpad(page, explorer_url)
        states = 0
        for i, digit in enumerate((3, 8, 1)):
            if i:
                pad.clear("app")
                states += 1
            pad.draw_digit(digit)
            states += len(DIGITS[digit])
            for tab in ("Pose", "Routing", "Digit capsules", "Pose"):
                page.get_by_role("tab", name=tab).first.click()
                page.wait_for_timeout(700)
            number = page.locator("#pose-dim-0 input[type='number']")
            number.fill("0.25" if i % 2 else "-0.25")
            number.press("Enter")
            page.wait_for_timeout(1500)
            pad.expect(page.locator("#prediction")).to_contain_text(f"Prediction: {digit}", timeout=WAIT)
            page.get_by_role("tab", name="Digit capsules").first.click()
        sent = page.evaluate("window.__uploads")
        assert len(sent) == len(posts), "every upload the page sent went through the recorder"
        assert 0 < len(sent) <= 3 * states, f"{len(sent)} uploads for {states} canvas states"
        last: dict[tuple[str, str], float] = {}
        for t, name, content in sent:
            assert t - last.get((name, content), -1e9) > 20.0, f"{name} ({content}) sent again within 20 s"
            last[(name, content)] = t
    finally:
        page.close()


# Posts from the page itself: the same file twice at once, then again, then other bytes, then with an upload_id.
POST_UPLOADS_JS = """
async () => {
  const post = (bytes, query = "") => {
    const form = new FormData();
    form.append("files", new File([new Uint8Array(bytes)], "layer_0.png", { type: "image/png" }));
    return fetch(`${location.origin}/gradio_api/upload${query}`, { method: "POST", body: form }).then((r) => r.json());
  };
  const both = await Promise.all([post([1, 2, 3, 4]), post([1, 2, 3, 4])]);
  return [...both, await post([1, 2, 3, 4]), await post([1, 2, 3, 5]), await post([1, 2, 3, 4], "?upload_id=t1")];
}
"""


@pytest.mark.browser
def test_identical_uploads_reuse_the_first_answer(page):
    """static/upload_reuse.js on its own: two identical uploads posted at once and a third after them reach the
    server once and all get the path it gave; other bytes, and uploads that track progress (upload_id), go out."""
    wait_for_opening_example(page)  # the page's load scripts have run
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and UPLOAD in r.url else None)
    first, second, third, other, tracked = page.evaluate(POST_UPLOADS_JS)
    assert first == second == third and len(first) == 1 and first[0].endswith("layer_0.png")
    assert other != first and tracked == first  # the server names a file by its bytes: the same path again
    page.wait_for_timeout(500)
    assert len(posts) == 3, posts  # [1, 2, 3, 4] once, [1, 2, 3, 5], and the tracked one


def test_upload_reuse_stays_inside_the_cache_age():
    """The page reuses an upload's path for a quarter of the server's cache age (at most 30 s), so the file is still
    there when it is named again."""
    from explorer.app import UPLOAD_REUSE_JS, upload_reuse_js

    assert "const REUSE_MS = 30000;" in upload_reuse_js(3600)
    assert "const REUSE_MS = 500;" in upload_reuse_js(2)
    assert upload_reuse_js(2).replace("500;", "30000;") == UPLOAD_REUSE_JS


# --------------------------------------------------------------------------- a late sketch after a clear (no browser)


def test_a_cleared_drawing_sent_again_is_ignored():
    """What Gradio's editor does under load: after the clear, the drawing it removed arrives once more. It changes
    nothing; new drawings, undo within a drawing and API callers (no clear events) are analysed as before."""
    from explorer.inputs.sketch import IGNORE, SketchMemory, sketch_cleared, sketch_input

    def sketch(strokes):
        return render(strokes, CANVAS, BRUSH_RADIUS)

    memory = SketchMemory()
    nine, loop = DIGITS[9], DIGITS[9][:1]
    assert not sketch_input(sketch(loop), memory).blank
    assert not sketch_input(sketch(nine), memory).blank
    assert not sketch_input(sketch(loop), memory).blank  # undo within the drawing
    assert not sketch_input(sketch(nine), memory).blank  # redo
    sketch_cleared(memory)
    assert sketch_input(None, memory).blank  # the clear's own blank event
    assert sketch_input(sketch(nine), memory) is IGNORE  # the late copy of the cleared drawing
    again = sketch_input(sketch(loop), memory)  # drawing after the clear: what the model should see
    assert np.allclose(again.image.numpy()[0], model_input(loop))
    assert not sketch_input(sketch(DIGITS[4]), memory).blank  # the next digit
    sketch_cleared(memory)
    assert sketch_input(sketch(nine), memory) is not IGNORE  # only the drawing the last clear removed
    assert sketch_input(sketch(DIGITS[4]), memory) is IGNORE
    assert sketch_input(sketch(DIGITS[4]), None) is not IGNORE  # no session memory (API callers)
