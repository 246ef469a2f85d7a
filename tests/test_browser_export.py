"""Exporting the analysis: the page's *Export the analysis (JSON)* writes the shown input's predict and routing
answers, which have the same fields as the /predict and /routing endpoints give for that input."""
import numpy as np
import pytest
from PIL import Image

from .browser_helpers import WAIT, wait_for_opening_example
from .raw_http import Api, file_ref, png

pytestmark = pytest.mark.browser


def test_export_json_holds_the_endpoints_answers_for_the_shown_input(page, explorer_url):
    expect = pytest.importorskip("playwright.sync_api").expect
    wait_for_opening_example(page)
    page.locator("#export-json").click()
    link = page.locator("#export-json-file a[href*='file=']").first
    expect(link).to_be_visible(timeout=WAIT)
    href = link.get_attribute("href")
    answer = page.request.get(href)
    assert answer.ok
    data = answer.json()
    assert set(data) == {"source", "predict", "routing", "model_input"}
    digit = data["predict"]["digit"]
    expect(page.locator("#prediction")).to_contain_text(f"Prediction: {digit}")
    assert data["routing"]["digit"] == digit and data["routing"]["digit_class"] == digit

    # another digit capsule, exported again: a new file, the routing answer for that capsule
    other = (digit + 3) % 10
    page.locator("#selected-class label", has_text=str(other)).click()
    page.locator("#export-json").click()
    page.wait_for_function("before => [...document.querySelectorAll('#export-json-file a[href*=\"file=\"]')]"
                           ".some(a => a.getAttribute('href') !== before)", arg=href, timeout=WAIT)  # fmt: skip
    other_data = page.request.get(link.get_attribute("href")).json()
    assert other_data["routing"]["digit_class"] == other and other_data["predict"] == data["predict"]

    pixels = np.array(data["model_input"], dtype=np.uint8)
    assert pixels.shape == (28, 28) and pixels.max() > 128
    api = Api(explorer_url, timeout=60)
    image = file_ref(api.upload(png(Image.fromarray(pixels))))
    event, (predicted,) = api.call("predict", [image])
    assert event == "complete" and set(predicted) == set(data["predict"]) and predicted["digit"] == digit
    event, (routed,) = api.call("routing", [image, None, True])
    assert event == "complete" and set(routed) == set(data["routing"]) and routed["digit"] == digit
