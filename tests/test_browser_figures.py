"""Every plotly figure downloads as SVG (a button beside it, static/figure_export.js) and as PNG (plotly's camera),
including the figures of a tab opened later."""
from pathlib import Path

import pytest

from .browser_helpers import WAIT, click_tab, wait_for_opening_example

pytestmark = pytest.mark.browser


def download(page, click) -> tuple[str, bytes]:
    with page.expect_download(timeout=WAIT) as info:
        click()
    d = info.value
    return d.suggested_filename, Path(d.path()).read_bytes()


def test_figures_download_as_svg_and_png(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    wait_for_opening_example(page)
    button = page.locator("#lengths-plot .capsnet-svg")
    expect(button).to_be_visible(timeout=WAIT)
    expect(button).to_have_attribute("aria-label", "Download this figure as SVG")
    name, body = download(page, button.click)
    assert name == "capsnet-lengths-plot.svg" and body.lstrip().startswith(b"<svg") and b"Digit-capsule lengths" in body

    page.locator("#lengths-plot .js-plotly-plot").hover()
    name, body = download(page, page.locator("#lengths-plot .modebar-btn[data-title*='png' i]").click)
    assert name.endswith(".png") and body.startswith(b"\x89PNG")

    click_tab(page, "Routing")  # figures drawn after the page opened get their button too
    expect(page.locator("#routing-tab .capsnet-svg").first).to_be_visible(timeout=WAIT)
    assert page.locator("#lengths-plot .capsnet-svg").count() == 1  # once per figure
