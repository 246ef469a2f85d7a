"""?view=<name> for an iframe in a course page: that one view beside its input, opened as a click opens it; an
unknown or hostile name gets one sentence and the full page."""
import urllib.parse

import pytest

from .browser_helpers import WAIT, open_page, wait_for_opening_example

pytestmark = pytest.mark.browser

# view name -> something only that view shows once drawn
VIEWS = {"pose": "#pose-dim-0", "routing": "#routing-question", "model-card": "#model-card-summary",
         "capsules": "#lengths-plot .js-plotly-plot", "atlas": "#atlas-tab"}  # fmt: skip


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_one_view_alone(browser, explorer_url, view):
    expect = pytest.importorskip("playwright.sync_api").expect
    page = open_page(browser, f"{explorer_url}?view={view}")
    try:
        wait_for_opening_example(page)
        expect(page.locator(VIEWS[view]).first).to_be_visible(timeout=WAIT)
        expect(page.locator("#explorer-title")).to_be_hidden()
        expect(page.locator("#explorer-intro")).to_be_hidden()
        expect(page.locator(f"#{view}-tab-button").first).to_be_hidden()  # the tabs' strip
        expect(page.locator("#sketchpad")).to_be_visible()  # its input stays
        expect(page.locator("#embed-note")).to_be_hidden()
        others = [v for v in VIEWS if v != view]
        for other in others:
            expect(page.locator(f"#{other}-tab")).to_be_hidden()
    finally:
        page.close()


@pytest.mark.parametrize("name", ["nope", "<img src=x onerror=alert(1)>", "", "pose\u0000", "p" * 5000, "%ff%fe"])
def test_unknown_view_is_one_sentence_and_the_full_page(browser, explorer_url, name):
    expect = pytest.importorskip("playwright.sync_api").expect
    dialogs = []
    page = browser.new_page()
    page.on("dialog", lambda d: dialogs.append(d.message) or d.dismiss())
    try:
        query = name if name.startswith("%") else urllib.parse.quote(name)
        page.goto(f"{explorer_url}?view={query}", timeout=WAIT)
        wait_for_opening_example(page)
        note = page.locator("#embed-note")
        expect(note).to_be_visible(timeout=WAIT)
        expect(note).to_contain_text("There is no view named")
        expect(note).to_contain_text("the views are")
        assert len(note.inner_text()) < 300 and note.locator("img").count() == 0
        expect(page.locator("#explorer-title")).to_be_visible()
        expect(page.locator("#pose-tab-button").first).to_be_visible()
        assert dialogs == []
    finally:
        page.close()
