"""The Routing tab in a real browser: the capsule map (a click on one capsule, the type/row/col controls, the
iteration slider) and routing's structure (explanation, contributions, links isolated by hover and click,
counterfactual)."""
import pytest

from capsnet import primary_capsule_position
from explorer.views import capsule_map

from .browser_helpers import WAIT, aim_at_map_cell, click_tab, plotly_point_on_page, screenshot, show_example
from .browser_helpers import wait_src_change

pytestmark = pytest.mark.browser


def open_section(page, elem_id: str):
    """Open a collapsed section of a view tab by clicking its label, as a reader does."""
    page.locator(f"#{elem_id}").get_by_role("button").first.click()


def set_iteration(page, value: int):
    it = page.locator("#routing-iteration input[type='number']")
    it.fill(str(value))
    it.press("Enter")


def test_routing_capsule_map_and_structure(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    show_example(page, 3)  # the gallery's synthetic 3

    # the overview: contributions and routing against uniform couplings; every other view in a collapsed section
    click_tab(page, "Routing")
    expect(page.locator("#routing-question")).to_contain_text("does routing change the answer")
    expect(page.locator("#contribution-grids .js-plotly-plot")).to_be_visible(timeout=WAIT)
    expect(page.locator("#routing-counterfactual .js-plotly-plot")).to_be_visible(timeout=WAIT)
    expect(page.locator("#counterfactual-summary")).to_contain_text("0.1")
    for elem in ("coupling-map", "contribution-overlay", "type-summary", "routing-polarization", "blank-change"):
        expect(page.locator(f"#{elem}")).to_be_hidden()

    # the map, a click on one capsule, the type/row/col controls and the iteration slider
    open_section(page, "coupling-section")
    expect(page.locator("#coupling-caption")).to_contain_text("iteration 3 of 3", timeout=WAIT)
    page.locator("#coupling-map").scroll_into_view_if_needed()
    img = page.locator("#coupling-map img").first
    img.wait_for(state="visible")
    index = 13 * 36 + 2 * 6 + 3  # type 13, row 2, col 3
    cx, cy = aim_at_map_cell(page, img, capsule_map.CELL, *capsule_map.cell_of(index))
    before = img.get_attribute("src")
    page.mouse.click(cx, cy)
    expect(page.locator("#capsule-summary")).to_contain_text(f"Capsule {index} (type 13, row 2, col 3)", timeout=WAIT)
    wait_src_change(page, "coupling-map", before)
    assert page.locator("#capsule-type input").input_value() == "13"
    expect(page.locator("#capsule-details .js-plotly-plot")).to_be_visible()

    t = page.locator("#capsule-type input")
    t.fill("5")
    t.press("Enter")
    want = primary_capsule_position(5 * 36 + 2 * 6 + 3)
    expect(page.locator("#capsule-summary")).to_contain_text(f"type {want.type}, row 2, col 3", timeout=WAIT)

    before = img.get_attribute("src")
    set_iteration(page, 1)
    expect(page.locator("#coupling-caption")).to_contain_text("iteration 1 of 3", timeout=WAIT)
    wait_src_change(page, "coupling-map", before)
    expect(page.locator("#coupling-caption")).to_contain_text("Fixed scale")
    page.wait_for_function("() => (document.querySelector('#contribution-grids .js-plotly-plot')?.layout?.title?.text"
                           " || '').includes('iteration 1')", timeout=WAIT)  # fmt: skip

    # a section closed while the slider moves is drawn at the slider's iteration when opened again
    open_section(page, "coupling-section")  # (closes it)
    expect(page.locator("#coupling-map")).to_be_hidden()
    set_iteration(page, 2)
    page.wait_for_function("() => (document.querySelector('#contribution-grids .js-plotly-plot')?.layout?.title?.text"
                           " || '').includes('iteration 2')", timeout=WAIT)  # fmt: skip
    open_section(page, "coupling-section")
    expect(page.locator("#coupling-caption")).to_contain_text("iteration 2 of 3", timeout=WAIT)
    expect(page.locator("#capsule-summary")).to_contain_text(f"type {want.type}, row 2, col 3")  # still selected

    # the structure sections, each drawn when opened: pixel view and links, per type, per iteration, blank image
    set_iteration(page, 1)
    open_section(page, "routing-why")
    expect(page.locator("#routing-explanation")).to_contain_text("arXiv:1907.13327")
    for section in ("contributions-section", "types-section", "iterations-section", "blank-section"):
        open_section(page, section)
    for elem in ("type-summary", "blank-change", "routing-sharpening", "routing-polarization", "routing-logits"):
        expect(page.locator(f"#{elem} .js-plotly-plot")).to_be_visible(timeout=WAIT)
    expect(page.locator("#contribution-caption")).to_contain_text("iteration 1", timeout=WAIT)  # follows the slider
    links = page.locator("#routing-links .js-plotly-plot")
    expect(links).to_be_visible(timeout=WAIT)
    page.wait_for_function("() => (document.querySelector('#routing-links .js-plotly-plot')?.layout?.title?.text || '')"
                           ".includes('iteration 1')", timeout=WAIT)  # fmt: skip
    links.scroll_into_view_if_needed()
    node = plotly_point_on_page(links, -2, 3)  # digit 3's node (the digit-capsule trace has meta -2)
    isolated = "gd => gd.dataset.isolated"
    page.mouse.move(node["x"], node["y"], steps=5)  # hover: only digit 3's links stay
    page.wait_for_function("() => document.querySelector('#routing-links .js-plotly-plot').dataset.isolated === '3'")
    page.mouse.click(node["x"], node["y"])  # click: keep them isolated
    page.mouse.move(node["x"] - 300, node["y"])
    page.wait_for_timeout(300)
    assert links.evaluate(isolated) == "3"
    dims = links.evaluate("""gd => Array.from(gd.querySelectorAll('.scatterlayer .trace')).map((g, i) =>
        [gd.data[i].meta, g.style.opacity])""")  # fmt: skip
    assert {o for m, o in dims if m == 3} == {""} and {o for m, o in dims if isinstance(m, int) and 0 <= m != 3} == {"0.05"}
    page.mouse.click(node["x"], node["y"])  # click again: all links back
    page.wait_for_function("() => document.querySelector('#routing-links .js-plotly-plot').dataset.isolated === ''")
    page.wait_for_timeout(300)
    screenshot(page, "routing")
