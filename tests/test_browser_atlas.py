"""The Atlas tab in chromium: the selected digit capsule's 16 difference maps with their labels, sorted and filtered
by effect, and a card that opens its dimension's slider in the Pose tab."""
import re

import pytest

from .browser_helpers import WAIT, click_tab, wait_for_opening_example

pytestmark = pytest.mark.browser

CARD_Z = re.compile(r"\|z\| ([0-9.]+)")


def _cards(page) -> list[dict]:
    return page.evaluate("""() => [...document.querySelectorAll('#atlas-cards .atlas-card')].map(c => ({
        dim: Number(c.dataset.poseDim), cls: Number(c.dataset.digitClass), text: c.innerText,
        img: c.querySelector('img').naturalWidth, disagrees: !!c.querySelector('.atlas-disagrees')}))""")


def test_atlas_sorts_filters_and_opens_the_slider(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    wait_for_opening_example(page)
    for name in ("Digit capsules", "Pose", "Perturbations", "Routing", "Transforms", "Atlas", "Model card"):
        expect(page.get_by_role("tab", name=name)).to_be_visible()  # every tab fits the tab bar
    click_tab(page, "Atlas")
    expect(page.locator("#atlas-cards .atlas-card")).to_have_count(16, timeout=WAIT)
    page.wait_for_function("() => [...document.querySelectorAll('#atlas-cards img')].every(i => i.naturalWidth > 0)")
    cards = _cards(page)
    assert [c["dim"] for c in cards] == list(range(16)) and {c["cls"] for c in cards} == {7}  # the synthetic 7
    assert all(c["img"] == 84 and "dim " in c["text"] for c in cards)
    expect(page.locator("#atlas-cards .atlas-legend")).to_contain_text("Digit capsule 7")

    page.locator("#atlas-sort").get_by_text("effect size").click()
    expect(page.locator("#atlas-cards .atlas-card").first).not_to_have_attribute("data-pose-dim", "0", timeout=WAIT)
    z = [float(CARD_Z.search(c["text"]).group(1)) for c in _cards(page)]
    assert z == sorted(z, reverse=True) and len(z) == 16

    page.locator("#atlas-filter input").click()
    page.get_by_role("option", name="encoder disagrees").click()
    page.wait_for_function("() => document.querySelectorAll('#atlas-cards .atlas-card').length < 16", timeout=WAIT)
    shown = _cards(page)
    assert shown and all(c["disagrees"] for c in shown), shown

    dim = shown[0]["dim"]
    page.locator(f"#atlas-cards .atlas-card[data-pose-dim='{dim}']").click()
    expect(page.get_by_role("tab", name="Pose")).to_have_attribute("aria-selected", "true", timeout=10_000)
    page.wait_for_function(f"() => document.activeElement && document.activeElement.closest('#pose-dim-{dim}')",
                           timeout=10_000)  # fmt: skip
    expect(page.locator(f"#pose-dim-{dim}")).to_be_in_viewport()
