"""The drawing canvas: its brush against MNIST (stroke width after preprocessing, ten drawn digits read right
offline), its value (a PNG data URL) read and refused, and draw, clear, draw again as a visitor does: ten digits in
a row in chromium by mouse (also 150 ms away) and by touch, undo within a drawing, and one small request per stroke
with no uploads."""
from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.inputs.sketch import BRUSH_RADIUS, CANVAS, MAX_CHARS, PREFIX, sketch_input
from explorer.inputs.preprocess import preprocess, stroke_width

from .conftest import SHIPPED
from .sketch_digits import DIGITS, canvas_value, render, scaled
from .browser_helpers import SCREENSHOT, require


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
    """The page's canvas driven like a visitor: strokes by mouse or by touch, Clear and Undo by click or tap."""

    step = 40.0  # longest pointer move (screen px): the canvas paints straight lines between pointer events

    def __init__(self, page, url: str, touch: bool = False, latency_ms: float = 0.0):
        self.page, self.touch = page, touch
        self.expect = pytest.importorskip("playwright.sync_api").expect
        self.cdp = page.context.new_cdp_session(page) if touch or latency_ms else None
        if latency_ms:  # a remote visitor: every request waits this long (Chrome's network emulation)
            self.cdp.send("Network.enable")
            self.cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": latency_ms,
                                                               "downloadThroughput": -1, "uploadThroughput": -1})
        page.set_default_timeout(WAIT)
        page.goto(url)
        self.expect(page.locator("#prediction")).to_contain_text("synthetic 7", timeout=2 * WAIT)  # page is ready

    def draw(self, strokes):
        canvas = self.page.locator("#sketchpad canvas")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        left, top, side = box["x"], box["y"], box["width"]  # square (CSS aspect-ratio)
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

    def clear(self):
        """Clear with the canvas's button, then check the blank state: the prompt instead of the views."""
        page = self.page
        self.press(page.locator("#clear-canvas"))
        self.expect(page.locator("#prompt")).to_be_visible(timeout=WAIT)
        self.expect(page.locator("#prompt")).to_contain_text("Draw a digit", timeout=WAIT)
        self.expect(page.locator("#lengths-plot")).to_be_hidden(timeout=WAIT)
        self.expect(page.locator("#prediction")).to_have_text("", timeout=WAIT)

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


def _ten_digits(pad: Sketchpad) -> list[np.ndarray]:
    inputs, seconds = [], []
    for i, digit in enumerate(ORDER):
        start = time.monotonic()
        if i:
            pad.clear()
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
@pytest.mark.parametrize("latency_ms", [0.0, 150.0])
def test_ten_digits_with_clears_by_mouse(explorer_url, browser, latency_ms):
    """Ten digits in a row by mouse, cleared each time (also as a remote visitor, 150 ms away); then Undo within a
    drawing, back to the blank canvas and never past a clear."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100}, locale="en-US")
    try:
        pad = Sketchpad(page, explorer_url, latency_ms=latency_ms)
        _check_widths(_ten_digits(pad))

        undo = page.locator("#undo-stroke")
        pad.clear()
        loop, stem = DIGITS[9]
        pad.draw([loop])
        pad.shows([loop], 0)
        pad.draw([stem])
        pad.shows([loop, stem], 9)
        pad.press(undo)
        pad.shows([loop], 0)
        pad.press(undo)
        pad.expect(page.locator("#prompt")).to_be_visible(timeout=WAIT)  # the blank canvas of the clear
        pad.press(undo)  # nothing left to undo: still blank, not the 5 before the clear
        page.wait_for_timeout(500)
        pad.expect(page.locator("#prompt")).to_be_visible(timeout=WAIT)
        pad.draw_digit(4)
    finally:
        page.close()


@pytest.mark.browser
def test_ten_digits_with_clears_by_touch(explorer_url, browser):
    """On a phone-sized touch screen, in another language: strokes by touch (the page does not scroll under the
    finger), clears by tapping."""
    context = browser.new_context(viewport={"width": 412, "height": 915}, has_touch=True, is_mobile=True,
                                  device_scale_factor=2, locale="es-ES")  # fmt: skip
    try:
        page = context.new_page()
        pad = Sketchpad(page, explorer_url, touch=True)
        try:
            _check_widths(_ten_digits(pad))
        except BaseException:
            page.screenshot(path=str(SCREENSHOT.with_name(SCREENSHOT.stem + "-touch-failure.png")), full_page=True)
            raise
    finally:
        context.close()


# --------------------------------------------------------------------------- one small request per stroke


@pytest.mark.browser
def test_a_stroke_is_one_small_request(explorer_url, browser):
    """A finished stroke sends the canvas at most once, as a data URL of a few KB in the sketch event's join; nothing
    goes to Gradio's upload or component-server routes, through digits, clears and tab changes."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100}, locale="en-US")
    posts: list[tuple[str, str]] = []
    page.on("request", lambda r: posts.append((r.url, r.post_data or "")) if r.method == "POST" else None)
    try:
        pad = Sketchpad(page, explorer_url)
        posts.clear()
        strokes = 0
        for i, digit in enumerate((3, 8, 1)):
            if i:
                pad.clear()
            pad.draw_digit(digit)
            strokes += len(DIGITS[digit])
            for tab in ("Pose", "Routing", "Digit capsules"):
                page.get_by_role("tab", name=tab).first.click()
                page.wait_for_timeout(500)
        assert not [u for u, _ in posts if "/upload" in u or "/component_server" in u], posts
        sketches = [json.loads(body)["data"][0] for u, body in posts if "/queue/join" in u and PREFIX in body]
        # at most one per stroke; fewer when strokes end while the last one's event runs (always_last sends the
        # canvas once more after it, as it is then)
        assert 3 <= len(sketches) <= strokes, (len(sketches), strokes)
        assert max(len(s) for s in sketches) < 20_000, [len(s) for s in sketches]
    finally:
        page.close()


# --------------------------------------------------------------------------- the canvas's value (no browser)


def data_url(image: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return PREFIX + base64.b64encode(buf.getvalue()).decode("ascii")


def test_the_canvas_value_is_read_like_the_strokes():
    """A drawn 9 sent as the canvas's PNG data URL is the model input its strokes make; "" and None are blank."""
    pre = sketch_input(canvas_value(DIGITS[9]))
    assert not pre.blank and np.abs(pre.image.numpy()[0] - model_input(DIGITS[9])).max() < 0.05
    assert sketch_input("").blank and sketch_input(None).blank
    assert "Nothing to read yet" in sketch_input("").message


@pytest.mark.parametrize("value, says", [
    (7, "got int"), ({"composite": None}, "got dict"), (["x"], "got list"),
    ("x" * (MAX_CHARS + 1), "at most"), ("data:image/jpeg;base64,AAAA", "starts"),
    (PREFIX + "not base64!", "not base64"), (PREFIX + base64.b64encode(b"hello").decode(), "not an image"),
    (PREFIX + "AAAA\n", "not base64"),
])  # fmt: skip
def test_a_value_that_is_no_canvas_gets_one_sentence(value, says):
    pre = sketch_input(value)
    assert pre.blank and says in pre.message and pre.message.count(". ") == 0, pre.message
    assert len(pre.message) < 200


def test_a_sketch_is_a_png_of_at_most_1024_pixels_a_side():
    """Other formats and larger pictures are refused from the header, before a pixel is decoded; a bomb-sized
    PNG header (40000 x 40000, a few hundred bytes) included."""
    assert "not PNG" in sketch_input(data_url(Image.new("L", (28, 28)), "GIF")).message
    assert "1500x20" in sketch_input(data_url(Image.new("L", (1500, 20)))).message
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    t0 = time.perf_counter()
    pre = sketch_input(PREFIX + base64.b64encode(bomb).decode())
    assert pre.blank and "on a side" in pre.message and time.perf_counter() - t0 < 0.5
    assert "Nothing to read yet" in sketch_input(data_url(Image.new("RGBA", (CANVAS, CANVAS)))).message  # empty canvas
