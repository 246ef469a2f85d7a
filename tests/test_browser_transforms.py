"""The Transforms tab in a real browser: rotating changes the analysed input and labels the prediction; the pose
trajectories open the Pose tab at the dimension clicked, and stack their two panels on a phone."""
import pytest

from .browser_helpers import SCREENSHOT, WAIT, click_tab, image_src, lonely_trajectory_point, screenshot, settled_box
from .browser_helpers import show_example, wait_src_change

pytestmark = pytest.mark.browser


def test_transforms_rotation_labels_the_prediction(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    pred = page.locator("#prediction")
    show_example(page, 3)  # the gallery's synthetic 3
    click_tab(page, "Transforms")
    expect(page.locator("#eq-trajectories .js-plotly-plot")).to_be_visible(timeout=WAIT)
    before = image_src(page, "model-input")
    angle = page.locator("#tf-angle input[type='number']")
    angle.fill("30")
    angle.press("Enter")
    expect(pred).to_contain_text("rotated +30", timeout=WAIT)
    wait_src_change(page, "model-input", before)
    page.wait_for_timeout(300)
    screenshot(page, "transforms")
    page.locator("#tf-reset").click()
    expect(pred).to_contain_text("none (the original input)", timeout=WAIT)


def test_pose_trajectories_click_opens_the_pose_slider(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    pose_tab = page.get_by_role("tab", name="Pose")

    def focused_pose_dim():
        return page.evaluate("() => { const b = document.activeElement && document.activeElement.closest('[id^=pose-dim-]');"
                             " return b ? b.id : null; }")  # fmt: skip

    expect(page.locator("#prediction")).to_contain_text("Prediction", timeout=30_000)  # an input is analysed
    page.get_by_role("tab", name="Transforms").click()
    expect(page.locator("#eq-trajectories .js-plotly-plot")).to_be_visible(timeout=30_000)
    expect(page.locator("#eq-tracking")).to_contain_text("Rotation is tracked most by dims", timeout=30_000)
    page.locator("#eq-transform").get_by_text("stroke thickness").click()
    expect(page.locator("#eq-tracking")).to_contain_text("Stroke thickness is tracked most by dims", timeout=30_000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOT.with_name(SCREENSHOT.stem + "-trajectories.png")), full_page=True)

    # a dimension button: the Pose tab opens with that dimension's slider in view and focused
    chip = page.locator("#eq-dims .eq-dim-top").first
    dim = int(chip.get_attribute("data-pose-dim"))
    chip.click()
    expect(pose_tab).to_have_attribute("aria-selected", "true", timeout=10_000)
    expect(page.locator(f"#pose-dim-{dim}")).to_be_in_viewport(timeout=10_000)
    page.wait_for_function(f"() => document.activeElement && document.activeElement.closest('#pose-dim-{dim}')",
                           timeout=10_000)  # fmt: skip
    assert focused_pose_dim() == f"pose-dim-{dim}"

    # a click on a trajectory in the plot does the same for its dimension
    page.get_by_role("tab", name="Transforms").click()
    plot = page.locator("#eq-trajectories .js-plotly-plot").first
    expect(plot).to_be_visible(timeout=30_000)
    point = lonely_trajectory_point(plot)
    assert point and point["gap"] > 3, point
    plot.scroll_into_view_if_needed()
    box = settled_box(page, plot)
    page.mouse.move(box["x"] + point["x"], box["y"] + point["y"])
    page.wait_for_timeout(200)
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    expect(pose_tab).to_have_attribute("aria-selected", "true", timeout=10_000)
    page.wait_for_function(f"() => document.activeElement && document.activeElement.closest('#pose-dim-{point['dim']}')",
                           timeout=10_000)  # fmt: skip
    expect(page.locator(f"#pose-dim-{point['dim']}")).to_be_in_viewport()


_TITLE_BOXES_JS = """
() => [...document.querySelectorAll('#eq-trajectories .annotation-text')].map(t => {
  const r = t.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })
"""


def test_pose_trajectories_stack_on_a_phone(page, explorer_url):
    """At 390 px the trajectories' two panels are stacked (their titles side by side ran into each other), and
    back side by side when the window is wide again."""
    expect = pytest.importorskip("playwright.sync_api").expect
    # a page of its own in the module's chromium (one Playwright per thread), 1400 px so the tab bar shows every tab
    tab = page.context.browser.new_page(viewport={"width": 1400, "height": 1100})
    try:
        tab.set_default_timeout(30_000)
        tab.goto(explorer_url)
        expect(tab.locator("#prediction")).to_contain_text("synthetic", timeout=60_000)
        tab.get_by_role("tab", name="Transforms").click()
        plot = tab.locator("#eq-trajectories .js-plotly-plot").first
        expect(plot).to_be_visible(timeout=60_000)
        stacked = "g => g.layout.xaxis2.domain[0] === 0"
        assert not plot.evaluate(stacked)
        tab.set_viewport_size({"width": 390, "height": 900})
        tab.wait_for_function(f"() => ({stacked})(document.querySelector('#eq-trajectories .js-plotly-plot'))")
        tab.wait_for_timeout(500)
        (l0, t0, r0, b0), (l1, t1, r1, b1) = tab.evaluate(_TITLE_BOXES_JS)
        assert b0 <= t1 or b1 <= t0 or r0 <= l1 or r1 <= l0, "the panel titles overlap"
        assert plot.bounding_box()["width"] <= 390
        tab.set_viewport_size({"width": 1400, "height": 1100})
        tab.wait_for_function(f"() => !({stacked})(document.querySelector('#eq-trajectories .js-plotly-plot'))")
        tab.wait_for_function("() => document.querySelector('#eq-trajectories .js-plotly-plot').clientWidth > 600")
    finally:
        tab.close()
