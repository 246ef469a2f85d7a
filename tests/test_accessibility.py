"""An accessibility audit of every view tab with axe-core (the pinned axe-playwright-python, WCAG 2.0 / 2.1 A and
AA rules) in chromium, after the opening example is analysed: no critical or serious violation."""
import pytest

from .browser_helpers import WAIT, click_tab, wait_for_opening_example

pytestmark = pytest.mark.browser

RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
         "resultTypes": ["violations"]}  # fmt: skip
SETTLE_TRIES = 4  # audits per tab, 1.5 s apart, until one finds nothing (a loaded machine draws slowly)
TABS = ("Digit capsules", "Pose", "Perturbations", "Routing", "Transforms", "Atlas", "Model card")


def test_every_view_tab_passes_axe_core(page):
    axe = pytest.importorskip("axe_playwright_python.sync_playwright").Axe()
    expect = pytest.importorskip("playwright.sync_api").expect
    wait_for_opening_example(page)
    found = {}
    for tab in TABS:
        click_tab(page, tab)
        expect(page.get_by_role("tab", name=tab)).to_have_attribute("aria-selected", "true", timeout=WAIT)
        for _ in range(SETTLE_TRIES):  # audit the settled page: a view still drawing is dimmed (lower contrast)
            page.wait_for_timeout(1500)  # the tab's views drawn, the page's scripts run
            serious = {f"{tab}: {v['id']} ({v['impact']})": [n["target"] for n in v["nodes"][:5]]
                       for v in axe.run(page, options=RULES).response["violations"]
                       if v["impact"] in ("critical", "serious")}  # fmt: skip
            if not serious:
                break
        found.update(serious)
    assert not found, found
