"""The interface's languages: English, and Simplified Chinese from `locales/zh-CN.json`. No Gradio here.

The English text is the key (as gettext does): code reads as it shows, and a missing translation shows English.
`tr(text, **values)` translates a template and formats it, in the language of the event being answered; the
explorer's language module (explorer/language.py) says which that is (the visitor's switch, else the link's
`?lang=`, else the browser's Accept-Language) through `use_language_source`. Views call `tr` for their titles and
labels, so they stay plain functions; tests pick a language with `speaking("zh-CN")`.
"""
from __future__ import annotations

import json
import string
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterator

ENGLISH, CHINESE = "en", "zh-CN"
LANGUAGES = {ENGLISH: "English", CHINESE: "简体中文"}  # code -> the language's own name (the switch's buttons)
CATALOGUES = {CHINESE: json.loads((Path(__file__).parent / "locales" / "zh-CN.json").read_text(encoding="utf-8"))}
MAX_ACCEPT_CHARS = 512  # of an Accept-Language header: browsers send under 100; more is read no further
MAX_ACCEPT_TAGS = 16

_spoken: ContextVar[str | None] = ContextVar("spoken", default=None)
_source: list[Callable[[], str | None]] = [lambda: None]


def use_language_source(source: Callable[[], str | None]) -> None:
    """Where `language()` looks when no `speaking` block is active: the explorer's per-event language."""
    _source[0] = source


def language() -> str:
    """The language being spoken: a `speaking` block's, else the source's, else English."""
    return _spoken.get() or _source[0]() or ENGLISH


@contextmanager
def speaking(code: str) -> Iterator[None]:
    """Translate into `code` inside the block (build-time text in both languages, tests)."""
    token = _spoken.set(code if code in LANGUAGES else ENGLISH)
    try:
        yield
    finally:
        _spoken.reset(token)


def translate(text: str, code: str) -> str:
    """The template in language `code` (the English itself where the catalogue has no entry)."""
    return CATALOGUES.get(code, {}).get(text, text)


def tr(text: str, /, *args, **values) -> str:
    """`text` in the current language, formatted with `values` (str.format; the translation keeps the fields)."""
    out = translate(text, language())
    return out.format(*args, **values) if args or values else out


def fields(text: str) -> list[str]:
    """The format fields of a template, as written ("{pred}", "{length:.3f}", "{:+.0%}"): a translation keeps them."""
    return sorted("{" + (f or "") + (":" + s if s else "") + "}" for _, f, s, _ in string.Formatter().parse(text)
                  if f is not None)


def choose(requested: str | None, accept_language: str | None) -> str:
    """The language for a visitor: `requested` (a link's ?lang=) when it names one of ours, else the first of the
    browser's languages (Accept-Language, by weight) that is English or Chinese (any Chinese: zh, zh-TW, zh-Hans
    get the Simplified interface, the only Chinese one), else English. Never raises, whatever the header holds."""
    tags = [requested] if isinstance(requested, str) else []
    if isinstance(accept_language, str):
        weighted = []
        for i, part in enumerate(accept_language[:MAX_ACCEPT_CHARS].split(",")[:MAX_ACCEPT_TAGS]):
            tag, _, q = part.strip().partition(";")
            try:
                weight = float(q.strip().removeprefix("q=")) if q else 1.0
            except ValueError:
                weight = 0.0
            weighted.append((-weight, i, tag.strip()))
        tags += [tag for _, _, tag in sorted(weighted)]
    for tag in tags:
        primary = tag.lower().split("-")[0]
        if primary == "zh":
            return CHINESE
        if primary == "en":
            return ENGLISH
    return ENGLISH


__all__ = ["CHINESE", "ENGLISH", "LANGUAGES", "choose", "fields", "language", "speaking", "tr", "translate",
           "use_language_source"]
