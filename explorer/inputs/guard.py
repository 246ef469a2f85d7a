"""Input checks for every event of a Blocks, applied once by `guard_inputs(demo)` after it is built.

Why here and not in each handler: Gradio validates, moves and decodes an event's inputs (`Blocks.preprocess_data`,
then each component's `preprocess`) before any handler runs, so a check in a handler comes too late. A 12000x12000
1-bit PNG is 32 KB on disk and 576 MB as RGBA. What this module does, for every input of every event (events added
later included):

- every image file reference is size-checked from its file header before anything decodes it: at most
  `MAX_PIXELS` per image and `MAX_REQUEST_PIXELS` per event (the drawing canvas sends text, which
  `inputs/sketch.py` checks the same way);
- file references must be files the server received (no URLs to fetch);
- number and choice inputs accept 7 and "7" alike;
- a refused input becomes one short sentence (`gr.Error`, which API callers get as `{"error": "..."}`), quoting at
  most `MAX_ECHO` characters of the input, and no traceback is logged for it.

Components flagged with `accepts_preprocessed = True` (the app's upload input) get
`Preprocessed(None, message)` instead, so the page shows the message where the result would be.
"""
from __future__ import annotations

import html
import io
import logging
import math
import warnings
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import FileData, GradioModel, GradioRootModel
from PIL import Image

from .. import gradio_compat as compat
from ..text import tr
from .preprocess import MAX_PIXELS, ImageTooLarge, Preprocessed, check_pixels, unreadable_result

log = logging.getLogger("explorer")

MAX_REQUEST_PIXELS = MAX_PIXELS  # all images of one event together
MAX_ECHO = 40  # characters of a refused input quoted back
REQUEST_TOO_LARGE = (
    "The images of this request are too large together ({pixels:,} pixels); the limit is {limit} megapixels. "
    "Send fewer or smaller images."
)
UPLOAD_FIRST = ("{what} refers to a file the server did not receive; upload it with POST /gradio_api/upload and "
                "pass the returned path.")

_budget: ContextVar[list | None] = ContextVar("explorer_pixel_budget", default=None)


def short(value: Any) -> str:
    """At most MAX_ECHO characters of repr(value), safe inside the HTML of Gradio's error modal."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    if len(text) > MAX_ECHO:
        text = text[: MAX_ECHO - 1] + "…"
    return html.escape(text, quote=False)


def refuse(message: str) -> gr.Error:
    """A gr.Error for a refused input: shown to the visitor (in the page's language where the catalogue has the
    sentence), returned to API callers, not logged as a traceback."""
    return gr.Error(tr(message), print_exception=False)


# --------------------------------------------------------------------------- image headers


def header_size(source: Any) -> tuple[int, int] | None:
    """(width, height) read from the header of a file path or bytes, without decoding; None if it is no image."""
    try:
        with warnings.catch_warnings():  # PIL warns above 89 MP; MAX_PIXELS is stricter
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else Path(source))
            with opened as im:
                return im.size
    except Image.DecompressionBombError:
        raise ImageTooLarge() from None
    except Exception:
        return None


def check_image(source: Any) -> tuple[int, int] | None:
    """Refuse (ImageTooLarge) an image over MAX_PIXELS, or one that takes the event over MAX_REQUEST_PIXELS."""
    size = header_size(source)
    if size is None:
        return None
    check_pixels(*size)
    budget = _budget.get()
    if budget is not None:
        budget[0] += size[0] * size[1]
        if budget[0] > MAX_REQUEST_PIXELS:
            e = ImageTooLarge()
            e.args = (REQUEST_TOO_LARGE.format(pixels=budget[0], limit=MAX_REQUEST_PIXELS // 1_000_000),)
            raise e
    return size


def _file_paths(payload: Any) -> list[str]:
    """Every local path in a preprocessed payload (FileData anywhere in models, dicts and lists)."""
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, FileData):
            if v.path and not (v.url or "").startswith("data:"):
                out.append(v.path)
        elif isinstance(v, GradioModel):
            for name in type(v).model_fields:
                walk(getattr(v, name, None))
        elif isinstance(v, GradioRootModel):
            walk(v.root)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    walk(payload)
    return out


# --------------------------------------------------------------------------- per component


def _label(block: Any) -> str:
    """The input's kind, as the API page names its component ("image", "radio", ...)."""
    return type(block).__name__.lower()


def guard_component(block: Any) -> None:
    """Wrap `block.preprocess` (once): header checks before the original decodes, one sentence on failure."""
    if getattr(block.preprocess, "_explorer_guarded", False):
        return
    original = block.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is None:
            return None
        try:
            for path in _file_paths(payload):
                check_image(path)
            choices = getattr(block, "choices", None)
            if choices and isinstance(block, (gr.Radio, gr.Dropdown)) and not getattr(block, "allow_custom_value", 0):
                values = [v for _, v in choices]
                if any(v not in values for v in (payload if isinstance(payload, list) else [payload])):
                    raise refuse(f"The {_label(block)} input must be {_expected(block)}; got {short(payload)}.")
            return original(payload)
        except gr.Error as e:  # ours are short; Gradio's own may quote the whole input
            text = str(e.message) if len(str(e.message)) <= 300 else f"The {_label(block)} input was refused."
            if getattr(block, "accepts_preprocessed", False):
                return Preprocessed(None, text)
            raise refuse(text) from None
        except Exception as e:
            if getattr(block, "accepts_preprocessed", False):
                result = unreadable_result(e)
                log.info("refused an input: %s (%s)", result.message, type(e).__name__)
                return result
            if isinstance(e, (ImageTooLarge, Image.DecompressionBombError)):
                raise refuse(unreadable_result(e).message) from None
            raise refuse(f"The {_label(block)} input could not be read ({type(e).__name__}); "
                         f"expected {_expected(block)}.") from None

    preprocess._explorer_guarded = True
    compat.replace_preprocess(block, preprocess)


def _expected(block: Any) -> str:
    if isinstance(block, (gr.Image, gr.File, gr.Gallery)):
        return 'an uploaded file {"path": ..., "meta": {"_type": "gradio.FileData"}}'
    if isinstance(block, (gr.Number, gr.Slider)):
        return "a number"
    if isinstance(block, (gr.Checkbox,)):
        return "true or false"
    choices = getattr(block, "choices", None)
    if choices:
        values = [v for _, v in choices]
        return "one of " + short(values)
    return "a " + type(block).__name__.lower() + " value"


# --------------------------------------------------------------------------- per event


def _coerce(block: Any, value: Any) -> Any:
    """7 and "7" alike for number and choice inputs (the API info lists choices as strings)."""
    if isinstance(value, str) and len(value) <= 32:
        if isinstance(block, (gr.Number, gr.Slider)):
            try:
                number = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                return value
            return number if math.isfinite(number) else value  # "nan" / "inf" stay strings: refused
        choices = getattr(block, "choices", None)
        if isinstance(block, (gr.Radio, gr.Dropdown)) and choices:
            for _, v in choices:
                if not isinstance(v, str) and str(v) == value.strip():
                    return v
    return value


def _input_error(block_fn: Any, inputs: list, state: Any, error: BaseException) -> gr.Error:
    """One sentence saying which input of which endpoint was refused and what it expects."""
    name = f"/{block_fn.api_name}" if isinstance(block_fn.api_name, str) else "this event"
    blocks = list(block_fn.inputs)
    if len(inputs) < len(blocks):
        shown = sum(not getattr(b, "skip_api", False) for b in blocks)  # session state is not sent
        return refuse(f"{name} takes {shown} input(s); got {min(len(inputs), shown)}.")
    for i, block in enumerate(blocks):
        value = inputs[i]
        model = getattr(block, "data_model", None)
        if model is None or value is None or getattr(block, "stateful", False):
            continue
        try:
            model.model_validate(value)
        except Exception:
            return refuse(f"Input {i + 1} ({_label(block)}) of {name} must be {_expected(block)}; got {short(value)}.")
    if isinstance(error, compat.InvalidPath):
        return refuse(UPLOAD_FIRST.format(what=f"An input of {name}"))
    return refuse(f"{name} could not read its inputs ({type(error).__name__}); see the API page for the expected "
                  "values.")


def _refuse_urls(block_fn: Any, inputs: list) -> None:
    """File references must be uploads, not URLs for the server to fetch (the browser always uploads first)."""
    name = f"/{block_fn.api_name}" if isinstance(block_fn.api_name, str) else "this event"
    for i, block in enumerate(block_fn.inputs):
        if i < len(inputs) and not getattr(block, "stateful", False) and inputs[i] is not None:
            if compat.fetched_urls(inputs[i]):
                raise refuse(UPLOAD_FIRST.format(what=f"An input of {name}"))


def guard_inputs(demo: gr.Blocks) -> gr.Blocks:
    """Apply the checks above to every input of every event of `demo` (including components a session replaced)."""

    def make(original):
        async def preprocess_data(block_fn, inputs, state, explicit_call=False):
            inputs = list(inputs)
            for i, block in enumerate(block_fn.inputs):
                if getattr(block, "stateful", False):
                    continue
                block = compat.session_component(block, state)
                if isinstance(block, gr.components.Component):
                    guard_component(block)
                    if i < len(inputs):
                        inputs[i] = _coerce(block, inputs[i])
            token = _budget.set([0])
            try:
                _refuse_urls(block_fn, inputs)
                return await original(block_fn, inputs, state, explicit_call)
            except gr.Error:
                raise
            except Exception as e:
                log.info("refused the inputs of %s: %s", block_fn.api_name, type(e).__name__)
                raise _input_error(block_fn, inputs, state, e) from None
            finally:
                _budget.reset(token)

        return preprocess_data

    compat.wrap_preprocess(demo, make)
    return demo


__all__ = ["MAX_REQUEST_PIXELS", "check_image", "guard_component", "guard_inputs", "header_size",
           "refuse", "short"]
