"""Share links in a real browser: made from the page, opened in another browser context (no shared session or
storage), they restore the input, the digit capsule, a pose edit and the view; damaged and hostile links get one
sentence and the opening example."""
import re
import socket
import time
import urllib.parse

import httpx
import pytest

from .browser_helpers import WAIT, click_tab, show_example, wait_for_opening_example

pytestmark = pytest.mark.browser


def share_link(page) -> str:
    """Press *Share a link* and read the absolute link it writes."""
    page.locator("#share-link").click()
    page.wait_for_function("() => (document.querySelector('#share-url textarea, #share-url input')?.value || '')"
                           ".startsWith('http')", timeout=WAIT)  # fmt: skip
    return page.locator("#share-url textarea, #share-url input").first.input_value()


def pose_values(page) -> list[float]:
    return [float(page.locator(f"#pose-dim-{d} input[type='number']").input_value()) for d in range(16)]


def test_a_link_restores_the_input_capsule_and_view(page, browser):
    expect = pytest.importorskip("playwright.sync_api").expect
    show_example(page, 3)
    page.locator("#selected-class label", has_text="5").click()
    click_tab(page, "Routing")
    expect(page.locator("#routing-question")).to_be_visible(timeout=WAIT)
    link = share_link(page)
    assert len(link) < 2000 and "k=5" in link and "tab=routing" in link and "&p=" not in link
    model_input = page.locator("#model-input img").get_attribute("src")

    other = browser.new_context(viewport={"width": 1400, "height": 1100})  # another browser: nothing shared
    try:
        visitor = other.new_page()
        visitor.goto(link, timeout=WAIT)
        expect(visitor.locator("#prediction")).to_contain_text("From a shared link.", timeout=WAIT)
        expect(visitor.locator("#prediction")).to_contain_text("Prediction: 3")
        expect(visitor.locator("#selected-class input[value='5']")).to_be_checked(timeout=WAIT)
        expect(visitor.locator("#routing-question")).to_be_visible(timeout=WAIT)
        restored = visitor.request.get(visitor.locator("#model-input img").get_attribute("src")).body()
        assert restored == page.request.get(model_input).body()  # the very same 28x28 input
    finally:
        other.close()


def test_a_link_restores_a_pose_edit(page, browser):
    """"This 3, capsule 3, dimension 2 at +0.37": the Pose tab of the link's page starts at the edited pose."""
    expect = pytest.importorskip("playwright.sync_api").expect
    show_example(page, 3)
    click_tab(page, "Pose")
    number = page.locator("#pose-dim-2 input[type='number']")
    expect(number).to_be_visible(timeout=WAIT)
    for _ in range(20):  # the tab's views set the capsule's own pose when they land: type the edit after that
        number.fill("0.37")
        number.press("Enter")
        page.wait_for_timeout(500)
        if number.input_value() == "0.37":
            break
    edited = pose_values(page)
    assert edited[2] == 0.37
    deadline, link = time.monotonic() + 20, ""
    while "&p=" not in link and time.monotonic() < deadline:  # the edit reaches the server with its own event
        page.wait_for_timeout(300)
        link = share_link(page)
    assert "&p=" in link and "tab=pose" in link and len(link) < 2000, link
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["p"][0].split(",")[2] == "0.37"

    other = browser.new_context(viewport={"width": 1400, "height": 1100})
    try:
        visitor = other.new_page()
        visitor.goto(link, timeout=WAIT)
        expect(visitor.locator("#prediction")).to_contain_text("From a shared link.", timeout=WAIT)
        expect(visitor.locator("#pose-dim-2 input[type='number']")).to_have_value("0.37", timeout=WAIT)
        assert pose_values(visitor) == pytest.approx(edited, abs=1e-3)
        visitor.locator("#selected-class label", has_text="8").click()  # another capsule: its own pose
        expect(visitor.locator("#pose-dim-2 input[type='number']")).not_to_have_value("0.37", timeout=WAIT)
    finally:
        other.close()


HOSTILE = {
    "not base64": "in=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "not zlib": "in=" + "QUFBQUFBQUFB",
    "wrong size": "in=eJxjYGBgAAAABAAB",  # zlib of 1 byte
    "60 KB": "in=" + "A" * 60_000,  # longer ones: see test_a_megabyte_link_is_refused_before_the_app
    "empty": "in=",
    "bad capsule and view": None,  # filled below: a good input with k=NaN, tab=<img>
    "pose of NaNs": "p=" + ",".join(["NaN"] * 16),  # with a good input, below
    "pose of 15 values": "p=" + ",".join(["0.1"] * 15),
    "pose of 1e9": "p=" + ",".join(["1e9"] * 16),
    "pose of 5,000 characters": "p=" + "0," * 2500,
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_damaged_links_get_one_sentence_and_the_opening_example(browser, explorer_url, case):
    expect = pytest.importorskip("playwright.sync_api").expect
    from explorer.inputs.share import encode_input
    import numpy as np

    query = HOSTILE[case]
    pixels = np.zeros((28, 28), np.uint8)
    pixels[6:22, 12:16] = 255
    if query is None:
        query = f"in={encode_input(pixels)}&k=NaN&tab={urllib.parse.quote('<img src=x onerror=alert(1)>')}"
    elif query.startswith("p="):
        query = f"in={encode_input(pixels)}&k=1&{query}&tab=pose"
    dialogs = []
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.on("dialog", lambda d: dialogs.append(d.message) or d.dismiss())
    try:
        page.goto(f"{explorer_url}?{query}", timeout=WAIT)
        if case == "bad capsule and view":  # a good input: it replaces the opening example as soon as that is shown
            expect(page.locator("#prediction")).to_contain_text("From a shared link.", timeout=WAIT)
            expect(page.locator("#embed-note")).to_contain_text("That share link names no", timeout=WAIT)
            assert page.locator("#embed-note img").count() == 0
        else:
            wait_for_opening_example(page)
            expect(page.get_by_text("That share link is damaged").first).to_be_visible(timeout=WAIT)
            expect(page.locator("#prediction")).to_contain_text("synthetic 7")
        assert dialogs == []
    finally:
        page.close()


def test_a_megabyte_link_is_refused_before_the_app(explorer_url):
    """uvicorn's HTTP parser answers a request line of a megabyte 400 at once (or, when it closed before reading it
    all, the connection is reset); the server goes on serving."""
    host, port = urllib.parse.urlsplit(explorer_url).netloc.split(":")
    t0 = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as s:
        try:
            s.sendall(f"GET /?in={'A' * 1_000_000} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(64)
        except (BrokenPipeError, ConnectionResetError):
            head = b"HTTP/1.1 400 (reset)"
    assert head.startswith(b"HTTP/1.1 400") and time.monotonic() - t0 < 5
    assert httpx.get(explorer_url + "config", timeout=10).status_code == 200


# --------------------------------------------------------------------------- the open view's settings


def joins(page) -> list:
    """The page's server events from now on (queued ones join the queue, the others post to run/predict)."""
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and
            ("/queue/join" in r.url or "/run/predict" in r.url) else None)  # fmt: skip
    return posts


def settled_events(browser, link: str, shown) -> int:
    """The server events a visitor's page sends for `link` until `shown(page)` holds and 2 s more have passed."""
    other = browser.new_context(viewport={"width": 1400, "height": 1100})
    try:
        visitor = other.new_page()
        posts = joins(visitor)
        visitor.goto(link, timeout=WAIT)
        shown(visitor)
        visitor.wait_for_timeout(2000)
        return len(posts)
    finally:
        other.close()


def test_a_link_restores_the_routing_iteration_without_extra_events(page, browser):
    """The Routing tab at iteration 1: its link says it=1 (and no other view's settings); the visitor's figure is at
    iteration 1 as it first draws, with as many server events as a link at the default iteration."""
    expect = pytest.importorskip("playwright.sync_api").expect
    show_example(page, 3)
    page.locator("#routing-tab-button").click()
    grids = page.locator("#contribution-grids")
    expect(grids).to_contain_text("at iteration 3", timeout=WAIT)
    slider = page.locator("#routing-iteration input[type='number']")
    slider.fill("1")
    slider.press("Enter")
    expect(grids).to_contain_text("at iteration 1", timeout=WAIT)
    link = share_link(page)
    fields = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    assert fields["it"] == ["1"] and fields["tab"] == ["routing"] and set(fields) == {"in", "k", "tab", "it"}, link

    def at_iteration(n):
        def shown(visitor):
            expect(visitor.locator("#prediction")).to_contain_text("From a shared link.", timeout=WAIT)
            expect(visitor.locator("#routing-iteration input[type='number']")).to_have_value(str(n), timeout=WAIT)
            expect(visitor.locator("#contribution-grids")).to_contain_text(f"at iteration {n}", timeout=WAIT)
            visitor.locator("#coupling-section").get_by_role("button").first.click()  # a section drawn on opening
            expect(visitor.locator("#coupling-caption")).to_contain_text(f"iteration {n} of 3", timeout=WAIT)
        return shown

    # The fewest of two visits each: how many events a page sends can depend on timing (an always_last event
    # triggered again while it runs is sent once more), and this failed once in about 15 runs of this machine.
    with_setting = min(settled_events(browser, link, at_iteration(1)) for _ in range(2))
    assert with_setting == min(settled_events(browser, link.replace("&it=1", ""), at_iteration(3)) for _ in range(2))


def parked_input() -> str:
    from explorer.inputs.share import encode_input
    import numpy as np

    pixels = np.zeros((28, 28), np.uint8)
    pixels[6:22, 12:16] = 255  # a 1
    return encode_input(pixels)


def checked(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} input[type='radio']:checked").get_attribute("value")


def atlas_dims(k: int, sort: str, effect: str) -> list[int]:
    """The dimensions the Atlas shows for capsule k, sorted and filtered so, in order (views.atlas)."""
    import re

    from capsnet.atlas import load_atlas
    from capsnet.checkpoint import load_model_card
    from explorer.views import atlas

    from .conftest import SHIPPED

    html = atlas.cards_html(load_model_card(SHIPPED), load_atlas(SHIPPED)[0], k, sort, effect)
    return [int(d) for d in re.findall(r'data-pose-dim="(\d+)"', html)]


def shows_perturbations(page):
    from explorer.tabs.perturbations import DATA

    expect = pytest.importorskip("playwright.sync_api").expect
    expect(page.locator("#perturbation-caption")).to_contain_text("2σ", timeout=WAIT)
    assert checked(page, "perturbation-span") == DATA
    expect(page.locator("#sweep-dim input")).to_have_value(re.compile(r"\b5$"))


def shows_atlas(page):
    dims = atlas_dims(1, "effect size", "encoder disagrees")
    page.wait_for_function("n => document.querySelectorAll('#atlas-cards .atlas-card').length === n", arg=len(dims),
                           timeout=WAIT)  # fmt: skip
    shown = page.locator("#atlas-cards .atlas-card").evaluate_all("cs => cs.map(c => +c.dataset.poseDim)")
    assert shown == dims and checked(page, "atlas-sort") == "effect size"


def shows_transform(page):
    from explorer.views.equivariance import TITLES

    expect = pytest.importorskip("playwright.sync_api").expect
    expect(page.locator("#eq-tracking")).to_contain_text(TITLES["scale"].capitalize(), timeout=WAIT)
    assert checked(page, "eq-transform") == "scale"


def shows_attack(page):
    expect = pytest.importorskip("playwright.sync_api").expect
    expect(page.locator("#attack-eps input[type='number']")).to_have_value("0.2", timeout=WAIT)
    expect(page.locator("#attack-steps input[type='number']")).to_have_value("50")


VIEWS = {
    "perturbations": ("span=data&dim=5", shows_perturbations),
    "atlas": ("sort=effect-size&show=encoder-disagrees", shows_atlas),
    "transforms": ("transform=scale", shows_transform),
    "attack": ("eps=0.2&steps=50", shows_attack),
}


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_a_link_restores_each_views_settings(browser, explorer_url, view):
    expect = pytest.importorskip("playwright.sync_api").expect
    settings, shows = VIEWS[view]
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    try:
        page.goto(f"{explorer_url}?in={parked_input()}&k=1&tab={view}&{settings}", timeout=WAIT)
        expect(page.locator("#prediction")).to_contain_text("From a shared link.", timeout=WAIT)
        expect(page.locator(f"#{view}-tab-button")).to_have_attribute("aria-selected", "true", timeout=WAIT)
        shows(page)
    finally:
        page.close()


HOSTILE_SETTINGS = {
    "iteration NaN": "it=NaN", "iteration 4": "it=4", "iteration 1e9": "it=1e9", "iteration 5,000 digits": "it=" + "9" * 5000,
    "iteration twice": "it=1&it=2", "iteration empty": "it=", "script": "it=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "type and row": "type=-1&row=six",  # two bad settings: one sentence
}


# The texts of the page's notifications (role "status") holding `start`, once there is one; read in one go, as
# a notification fades after a few seconds.
TOASTS = """start => { const texts = [...document.querySelectorAll("[role='status']")].map(e => e.innerText.trim())
    .filter(t => t.includes(start)); return texts.length ? texts : null; }"""


@pytest.mark.parametrize("case", sorted(HOSTILE_SETTINGS))
def test_hostile_settings_get_one_sentence_and_the_rest_applies(browser, explorer_url, case):
    """The input, capsule and view of the link still apply; the refused setting stays at its default."""
    expect = pytest.importorskip("playwright.sync_api").expect
    dialogs = []
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.on("dialog", lambda d: dialogs.append(d.message) or d.dismiss())
    try:
        page.goto(f"{explorer_url}?in={parked_input()}&k=2&tab=routing&{HOSTILE_SETTINGS[case]}", timeout=WAIT)
        warnings = page.wait_for_function(TOASTS, arg="That share link's", timeout=WAIT).json_value()  # (it fades)
        assert len(warnings) == 1 and warnings[0].count(". ") == 0 and len(warnings[0]) < 300, warnings
        expect(page.locator("#prediction")).to_contain_text("From a shared link.", timeout=WAIT)
        expect(page.locator("#selected-class input[value='2']")).to_be_checked(timeout=WAIT)
        expect(page.locator("#contribution-grids")).to_contain_text("at iteration 3", timeout=WAIT)
        assert page.locator("#routing-iteration input[type='number']").input_value() == "3"
        assert dialogs == [] and not page.locator("#embed-note").inner_text().strip()
    finally:
        page.close()
