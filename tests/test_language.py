"""English and Simplified Chinese (explorer/text.py, explorer/language.py, static/language.js): the language rule,
the catalogue's completeness, and the page in chromium in each language, switched in place."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from explorer import text
from explorer.inputs.share import Wholes, decode_settings
from explorer.language import page_texts, untranslated
from explorer.text import CHINESE, ENGLISH, choose, fields, speaking, tr

from .browser_helpers import WAIT, chromium, require, serve_explorer
from .conftest import REPO, SHIPPED
from .test_browser_share import TOASTS, parked_input
from .test_share import EPS, ITERATION, SPAN

CATALOGUE = text.CATALOGUES[CHINESE]


@pytest.mark.parametrize("requested, header, expected", [
    (None, None, ENGLISH),
    (None, "zh-CN,zh;q=0.9,en;q=0.8", CHINESE),
    (None, "zh-TW", CHINESE),  # the only Chinese interface
    (None, "fr-FR,fr;q=0.9,en;q=0.5,zh;q=0.4", ENGLISH),
    (None, "en;q=0.1, zh;q=0.9", CHINESE),  # by weight, not by order
    ("en", "zh-CN", ENGLISH),  # ?lang= wins
    ("zh", "en-US", CHINESE),
    ("fr", "zh-CN", CHINESE),  # a language we do not have: the browser's
    (None, "de", ENGLISH),
])
def test_the_language_rule(requested, header, expected):
    assert choose(requested, header) == expected


@pytest.mark.parametrize("header", ["x" * 100_000, ",,,;;;q=", "zh;q=abc,en;q=nan", "zh" + ",en" * 5000, "\x00\n",
                                    ";q=1", "-", 12, b"zh"])  # fmt: skip
def test_a_hostile_accept_language_never_raises(header):
    assert choose(None, header) in (ENGLISH, CHINESE)


def test_every_translation_keeps_its_fields():
    bad = {k: v for k, v in CATALOGUE.items() if fields(k) != fields(v)}
    assert not bad, f"translations whose format fields differ from the English: {bad}"
    with speaking(CHINESE):
        assert tr("Digit-capsule lengths: predicted <b>{digit}</b> ({length:.3f})", digit=7, length=0.9512) \
            == "数字胶囊长度：预测为 <b>7</b>（0.951）"
    assert tr("digit capsule") == "digit capsule"  # outside an event and a `speaking` block: English


def _translated_literals(root: Path) -> list[str]:
    """The English templates the code passes to tr() / ui_text() as literals."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("tr", "ui_text") and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.append(node.args[0].value)
    return found


def test_every_text_the_code_translates_has_a_translation():
    literals = _translated_literals(REPO / "explorer")
    assert len(literals) > 80
    missing = sorted({t for t in literals if t not in CATALOGUE} | {t for t in page_texts() if t not in CATALOGUE})
    assert not missing, f"texts with no Chinese translation in explorer/locales/zh-CN.json: {missing}"


def test_every_fixed_text_of_the_page_is_translated():
    """Every label, info, button, choice, tab name and introduction of the built page, and the texts made from the
    model card at start-up, has a translation (build_demo made each a gr.I18n key); so has the name of every view
    setting a share link carries, which a link's refusal of a bad value says."""
    require(SHIPPED.exists(), f"no trained checkpoint at {SHIPPED}")
    from explorer.app import build_demo, explorer_ui

    demo = build_demo(SHIPPED, load_example=False)
    missing = untranslated(demo) + [s.codec.what for s in explorer_ui(demo).settings if s.codec.what not in CATALOGUE]
    assert missing == [], f"texts of the page with no Chinese translation: {missing}"


def test_every_sentence_a_visitor_is_told_has_a_translation():
    """The notices and refusals kept as constants (tr finds them by their English text), and the size refusal."""
    from explorer.inputs.preprocess import BLANK_MESSAGE, MAX_PIXELS, TOO_LARGE_MESSAGE, UNREADABLE_MESSAGE, \
        too_large_message
    from explorer.inputs.share import BAD_LINK, BAD_SETTING, BAD_SETTINGS
    from explorer.tabs.export import NOTHING_YET

    sentences = [BLANK_MESSAGE, TOO_LARGE_MESSAGE, UNREADABLE_MESSAGE, BAD_LINK, BAD_SETTING, BAD_SETTINGS,
                 NOTHING_YET]  # fmt: skip
    assert [t for t in sentences if t not in CATALOGUE] == []
    with speaking(CHINESE):
        assert too_large_message(12000, 12000) == (f"这张图像太大（12000×12000 像素）；上限是 {MAX_PIXELS // 1_000_000} "
                                                   "百万像素。请把它缩小，或裁剪到数字所在的部分后再试。")  # fmt: skip


def test_a_share_links_bad_settings_are_refused_in_chinese():
    codecs = {"it": ITERATION, "eps": EPS, "span": SPAN,
              "compare": Wholes("set of iteration counts to compare", (1, 2, 3, 5))}  # (the app's name: in the catalogue)
    bad = {"it": ["2", "3"], "eps": ["9"], "span": ["x"], "compare": ["1,1"]}
    with speaking(CHINESE):
        values, refusal = decode_settings(bad, codecs)
        assert values == {}
        assert refusal == ("该分享链接的路由迭代给出了 2 次；其ε不是 0.01 到 0.3 之间的数；其步长不是 paper, data 之一；"
                           "其要比较的迭代次数不是 1, 2, 3, 5 中的几个（各一次）；改为显示默认设置。")  # fmt: skip
        assert decode_settings({"eps": ["9"]}, codecs)[1] == "该分享链接的ε不是 0.01 到 0.3 之间的数；改为显示默认设置。"
    assert decode_settings({"eps": ["9"]}, codecs)[1] == (
        "That share link's ε is not a number from 0.01 to 0.3; showing the default instead.")


def _open(browser, url: str, locale: str):
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    page.goto(url)
    page.wait_for_selector("#prediction .input-source", state="attached")
    return context, page


def _title(page, plot: str) -> str:
    page.wait_for_selector(f"#{plot} .gtitle", state="attached")
    return page.locator(f"#{plot} .gtitle").first.text_content()


@pytest.mark.browser
def test_the_page_speaks_the_browsers_language_and_switches_in_place():
    """A Chinese browser gets the Chinese page: tab names, labels, the prediction, figure titles and the Pose tab's
    dimension names; the switch turns all of it English without a reload, keeping the input, and back."""
    require(SHIPPED.exists(), f"no trained checkpoint at {SHIPPED}")
    with serve_explorer(None) as url, chromium() as browser:
        context, page = _open(browser, url, "zh-CN")
        try:
            assert page.evaluate("document.documentElement.lang") == CHINESE
            assert page.locator("#capsules-tab-button").inner_text() == "数字胶囊"
            assert page.locator("#pose-tab-button").inner_text() == "姿态"
            assert "预测" in page.locator("#prediction").inner_text()
            assert _title(page, "lengths-plot").startswith("数字胶囊长度")
            assert page.locator("#clear-canvas").inner_text() == "清空画布"
            assert page.locator("#language button[data-lang='zh-CN']").get_attribute("aria-pressed") == "true"
            model_input = page.locator("#model-input img").get_attribute("src")

            page.locator("#language button[data-lang='en']").click()
            page.wait_for_function("() => document.querySelector('#prediction').innerText.includes('Prediction')")
            page.wait_for_function("() => document.querySelector('#lengths-plot .gtitle')?.textContent"
                                   ".startsWith('Digit-capsule lengths')")  # fmt: skip
            assert page.evaluate("document.documentElement.lang") == ENGLISH
            assert page.locator("#pose-tab-button").inner_text() == "Pose"  # every tab, not only the open one
            assert page.locator("#model-card-tab-button").inner_text() == "Model card"
            assert page.locator("#clear-canvas").inner_text() == "Clear canvas"
            assert page.locator("#model-input img").get_attribute("src") == model_input  # the same input

            page.locator("#language button[data-lang='zh-CN']").click()
            page.wait_for_function("() => document.querySelector('#lengths-plot .gtitle')?.textContent"
                                   ".startsWith('数字胶囊长度')")  # fmt: skip
            page.locator("#pose-tab-button").click()
            page.wait_for_function("() => (document.querySelector('#pose-dim-0 label')?.innerText || '')"
                                   ".startsWith('维度 0')")  # fmt: skip
            page.wait_for_function("() => (document.querySelector('select.pose-pad-x')?.options[0]?.text || '')"
                                   ".startsWith('维度 0')")  # fmt: skip
            assert page.locator("#reconstruction .pose-caption").first.inner_text() == "由姿态得到的重构"
        finally:
            context.close()


@pytest.mark.browser
def test_a_link_chooses_the_language_and_a_bad_one_says_so():
    """?lang=en opens the English page in a Chinese browser (the server's figures too); ?lang=xx keeps the browser's
    language and says in one sentence that there is no such interface. A bad view setting in a link is refused in
    the page's language."""
    require(SHIPPED.exists(), f"no trained checkpoint at {SHIPPED}")
    with serve_explorer(None) as url, chromium() as browser:
        context, page = _open(browser, url + "?lang=en", "zh-CN")
        try:
            assert page.evaluate("document.documentElement.lang") == ENGLISH
            assert _title(page, "lengths-plot").startswith("Digit-capsule lengths")
            assert page.locator("#pose-tab-button").inner_text() == "Pose"
        finally:
            context.close()
        context, page = _open(browser, url + "?lang=" + "x" * 300, "zh-CN")
        try:
            assert page.evaluate("document.documentElement.lang") == CHINESE
            assert _title(page, "lengths-plot").startswith("数字胶囊长度")
            note = page.locator("#embed-note").inner_text()
            assert note == CATALOGUE["That link asks for a language this page does not have; it shows English and "
                                     "简体中文."]  # fmt: skip
        finally:
            context.close()
        context, page = _open(browser, f"{url}?in={parked_input()}&k=2&tab=routing&it=9", "zh-CN")
        try:  # a view setting the link gets wrong: one sentence in the page's language, naming it
            toasts = page.wait_for_function(TOASTS, arg="该分享链接", timeout=WAIT).json_value()
            assert [t.splitlines()[-1] for t in toasts] == ["该分享链接的路由迭代不是 1 到 3 之间的整数；改为显示默认设置。"]
        finally:
            context.close()


def test_every_translation_keeps_its_markdown_emphasis():
    """A translation renders as many literal asterisks as its English (CommonMark, as markdown-it parses it): an
    emphasis closed right after Chinese punctuation and before a character, as in *动态路由（routing by agreement）*设定,
    is no emphasis, and the page showed the asterisks."""
    from markdown_it import MarkdownIt

    render = MarkdownIt("commonmark").render

    def stars(template: str) -> int:  # fields filled with a word, as a view fills them
        return re.sub(r"<[^>]+>", "", render(re.sub(r"\{[^{}]*\}", "x", template))).count("*")

    bad = {k[:60]: v for k, v in CATALOGUE.items() if "*" in v and stars(v) != stars(k)}
    assert not bad, f"translations whose emphasis does not render: {bad}"


def test_the_catalogue_is_valid_json_with_no_empty_translation():
    data = json.loads((REPO / "explorer" / "locales" / "zh-CN.json").read_text(encoding="utf-8"))
    assert data == CATALOGUE and all(isinstance(v, str) and v.strip() for v in data.values())


def test_a_text_missing_from_the_catalogue_is_found():
    """The check above can fail: a label with no translation stays plain text and is reported; a known one becomes a
    gr.I18n key, in a Radio's choices too."""
    import gradio as gr

    from explorer.language import translate_page

    with gr.Blocks() as demo:
        gr.Textbox(label="A label nobody translated")
        gr.Radio([("digit capsule", 1), ("Another untranslated choice", 2)], label="Undo")
    translate_page(demo)
    assert sorted(untranslated(demo)) == ["A label nobody translated", "Another untranslated choice"]


def test_a_text_with_a_brace_stays_plain_text():
    """Gradio's page formats gr.I18n texts as ICU messages, where a brace starts a placeholder and the text shows as
    its raw key marker (seen in chromium): such a text (a load error quoting code) is shown as it is."""
    from explorer.language import ui_text

    assert ui_text("**No trained model is loaded.** {error}", error="bad value {x}") == \
        "**No trained model is loaded.** bad value {x}"
    assert str(ui_text("Undo")).startswith("__i18n__")
