"""The page's own scripts (explorer/static/*.js) wait for events instead of polling: no interval timers, no
observer of the whole page, and no animation-frame loop while nothing changes (issue: "no page-wide polling")."""
import re
from pathlib import Path

import pytest

from explorer.app import LAUNCH_OPTIONS, build_demo
from explorer.serving import served

from .conftest import SHIPPED
from .browser_helpers import chromium, require

STATIC = Path(__file__).resolve().parent.parent / "explorer" / "static"

# Installed before any script of the page: counts interval timers (Gradio's own code sets none either).
COUNT_TIMERS_JS = """
window.__intervals = 0;
const every = window.setInterval.bind(window);
window.setInterval = (...args) => { window.__intervals += 1; return every(...args); };
"""


def test_scripts_set_no_timers_and_watch_no_whole_page():
    for path in STATIC.glob("*.js"):
        text = path.read_text(encoding="utf-8")
        assert "setInterval(" not in text, path.name
        assert not re.search(r"observe\(\s*document\.body", text), f"{path.name} watches the whole page"


@pytest.mark.browser
def test_an_idle_pose_tab_asks_for_no_frames():
    """With the Pose tab open and its decoder loaded, the decoder's script runs in no animation frame while the
    visitor does nothing (it ran in every one, ~60 a second, when it polled the sliders); a typed value wakes it
    and redraws the reconstruction. No script of the page sets an interval timer."""
    require(SHIPPED.exists(), f"no trained checkpoint at {SHIPPED}: run `python -m capsnet.train` first")
    with served(build_demo(SHIPPED), **LAUNCH_OPTIONS) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        page.add_init_script(COUNT_TIMERS_JS)
        page.goto(url)
        page.locator("#prediction").filter(has_text="synthetic").wait_for()
        page.locator("#pose-tab-button").click()
        page.wait_for_function("() => window.capsnetPose && window.capsnetPose.mode === 'client'")
        page.wait_for_function("() => window.capsnetPose.frames > 0")
        page.wait_for_timeout(1500)
        wakeups, drawn = page.evaluate("[window.capsnetPose.wakeups, window.capsnetPose.frames]")
        page.wait_for_timeout(2000)
        idle = page.evaluate("window.capsnetPose.wakeups") - wakeups
        assert idle == 0, f"the decoder's script ran in {idle} animation frames in 2 s of doing nothing"
        assert page.evaluate("window.__intervals") == 0

        number = page.locator("#pose-dim-0 input[type='number']")
        number.fill("0.5" if float(number.input_value()) < 0 else "-0.5")
        number.press("Enter")
        page.wait_for_function(f"() => window.capsnetPose.frames > {drawn}")
