"""The visitor's language, on the server: gr.I18n for the page's fixed texts, and each event's language for the texts
the server writes (figure titles, the prediction, dimension labels), through explorer.text's `tr`.

- Fixed texts (labels, infos, buttons, choices, tab names, the tabs' introductions) are written in English where
  the page is built; `translate_page(demo)` then makes each one the catalogue knows a gr.I18n key whose
  translations the page holds, so the browser shows them in its language with no event. A fixed text with values
  in it is `ui_text("English {x}", x=...)`.
- Texts made once from the model card are `ui_built(make, ...)`: made in each language at start-up.
- An event's language (`event_language`): the session's choice on the switch, else the page's `?lang=`, else the
  request's Accept-Language (explorer.text.choose), the same rule static/language.js applies to
  navigator.languages, so the page and the server agree before anyone touches the switch.
- The switch (`language_switch`): two buttons; static/language.js changes the page's gr.I18n language at once and
  sends the choice, and the server redraws the views in it (events.wire_language).
"""
from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import gradio as gr

from .gradio_compat import current_request, with_page_dom
from .text import ENGLISH, LANGUAGES, choose, speaking, translate, use_language_source

STATIC = Path(__file__).parent / "static"
# The texts the page's scripts and templates write: T("English") in a script, data-text / -aria / -alt in a template.
PAGE_TEXT = re.compile(r'\bT\("((?:[^"\\]|\\.)*)"\)|data-(?:text|aria|alt)="([^"]*)"')
I18N = gr.I18n(**{code: {} for code in LANGUAGES})  # filled by ui_text / ui_built while the page is built
MAX_SESSIONS = 4096  # sessions whose choice is remembered (the least recently used is forgotten first)


def _register(texts: dict[str, str]):
    """A gr.I18n key (the English text) with its translations; the English text itself where one holds a brace,
    which the page's message formatter (ICU) would take for a placeholder and show the key's raw marker instead."""
    key = texts[ENGLISH]
    if any("{" in text or "}" in text for text in texts.values()):
        return key
    for code, text in texts.items():
        I18N.translations[code][key] = text
    return I18N(key)


def ui_text(text: str, /, **values):
    """A fixed text of the page (a label, a button, a tab's introduction), formatted with `values`, shown in the
    browser's language."""
    return _register({code: translate(text, code).format(**values) if values else translate(text, code)
                      for code in LANGUAGES})  # fmt: skip


TEXT_PROPS = ("label", "info", "placeholder")  # component attributes that hold a fixed text


def _texts_of(block) -> list[tuple[str, object]]:
    """(attribute, text) of a component's fixed texts: TEXT_PROPS, a Markdown's or Button's value, its choices."""
    found = [(name, getattr(block, name, None)) for name in TEXT_PROPS]
    if isinstance(block, (gr.Markdown, gr.Button)) and not isinstance(block, gr.DownloadButton):
        found.append(("value", block.value))
    return [(name, text) for name, text in found if isinstance(text, str)]


def _key(text: str):
    """The gr.I18n key of a text the catalogue translates (None for one it does not, or one already a key)."""
    if text.startswith("__i18n__") or all(translate(text, code) == text for code in LANGUAGES if code != ENGLISH):
        return None
    return ui_text(text)


def _is_text(text) -> bool:
    """A string with letters that is not a gr.I18n key yet."""
    return isinstance(text, str) and not text.startswith("__i18n__") and any(c.isalpha() for c in text)


def translate_page(demo: gr.Blocks, switch: gr.HTML | None = None) -> None:
    """Every fixed text of `demo` the catalogue knows becomes a gr.I18n key, and the `switch` gets the tabs' labels."""
    tabs = {}
    for block in demo.blocks.values():
        for name, text in _texts_of(block):
            key = _key(text)
            if isinstance(block, gr.Tab) and name == "label" and key is not None and block.id is not None:
                tabs[str(block.id)] = {code: translate(text, code) for code in LANGUAGES}
            if key is not None:
                setattr(block, name, str(key) if name == "value" else key)
        choices = getattr(block, "choices", None)
        if isinstance(choices, list) and all(isinstance(c, tuple) and len(c) == 2 for c in choices):
            block.choices = [((_key(c[0]) if isinstance(c[0], str) else None) or c[0], c[1]) for c in choices]
    if switch is not None:
        switch.js_on_load = language_js(tabs)


def untranslated(demo: gr.Blocks) -> list[str]:
    """The fixed texts of `demo` (after translate_page) that are still plain text: the catalogue has no translation
    (tests/test_language.py: none)."""
    found = []
    for block in demo.blocks.values():
        found += [text for _, text in _texts_of(block) if _is_text(text)]
        choices = getattr(block, "choices", None)
        if isinstance(choices, list):
            found += [c[0] for c in choices if isinstance(c, tuple) and _is_text(c[0])]
    return found


def ui_built(make: Callable[..., str], *args):
    """A fixed text made from data at start-up (the model card's summary): `make(*args)` in each language."""
    texts = {}
    for code in LANGUAGES:
        with speaking(code):
            texts[code] = make(*args)
    return _register(texts)


class Choices:
    """Per session (its hash), the language chosen on the switch; at most `limit`, the least recently used dropped."""

    def __init__(self, limit: int = MAX_SESSIONS):
        self.limit, self.codes, self.lock = limit, OrderedDict(), threading.Lock()

    def get(self, session: str | None) -> str | None:
        with self.lock:
            if session not in self.codes:
                return None
            self.codes.move_to_end(session)
            return self.codes[session]

    def set(self, session: str | None, code: str) -> None:
        if not session or code not in LANGUAGES:
            return
        with self.lock:
            self.codes[session] = code
            self.codes.move_to_end(session)
            while len(self.codes) > self.limit:
                self.codes.popitem(last=False)


CHOICES = Choices()


def event_language() -> str | None:
    """The language of the event being answered (None outside an event: English). Never raises."""
    request = current_request()
    if request is None:
        return None
    try:
        chosen = CHOICES.get(request.session_hash)
        if chosen:
            return chosen
        return choose(request.query_params.get("lang"), request.headers.get("accept-language"))
    except Exception:  # a request without headers (an API call from Python): English
        return None


def remember(code) -> str | None:
    """The switch's value: remember it for this session; the code, or None when it is not one of ours."""
    if not isinstance(code, str) or code not in LANGUAGES:
        return None
    request = current_request()
    CHOICES.set(getattr(request, "session_hash", None), code)
    return code


def page_texts(folder: Path = STATIC) -> list[str]:
    """Every text the page's scripts and templates write (PAGE_TEXT), in the order found."""
    found = {}
    for path in sorted([*folder.glob("*.js"), *folder.glob("*.html")]):
        for m in PAGE_TEXT.finditer(path.read_text(encoding="utf-8")):
            found[json.loads(f'"{m.group(1)}"') if m.group(1) is not None else m.group(2)] = None
    return list(found)


def language_js(tabs: dict[str, dict[str, str]] | None = None) -> str:
    """static/language.js with each page text's translations (PAGE_TEXTS) and the tabs' labels (PAGE_TABS)."""
    texts = {code: {t: translate(t, code) for t in page_texts()} for code in LANGUAGES if code != ENGLISH}
    script = (STATIC / "language.js").read_text(encoding="utf-8")
    script = script.replace("PAGE_TEXTS", json.dumps(texts, ensure_ascii=False))
    return with_page_dom(script.replace("PAGE_TABS", json.dumps(tabs or {}, ensure_ascii=False)))


def language_switch() -> gr.HTML:
    """Two buttons, each in its own language; the page marks the one in use (static/language.js, set as its js_on_load
    by translate_page once the tabs' labels are known)."""
    buttons = "".join(f'<button type="button" data-lang="{code}" lang="{code}" aria-pressed="false">{name}</button>'
                      for code, name in LANGUAGES.items())  # fmt: skip
    return gr.HTML("", html_template=f'<div class="language-switch" role="group" aria-label="Language / 语言">'
                   f"{buttons}</div>", elem_id="language", apply_default_css=False)  # fmt: skip


use_language_source(event_language)

__all__ = ["CHOICES", "I18N", "event_language", "language_js", "language_switch", "page_texts", "remember",
           "translate_page", "ui_built", "ui_text", "untranslated"]
