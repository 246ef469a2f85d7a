"""The Examples tab in a real browser: a synthetic example from the gallery, and a random MNIST test digit when
an MNIST copy is configured."""
import pytest

from .browser_helpers import WAIT, click_tab, show_example

pytestmark = pytest.mark.browser


def test_examples_synthetic_gallery_and_mnist_digits(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    pred = page.locator("#prediction")
    show_example(page, 3)  # the gallery's synthetic 3: "synthetic 3" in the prediction

    # MNIST test digits (when a copy is configured)
    click_tab(page, "Examples")
    if page.locator("#random-mnist").is_visible():
        page.locator("#random-mnist").click()
        expect(pred).to_contain_text("MNIST test digit", timeout=WAIT)
        expect(pred).to_contain_text("true label", timeout=WAIT)
