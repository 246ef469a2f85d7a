"""A real browser (Debian's chromium via Playwright) draws a digit, moves a pose slider and clears the canvas."""
import contextlib
import os
import shutil
import time
from pathlib import Path

import pytest

from explorer.serving import served

from .conftest import MNIST_DIR, SHIPPED

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOT = Path(os.environ.get("EXPLORER_SCREENSHOT", "/tmp/capsnet-explorer.png"))


def _require(condition: bool, reason: str):
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def app_url():
    _require(Path(CHROMIUM).exists() or shutil.which("chromium") is not None, f"{CHROMIUM} is missing (apt-get install chromium)")
    _require(SHIPPED.exists(), f"no trained checkpoint at {SHIPPED}: run `python -m capsnet.train` first")
    from explorer.app import LAUNCH_OPTIONS, build_demo

    demo = build_demo(SHIPPED, data_dir=MNIST_DIR if (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists() else None)
    with served(demo, **LAUNCH_OPTIONS) as url:
        yield url


@contextlib.contextmanager
def chromium():
    """Debian's chromium driven by Playwright, closed on the way out."""
    pw_sync = pytest.importorskip("playwright.sync_api")
    with pw_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def page(app_url):
    with chromium() as browser:
        pg = browser.new_page(viewport={"width": 1400, "height": 1100})
        pg.set_default_timeout(30_000)
        pg.goto(app_url)
        yield pg


def _canvas(page):
    canvas = page.locator("#sketchpad canvas").first
    canvas.wait_for(state="visible")
    return canvas


def _draw_seven(page):
    box = _canvas(page).bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]

    def stroke(points):
        page.mouse.move(x0 + points[0][0] * w, y0 + points[0][1] * h)
        page.mouse.down()
        for px, py in points[1:]:
            page.mouse.move(x0 + px * w, y0 + py * h, steps=12)
        page.mouse.up()

    stroke([(0.25, 0.22), (0.75, 0.22), (0.45, 0.82)])  # a 7


def _src(page, elem_id):
    img = page.locator(f"#{elem_id} img").first
    img.wait_for(state="visible")
    return img.get_attribute("src")


def test_draw_predict_slide_clear(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    prompt = page.locator("#prompt")
    # the page opens with a built-in synthetic example analysed
    expect(page.locator("#prediction")).to_contain_text("synthetic 7", timeout=30_000)
    expect(prompt).to_be_hidden()

    _draw_seven(page)
    expect(page.locator("#prediction")).not_to_contain_text("synthetic", timeout=30_000)
    expect(page.locator("#prediction")).to_contain_text("Prediction", timeout=30_000)
    expect(page.locator("#lengths-plot .js-plotly-plot")).to_be_visible()
    expect(page.locator("#lengths-plot")).to_contain_text("Digit-capsule lengths")
    expect(prompt).to_be_hidden()
    assert _src(page, "model-input")

    page.get_by_role("tab", name="Pose").click()
    # the reconstruction is a canvas the browser draws; the server's copy (img.pose-server) follows on commit
    server_src = "() => { const i = document.querySelector('#reconstruction img.pose-server'); return i && i.getAttribute('src'); }"
    page.wait_for_function(server_src, timeout=30_000)
    before = page.evaluate(server_src)
    pixels = "() => Array.from(document.querySelector('#reconstruction canvas').getContext('2d').getImageData(0, 0, 28, 28).data).join()"
    canvas_before = page.evaluate(pixels)
    number = page.locator("#pose-dim-0 input[type='number']")
    value = float(number.input_value())
    number.fill(f"{max(-1.0, min(1.0, value + 0.6 if value < 0.4 else value - 0.6)):.2f}")
    number.press("Enter")
    page.wait_for_function(f"b => ({server_src})() !== b", arg=before, timeout=30_000)
    page.wait_for_function(f"b => ({pixels})() !== b", arg=canvas_before, timeout=30_000)
    page.screenshot(path=str(SCREENSHOT.with_name(SCREENSHOT.stem + "-pose.png")), full_page=True)

    page.get_by_role("tab", name="Perturbations").click()
    expect(page.locator("#perturbation-grid img")).to_be_visible(timeout=30_000)
    page.get_by_role("tab", name="Digit capsules").click()
    page.wait_for_timeout(500)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.locator("#clear-canvas").click()
    expect(prompt).to_be_visible(timeout=30_000)
    expect(prompt).to_contain_text("Draw a digit")
    expect(page.locator("#lengths-plot")).to_be_hidden()


def _settled_box(page, locator, seconds: float = 15.0) -> dict:
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


def _wait_src_change(page, elem_id, before):
    page.wait_for_function(
        "([id, before]) => { const i = document.querySelector(`#${id} img`); return i && i.src !== before; }",
        arg=[elem_id, before], timeout=30_000,
    )


def test_examples_routing_transforms_model_card(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    from explorer.views import capsule_map as cm
    from capsnet import primary_capsule_position

    pred = page.locator("#prediction")
    page.get_by_role("tab", name="Examples").click()
    page.locator("#synthetic-gallery button, #synthetic-gallery .thumbnail-item").nth(3).click()
    expect(pred).to_contain_text("synthetic 3", timeout=30_000)

    # Routing: the map, a click on one capsule, the type/row/col controls and the iteration slider
    page.get_by_role("tab", name="Routing").click()
    expect(page.locator("#coupling-caption")).to_contain_text("iteration 3 of 3", timeout=30_000)
    page.locator("#coupling-map").scroll_into_view_if_needed()  # its image loads lazily, below the structure views
    img = page.locator("#coupling-map img").first
    img.wait_for(state="visible")
    index = 13 * 36 + 2 * 6 + 3  # type 13, row 2, col 3
    y, x = cm.cell_of(index)
    natural_w = img.evaluate("i => i.naturalWidth")
    # aim as a person does: scroll to the map, wait until it has stopped moving, check that nothing (a loading
    # overlay) lies over the cell
    deadline = time.monotonic() + 30
    while True:
        img.scroll_into_view_if_needed()  # views above it may have grown since and pushed it down
        box = _settled_box(page, img)
        f = min(1.0, box["width"] / natural_w)
        shown_w, shown_h = natural_w * f, img.evaluate("i => i.naturalHeight") * f
        ox, oy = box["x"] + (box["width"] - shown_w) / 2, box["y"] + (box["height"] - shown_h) / 2
        cx, cy = ox + (x + 0.5) * cm.CELL * f, oy + (y + 0.5) * cm.CELL * f
        on_map = img.evaluate("(i, [x, y]) => document.elementFromPoint(x, y) === i", [cx, cy])
        if on_map or time.monotonic() > deadline:
            break
        page.wait_for_timeout(250)
    assert on_map, "the capsule map stayed covered or out of place for 30 s: " + img.evaluate(
        "(i, [x, y]) => { const e = document.elementFromPoint(x, y); const r = i.getBoundingClientRect(); "
        "return `${e ? e.outerHTML.slice(0, 300) : e} at ${x},${y}; img ${r.x},${r.y},${r.width}x${r.height}, "
        "viewport ${innerWidth}x${innerHeight}`; }", [cx, cy])
    before = img.get_attribute("src")
    page.mouse.click(cx, cy)
    expect(page.locator("#capsule-summary")).to_contain_text(f"Capsule {index} (type 13, row 2, col 3)", timeout=30_000)
    _wait_src_change(page, "coupling-map", before)
    assert page.locator("#capsule-type input").input_value() == "13"
    expect(page.locator("#capsule-details .js-plotly-plot")).to_be_visible()

    t = page.locator("#capsule-type input")
    t.fill("5")
    t.press("Enter")
    want = primary_capsule_position(5 * 36 + 2 * 6 + 3)
    expect(page.locator("#capsule-summary")).to_contain_text(f"type {want.type}, row 2, col 3", timeout=30_000)

    before = img.get_attribute("src")
    it = page.locator("#routing-iteration input[type='number']")
    it.fill("1")
    it.press("Enter")
    expect(page.locator("#coupling-caption")).to_contain_text("iteration 1 of 3", timeout=30_000)
    _wait_src_change(page, "coupling-map", before)
    expect(page.locator("#coupling-caption")).to_contain_text("Fixed scale")

    # Where routing's structure is: explanation, contributions, links (isolated by hover / click), counterfactual
    expect(page.locator("#routing-explanation")).to_contain_text("arXiv:1907.13327")
    for elem in ("contribution-grids", "type-summary", "routing-counterfactual", "blank-change", "routing-polarization",
                 "routing-logits"):  # fmt: skip
        expect(page.locator(f"#{elem} .js-plotly-plot")).to_be_visible(timeout=30_000)
    expect(page.locator("#contribution-caption")).to_contain_text("iteration 1")  # follows the slider
    expect(page.locator("#counterfactual-summary")).to_contain_text("0.1")
    links = page.locator("#routing-links .js-plotly-plot")
    expect(links).to_be_visible(timeout=30_000)
    page.wait_for_function("() => (document.querySelector('#routing-links .js-plotly-plot')?.layout?.title?.text || '')"
                           ".includes('iteration 1')", timeout=30_000)  # fmt: skip
    links.scroll_into_view_if_needed()
    node = links.evaluate("""gd => { const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const r = gd.querySelector('.main-svg').getBoundingClientRect();
        const t = gd.data.find(d => d.meta === -2);
        return {x: r.left + xa._offset + xa.l2p(t.x[3]), y: r.top + ya._offset + ya.l2p(t.y[3])}; }""")
    isolated = "gd => gd.dataset.isolated"
    page.mouse.move(node["x"], node["y"], steps=5)  # hover: only digit 3's links stay
    page.wait_for_function("() => document.querySelector('#routing-links .js-plotly-plot').dataset.isolated === '3'")
    page.mouse.click(node["x"], node["y"])  # click: keep them isolated
    page.mouse.move(node["x"] - 300, node["y"])
    page.wait_for_timeout(300)
    assert links.evaluate(isolated) == "3"
    dims = links.evaluate("""gd => Array.from(gd.querySelectorAll('.scatterlayer .trace')).map((g, i) =>
        [gd.data[i].meta, g.style.opacity])""")  # fmt: skip
    assert {o for m, o in dims if m == 3} == {""} and {o for m, o in dims if isinstance(m, int) and 0 <= m != 3} == {"0.05"}
    page.mouse.click(node["x"], node["y"])  # click again: all links back
    page.wait_for_function("() => document.querySelector('#routing-links .js-plotly-plot').dataset.isolated === ''")
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOT.with_name(SCREENSHOT.stem + "-routing.png")), full_page=True)

    # Transforms: rotating changes the analysed input and labels the prediction
    page.get_by_role("tab", name="Transforms").click()
    expect(page.locator("#eq-trajectories .js-plotly-plot")).to_be_visible(timeout=30_000)
    before = _src(page, "model-input")
    angle = page.locator("#tf-angle input[type='number']")
    angle.fill("30")
    angle.press("Enter")
    expect(pred).to_contain_text("rotated +30", timeout=30_000)
    _wait_src_change(page, "model-input", before)
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOT.with_name(SCREENSHOT.stem + "-transforms.png")), full_page=True)
    page.locator("#tf-reset").click()
    expect(pred).to_contain_text("none (the original input)", timeout=30_000)

    # MNIST test digits (when a copy is configured)
    page.get_by_role("tab", name="Examples").click()
    if page.locator("#random-mnist").is_visible():
        page.locator("#random-mnist").click()
        expect(pred).to_contain_text("MNIST test digit", timeout=30_000)
        expect(pred).to_contain_text("true label", timeout=30_000)

    # Model card
    page.get_by_role("tab", name="Model card").click()
    expect(page.locator("#model-card-summary")).to_contain_text("MNIST test accuracy")
    expect(page.locator("#model-card-summary")).to_contain_text("99.75%")
    expect(page.locator("#confusion-matrix .js-plotly-plot")).to_be_visible(timeout=30_000)
    expect(page.locator("#routing-study")).to_contain_text("Does routing matter?")
    expect(page.locator("#equivariance-heatmap .js-plotly-plot")).to_be_visible(timeout=30_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(SCREENSHOT.with_name(SCREENSHOT.stem + "-model-card.png")), full_page=True)


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


def test_pose_trajectories_click_opens_the_pose_slider(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    pose_tab = page.get_by_role("tab", name="Pose")

    def focused_pose_dim():
        return page.evaluate("() => { const b = document.activeElement && document.activeElement.closest('[id^=pose-dim-]');"
                             " return b ? b.id : null; }")  # fmt: skip

    expect(page.locator("#prediction")).to_contain_text("Prediction", timeout=30_000)  # an input is analysed
    page.get_by_role("tab", name="Transforms").click()
    expect(page.locator("#eq-trajectories .js-plotly-plot")).to_be_visible(timeout=30_000)
    expect(page.locator("#eq-tracking")).to_contain_text("Rotation is tracked most by dims", timeout=30_000)
    page.locator("#eq-transform").get_by_text("stroke thickness").click()
    expect(page.locator("#eq-tracking")).to_contain_text("Stroke thickness is tracked most by dims", timeout=30_000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOT.with_name(SCREENSHOT.stem + "-trajectories.png")), full_page=True)

    # a dimension button: the Pose tab opens with that dimension's slider in view and focused
    chip = page.locator("#eq-dims .eq-dim-top").first
    dim = int(chip.get_attribute("data-pose-dim"))
    chip.click()
    expect(pose_tab).to_have_attribute("aria-selected", "true", timeout=10_000)
    expect(page.locator(f"#pose-dim-{dim}")).to_be_in_viewport(timeout=10_000)
    page.wait_for_function(f"() => document.activeElement && document.activeElement.closest('#pose-dim-{dim}')",
                           timeout=10_000)  # fmt: skip
    assert focused_pose_dim() == f"pose-dim-{dim}"

    # a click on a trajectory in the plot does the same for its dimension
    page.get_by_role("tab", name="Transforms").click()
    plot = page.locator("#eq-trajectories .js-plotly-plot").first
    expect(plot).to_be_visible(timeout=30_000)
    point = plot.evaluate(_LONELY_POINT_JS)
    assert point and point["gap"] > 3, point
    plot.scroll_into_view_if_needed()
    box = _settled_box(page, plot)
    page.mouse.move(box["x"] + point["x"], box["y"] + point["y"])
    page.wait_for_timeout(200)
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    expect(pose_tab).to_have_attribute("aria-selected", "true", timeout=10_000)
    page.wait_for_function(f"() => document.activeElement && document.activeElement.closest('#pose-dim-{point['dim']}')",
                           timeout=10_000)  # fmt: skip
    expect(page.locator(f"#pose-dim-{point['dim']}")).to_be_in_viewport()


_TITLE_BOXES_JS = """
() => [...document.querySelectorAll('#eq-trajectories .annotation-text')].map(t => {
  const r = t.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })
"""


def test_pose_trajectories_stack_on_a_phone(page, app_url):
    """At 390 px the trajectories' two panels are stacked (their titles side by side ran into each other), and
    back side by side when the window is wide again."""
    expect = pytest.importorskip("playwright.sync_api").expect
    # a page of its own in the module's chromium (one Playwright per thread), 1400 px so the tab bar shows every tab
    tab = page.context.browser.new_page(viewport={"width": 1400, "height": 1100})
    try:
        tab.set_default_timeout(30_000)
        tab.goto(app_url)
        expect(tab.locator("#prediction")).to_contain_text("synthetic", timeout=60_000)
        tab.get_by_role("tab", name="Transforms").click()
        plot = tab.locator("#eq-trajectories .js-plotly-plot").first
        expect(plot).to_be_visible(timeout=60_000)
        stacked = "g => g.layout.xaxis2.domain[0] === 0"
        assert not plot.evaluate(stacked)
        tab.set_viewport_size({"width": 390, "height": 900})
        tab.wait_for_function(f"() => ({stacked})(document.querySelector('#eq-trajectories .js-plotly-plot'))")
        tab.wait_for_timeout(500)
        (l0, t0, r0, b0), (l1, t1, r1, b1) = tab.evaluate(_TITLE_BOXES_JS)
        assert b0 <= t1 or b1 <= t0 or r0 <= l1 or r1 <= l0, "the panel titles overlap"
        assert plot.bounding_box()["width"] <= 390
        tab.set_viewport_size({"width": 1400, "height": 1100})
        tab.wait_for_function(f"() => !({stacked})(document.querySelector('#eq-trajectories .js-plotly-plot'))")
        tab.wait_for_function("() => document.querySelector('#eq-trajectories .js-plotly-plot').clientWidth > 600")
    finally:
        tab.close()
