"""The Model card tab in a real browser: the accuracy first; the training curves, confusion matrix, routing study
and equivariance heatmap in sections opened by a click."""
import pytest

from .browser_helpers import WAIT, click_tab, screenshot, wait_for_opening_example

pytestmark = pytest.mark.browser


def test_model_card(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    wait_for_opening_example(page)
    click_tab(page, "Model card")
    expect(page.locator("#model-card-summary")).to_contain_text("MNIST test accuracy")
    expect(page.locator("#model-card-summary")).to_contain_text("99.75%")
    expect(page.locator("#per-class-accuracy .js-plotly-plot")).to_be_visible(timeout=WAIT)
    # the rest in collapsed sections, each figure sent when its section opens
    for section in ("training-curves", "confusion-matrix", "routing-study", "equivariance-heatmap"):
        expect(page.locator(f"#{section}")).to_be_hidden()
        page.locator(f"#{section}-section").get_by_role("button").first.click()
    for plot in ("training-curves", "confusion-matrix", "equivariance-heatmap"):
        expect(page.locator(f"#{plot} .js-plotly-plot")).to_be_visible(timeout=WAIT)
    expect(page.locator("#confusion-matrix")).to_contain_text("Confusion matrix")
    expect(page.locator("#routing-study")).to_contain_text("Does routing matter?")
    page.wait_for_timeout(500)
    screenshot(page, "model-card")
