"""gradio_compat.PAGE_DOM against the installed Gradio's frontend, in chromium: every selector, route and name the
page's scripts take from it is found on a live page of plain Gradio components. Fails when Gradio renders them
differently; the scripts' behaviour itself is tested per tab (test_browser_routing.py,
test_browser_transforms.py, test_pose_browser.py)."""
from __future__ import annotations

import urllib.parse

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import pytest

from explorer.gradio_compat import PAGE_DOM, with_page_dom
from explorer.serving import served

from .browser_helpers import chromium

pytestmark = pytest.mark.browser
WAIT = 30_000


def build() -> gr.Blocks:
    with gr.Blocks() as demo:
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("First", elem_id="first-tab"):
                gr.Radio(["a", "b"], value="a", elem_id="choice")
                gr.Slider(-1, 1, value=0, elem_id="dim")
                fig = go.Figure([go.Scatter(x=[0, 1], y=[0, 1]), go.Scatter(x=[0, 1], y=[1, 0])])
                gr.Plot(fig, elem_id="scatter")
                image, echo = gr.Image(type="numpy", elem_id="in"), gr.Image(elem_id="out")
            with gr.Tab("Second", elem_id="second-tab"):
                gr.Markdown("second")
        image.upload(lambda x: np.asarray(x), image, echo)
    return demo


def test_with_page_dom_writes_the_selectors_into_a_script():
    script = with_page_dom("() => { const DOM = GRADIO_DOM; return DOM.plot; }")
    assert "GRADIO_DOM" not in script and PAGE_DOM["plot"] in script
    with pytest.raises(ValueError, match="GRADIO_DOM"):
        with_page_dom("() => 1")


def test_page_dom_is_what_gradio_renders(tmp_path):
    from PIL import Image

    png = tmp_path / "digit.png"
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(png)
    dom = PAGE_DOM
    with served(build()) as url, chromium() as browser:
        page = browser.new_page()
        page.goto(url)
        page.locator(f"#scatter {dom['plot']}").wait_for(timeout=WAIT)
        assert page.locator(f"#scatter {dom['plot']} {dom['plot_traces']}").count() == 2
        assert page.locator(f"#choice {dom['radio_input']}").count() == 2
        assert page.locator(f"#tabs {dom['tab_strip']}").first.locator("#second-tab" + dom["tab_button"]).count() >= 1
        assert page.locator(f"#dim {dom['slider_range']}").count() == 1
        assert page.locator(f"#dim {dom['slider_number']}").count() == 1
        assert page.evaluate(f"() => typeof window[{dom['config_global']!r}].root") == "string"

        page.locator("#in input[type='file']").set_input_files(str(png))
        src = page.locator("#out img").get_attribute("src", timeout=WAIT)
        assert dom["file_route"] in urllib.parse.unquote(src), src

        page.locator(f"#second-tab{dom['tab_button']}").click()
        page.get_by_text("second", exact=True).wait_for(timeout=WAIT)  # the second tab is open
