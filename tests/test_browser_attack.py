"""The Attack tab in a real browser: the runner-up offered as the target, an attack on the analysed input against the
CapsNet and the CNN baseline, and the results cleared by a new input."""
import pytest

from .browser_helpers import WAIT, click_tab, show_example, wait_for_opening_example

pytestmark = pytest.mark.browser


def test_attack_the_analysed_input(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    wait_for_opening_example(page)
    click_tab(page, "Attack")
    target = page.locator("#attack-target input")
    expect(target).not_to_have_value("", timeout=WAIT)  # the runner-up capsule, offered as the target
    target.click()
    page.get_by_role("option", name="3", exact=True).click()
    page.locator("#attack-eps input[type='number']").fill("0.3")
    page.locator("#attack-eps input[type='number']").press("Enter")
    page.locator("#attack-run").click()
    summary = page.locator("#attack-summary")
    expect(summary).to_contain_text("CapsNet", timeout=WAIT)
    expect(summary).to_contain_text("ε = 0.3")
    expect(summary).to_contain_text("→ 3 (target reached)")
    expect(summary).to_contain_text("reconstruction distance")
    for key in ("capsnet", "capsnet-delta"):
        expect(page.locator(f"#attack-{key} img")).to_be_visible()
    expect(page.locator("#attack-lengths .js-plotly-plot")).to_be_visible()
    from capsnet.baseline import default_cnn_checkpoint

    if default_cnn_checkpoint().exists():
        expect(summary).to_contain_text("CNN baseline")
        expect(page.locator("#attack-cnn img")).to_be_visible()

    show_example(page, 2)  # a new input clears the last attack
    click_tab(page, "Attack")
    expect(page.locator("#attack-capsnet img")).to_have_count(0, timeout=WAIT)
    expect(summary).not_to_contain_text("CapsNet")
