"""A real browser (chromium via Playwright) draws a digit, moves a pose slider and clears the canvas.

The other tabs in the browser: test_browser_examples.py, test_browser_routing.py, test_browser_transforms.py,
test_browser_model_card.py, test_pose_browser.py and test_sketchpad.py; their shared steps: browser_helpers.py."""
import pytest

from .browser_helpers import SCREENSHOT, draw_seven as _draw_seven, image_src as _src

pytestmark = pytest.mark.browser


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
