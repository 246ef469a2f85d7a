"""Shared steps of the browser tests: find and launch chromium, serve the app, open the page, wait for the opening
example, pick an example, draw a digit, switch tabs, read an image's src, and aim clicks at what the page draws.

Chromium: Debian's /usr/bin/chromium (or `chromium` on PATH) when there is one, else Playwright's own
(`python -m playwright install chromium`). Without either, or without Playwright, a test skips, and fails when CI
is set: in CI the browser tests never skip.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

import pytest

from .conftest import SHIPPED
from .pose_drag import CHROMIUM, CHROMIUM_ARGS  # one definition, shared with benchmarks/bench_pose_browser.py

SCREENSHOT = Path(os.environ.get("EXPLORER_SCREENSHOT", "/tmp/capsnet-explorer.png"))
WAIT = 30_000  # ms for anything the server answers
VIEWPORT = {"width": 1400, "height": 1100}  # wide enough for the tab bar to show every tab
NO_CHROMIUM = (f"no chromium: neither {CHROMIUM} nor Playwright's own chromium is installed "
               "(run `apt-get install chromium` or `python -m playwright install chromium`)")


def require(condition: bool, reason: str):
    """Skip the test when `condition` is false, or fail it when the CI variable is set (CI never skips)."""
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def chromium_executable() -> str | None:
    """Debian's chromium when it is there (/usr/bin/chromium, else `chromium` on PATH); None: Playwright's own."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    return shutil.which("chromium")


def sync_api():
    """playwright.sync_api (a test extra: `pip install -e '.[test]'`)."""
    try:
        from playwright import sync_api
    except ImportError:
        require(False, "Playwright is missing: pip install -e '.[test]'")
    return sync_api


@contextlib.contextmanager
def chromium():
    """A headless chromium driven by Playwright (chromium_executable(), else Playwright's own), closed on the way
    out. Only one such Playwright may run per thread: a test module shares one (the `browser` fixture)."""
    api = sync_api()
    with api.sync_playwright() as pw:
        executable = chromium_executable()
        try:
            browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except api.Error as e:
            if executable is not None or "Executable doesn't exist" not in str(e):
                raise
            require(False, NO_CHROMIUM)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def serve_explorer(data_dir: Path | None):
    """The shipped app served as `python -m explorer` serves it (LAUNCH_OPTIONS), with the MNIST examples of
    `data_dir` when given; yields its URL."""
    require(SHIPPED.exists(), f"no trained checkpoint at {SHIPPED}: run `python -m capsnet.train` first")
    from explorer.app import LAUNCH_OPTIONS, build_demo
    from explorer.serving import served

    demo = build_demo(SHIPPED, data_dir=data_dir)
    with served(demo, **LAUNCH_OPTIONS) as url:
        yield url


def open_page(browser, url: str):
    """A new 1400x1100 tab on `url`, waiting up to WAIT for anything."""
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT)
    page.goto(url)
    return page


def wait_for_opening_example(page):
    """The page opens with a built-in synthetic 7 analysed."""
    sync_api().expect(page.locator("#prediction")).to_contain_text("synthetic 7", timeout=WAIT)


def click_tab(page, name: str):
    page.get_by_role("tab", name=name).click()


def show_example(page, digit: int):
    """From the Examples tab, analyse the synthetic example of `digit` (after the opening example, which could
    otherwise land after it)."""
    wait_for_opening_example(page)
    click_tab(page, "Examples")
    page.locator("#synthetic-gallery button, #synthetic-gallery .thumbnail-item").nth(digit).click()
    sync_api().expect(page.locator("#prediction")).to_contain_text(f"synthetic {digit}", timeout=WAIT)


def canvas(page):
    """The sketchpad's canvas, once visible."""
    c = page.locator("#sketchpad canvas").first
    c.wait_for(state="visible")
    return c


def draw_seven(page):
    """Draw a 7 on the sketchpad with the mouse: three points, two strokes' worth of moves."""
    box = canvas(page).bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]

    def stroke(points):
        page.mouse.move(x0 + points[0][0] * w, y0 + points[0][1] * h)
        page.mouse.down()
        for px, py in points[1:]:
            page.mouse.move(x0 + px * w, y0 + py * h, steps=12)
        page.mouse.up()

    stroke([(0.25, 0.22), (0.75, 0.22), (0.45, 0.82)])  # a 7


def image_src(page, elem_id: str) -> str | None:
    """The src of the first image in #elem_id, once visible."""
    img = page.locator(f"#{elem_id} img").first
    img.wait_for(state="visible")
    return img.get_attribute("src")


def wait_src_change(page, elem_id: str, before: str | None):
    """Wait until the first image in #elem_id shows something other than `before`."""
    page.wait_for_function(
        "([id, before]) => { const i = document.querySelector(`#${id} img`); return i && i.src !== before; }",
        arg=[elem_id, before], timeout=WAIT,
    )


def screenshot(page, suffix: str = ""):
    """A full-page screenshot at SCREENSHOT, with `-suffix` added to its name when given."""
    path = SCREENSHOT.with_name(f"{SCREENSHOT.stem}-{suffix}.png") if suffix else SCREENSHOT
    page.screenshot(path=str(path), full_page=True)


def settled_box(page, locator, seconds: float = 15.0) -> dict:
    """The locator's bounding box once it has stopped moving (views above it still rendering push it down):
    where a person clicks is where the thing has come to rest. Two equal boxes 250 ms apart."""
    deadline = time.monotonic() + seconds
    box = locator.bounding_box()
    while time.monotonic() < deadline:
        page.wait_for_timeout(250)
        again = locator.bounding_box()
        if again == box:
            break
        box = again
    return box


def aim_at_map_cell(page, img, cell_size: int, y: int, x: int, seconds: float = 30.0) -> tuple[float, float]:
    """The page position of cell (y, x) of an image map drawn `cell_size` natural pixels a cell (the capsule map),
    aimed as a person does: scroll to the map, wait until it has stopped moving, and check that nothing (a loading
    overlay) lies over the cell; asserts that it is uncovered within `seconds`."""
    natural_w = img.evaluate("i => i.naturalWidth")
    deadline = time.monotonic() + seconds
    while True:
        img.scroll_into_view_if_needed()  # views above it may have grown since and pushed it down
        box = settled_box(page, img)
        f = min(1.0, box["width"] / natural_w)
        shown_w, shown_h = natural_w * f, img.evaluate("i => i.naturalHeight") * f
        ox, oy = box["x"] + (box["width"] - shown_w) / 2, box["y"] + (box["height"] - shown_h) / 2
        cx, cy = ox + (x + 0.5) * cell_size * f, oy + (y + 0.5) * cell_size * f
        on_map = img.evaluate("(i, [x, y]) => document.elementFromPoint(x, y) === i", [cx, cy])
        if on_map or time.monotonic() > deadline:
            break
        page.wait_for_timeout(250)
    assert on_map, "the capsule map stayed covered or out of place for 30 s: " + img.evaluate(
        "(i, [x, y]) => { const e = document.elementFromPoint(x, y); const r = i.getBoundingClientRect(); "
        "return `${e ? e.outerHTML.slice(0, 300) : e} at ${x},${y}; img ${r.x},${r.y},${r.width}x${r.height}, "
        "viewport ${innerWidth}x${innerHeight}`; }", [cx, cy])
    return cx, cy


def plotly_point_on_page(plot, trace_meta, index: int) -> dict:
    """{x, y}: where plotly drew point `index` of the trace whose `meta` is `trace_meta`, in page pixels.

    Plotly has no public call for this: it is read from its internals, the full layout's axes (`_offset`, the
    axis origin inside the figure, and `l2p`, linear data value to axis pixels) plus the figure's SVG box."""
    return plot.evaluate("""(gd, [meta, i]) => { const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const r = gd.querySelector('.main-svg').getBoundingClientRect();
        const t = gd.data.find(d => d.meta === meta);
        return {x: r.left + xa._offset + xa.l2p(t.x[i]), y: r.top + ya._offset + ya.l2p(t.y[i])}; }""",
                         [trace_meta, index])  # fmt: skip


# The pixel position of the point of a highlighted pose trajectory that lies furthest from every other
# trajectory's point at the same transform value, so a click there can only mean that dimension.
_LONELY_POINT_JS = """
gd => {
  const fl = gd._fullLayout, xa = fl.xaxis, ya = fl.yaxis;
  const pose = gd._fullData.filter(t => t.xaxis === "x" && t.customdata);
  let best = null;
  for (const t of pose.filter(t => t.showlegend)) {
    for (let i = 0; i < t.x.length; i++) {
      const px = xa._offset + xa.d2p(t.x[i]), py = ya._offset + ya.d2p(t.y[i]);
      let gap = Infinity;
      for (const o of pose) if (o !== t) gap = Math.min(gap, Math.abs(ya._offset + ya.d2p(o.y[i]) - py));
      if (!best || gap > best.gap) best = {x: px, y: py, gap: gap, dim: t.customdata[i]};
    }
  }
  return best;
}
"""


def lonely_trajectory_point(plot) -> dict | None:
    """{x, y, gap, dim}: the point of a highlighted pose trajectory (#eq-trajectories' left panel) furthest, by
    `gap` pixels, from every other trajectory's point at the same transform value, so a click there can only mean
    pose dimension `dim`; x, y in pixels from the figure's top left.

    Read from plotly's internals: `_fullData` (the traces as drawn, `customdata` holding each point's dimension)
    and the full layout's axes (`_offset` and `d2p`, data value to axis pixels)."""
    return plot.evaluate(_LONELY_POINT_JS)
