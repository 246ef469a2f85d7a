"""The Perturbations tab in a real browser: the Figure-4 grid, and one dimension's sweep as an animated GIF made on
request, downloadable, and gone when the input changes."""
import io

import pytest
from PIL import Image

from .browser_helpers import WAIT, click_tab, image_src, show_example, wait_for_opening_example

pytestmark = pytest.mark.browser


def test_one_dimensions_sweep_as_an_animated_gif(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    wait_for_opening_example(page)
    click_tab(page, "Perturbations")
    expect(page.locator("#perturbation-grid img")).to_be_visible(timeout=WAIT)
    page.locator("#sweep-dim input").click()
    page.get_by_role("option", name="dimension 5", exact=True).click()
    page.locator("#sweep-animate").click()
    gif = page.request.get(image_src(page, "sweep-gif"))
    assert gif.ok
    im = Image.open(io.BytesIO(gif.body()))
    assert im.format == "GIF" and im.n_frames == 20 and im.size == (224, 224)  # 11 steps there, 9 back; 28 px x 8
    frames = []
    for i in range(im.n_frames):
        im.seek(i)
        frames.append(im.convert("L").tobytes())
    assert len(set(frames)) > 5  # the dimension changes the reconstruction
    expect(page.locator("#sweep-gif button[aria-label*='ownload'], #sweep-gif a[download]").first).to_be_visible()

    show_example(page, 3)  # a new input: the old sweep goes, the grid follows
    click_tab(page, "Perturbations")
    expect(page.locator("#sweep-gif img")).to_have_count(0, timeout=WAIT)
    expect(page.locator("#perturbation-grid img")).to_be_visible(timeout=WAIT)
