"""The Model card tab in a real browser: the accuracy, the confusion matrix, the routing study and the
equivariance heatmap."""
import pytest

from .browser_helpers import WAIT, click_tab, screenshot, wait_for_opening_example

pytestmark = pytest.mark.browser


def test_model_card(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    wait_for_opening_example(page)
    click_tab(page, "Model card")
    expect(page.locator("#model-card-summary")).to_contain_text("MNIST test accuracy")
    expect(page.locator("#model-card-summary")).to_contain_text("99.75%")
    expect(page.locator("#confusion-matrix .js-plotly-plot")).to_be_visible(timeout=WAIT)
    expect(page.locator("#routing-study")).to_contain_text("Does routing matter?")
    expect(page.locator("#equivariance-heatmap .js-plotly-plot")).to_be_visible(timeout=WAIT)
    page.wait_for_timeout(500)
    screenshot(page, "model-card")
