"""The one place where the explorer touches Gradio's internals: private attributes, replaced methods, classes Gradio
does not export, and the DOM its frontend renders that the page's scripts rely on (`PAGE_DOM`). Outside it the
explorer uses Gradio's public names only (no underscore attribute, no replaced method of Gradio's own).

The server's limits rest on these (explorer/limits.py: fair queueing, per-visitor caps, private events refused by
name, the body limit, the clean stop; explorer/inputs/guard.py: input checks before anything decodes), so a Gradio
upgrade that changes one of them could silently weaken a limit. Hence:

- `check_gradio_version()` (called by `build_demo`) refuses to start on a Gradio release other than
  `GRADIO_VERSION`, the one this module was checked against;
- each function says which internal it relies on and why, and tests/test_gradio_compat.py has a test for each one
  that fails when Gradio's behaviour changes.

To upgrade Gradio: install it, run tests/test_gradio_compat.py and fix what fails here, then change
`GRADIO_VERSION` together with the pins in pyproject.toml and requirements.txt.
"""
from __future__ import annotations

import json
import os
import re
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable

import gradio as gr
from gradio import processing_utils as pu
from gradio import route_utils
from gradio.components.plot import PlotData
from gradio.exceptions import InvalidPathError
from gradio_client import utils as client_utils

GRADIO_VERSION = "6.31.0"
UnknownEndpoint = route_utils.FnIndexInferError  # what /gradio_api/call/<name> raises for a name no event has
InvalidPath = InvalidPathError  # what preprocessing raises for a file reference outside the allowed folders
_OURS = "_explorer_wrapped"  # marks a replacement made here, so that wrapping twice wraps once


def _release(version: str) -> tuple[int, int, int] | None:
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    return None if match is None else tuple(int(x or 0) for x in match.groups())  # type: ignore[return-value]


def check_gradio_version(installed: str = gr.__version__) -> None:
    """Raise RuntimeError, in one sentence, unless `installed` is the major.minor.patch this module was written for."""
    if _release(installed) != _release(GRADIO_VERSION):
        raise RuntimeError(
            f"explorer.gradio_compat was written for Gradio {GRADIO_VERSION} and Gradio {installed} is installed: "
            f"install gradio=={GRADIO_VERSION} (pip install -r requirements.txt), or check explorer/gradio_compat.py "
            f"against Gradio {installed} with tests/test_gradio_compat.py and then update GRADIO_VERSION and the pins."
        )


def _replace_once(owner: Any, name: str, make: Callable[[Callable], Callable]) -> bool:
    """Set `owner.<name>` to `make(original)` unless it is already a replacement made here; True if it replaced."""
    original = getattr(owner, name)
    if getattr(original, _OURS, False):
        return False
    replacement = make(original)
    setattr(replacement, _OURS, True)
    setattr(owner, name, replacement)
    return True


# --------------------------------------------------------------------------- the queue (gradio/queueing.py)


def set_queue_max_size(demo: gr.Blocks, max_size: int) -> None:
    """Gradio's overall cap on waiting events (`Queue.max_size`, read by `Queue.push`), set without `demo.queue()`,
    which would make a new queue and a new app and so drop `wrap_queue_push`."""
    demo._queue.max_size = max_size


def set_queue_poll(demo: gr.Blocks, seconds: float) -> None:
    """How often Gradio's queue loop looks for work when it has none it can start (`Queue.sleep_when_free`, 1 ms on
    Linux: `start_processing` sleeps that long whenever the queue is empty or every lane is busy). At 1 ms an idle
    server spent 7-10% of a core polling, and a saturated one polled hardest exactly when the GIL was scarce."""
    demo._queue.sleep_when_free = seconds


def skip_absent_matplotlib() -> bool:
    """Gradio runs every event inside `utils.MatplotlibBackendMananger`, which imports matplotlib on entry and exit.
    Without matplotlib installed (it is not a dependency) each import fails after searching every folder on
    sys.path: 3.6% of a busy server's GIL time. Marking it absent (`sys.modules["matplotlib"] = None`, Python's
    documented way) makes the import fail at once; `importlib.util.find_spec` still answers None. True if marked."""
    import importlib.util
    import sys

    if "matplotlib" in sys.modules or importlib.util.find_spec("matplotlib") is not None:
        return False
    sys.modules["matplotlib"] = None  # type: ignore[assignment]
    return True


def wrap_queue_push(demo: gr.Blocks, make_push: Callable[[Callable], Callable]) -> None:
    """Replace `Queue.push(body, request, username) -> (accepted, event_id or message, status)` of `demo` by
    `make_push(original)`, once. Every queued event enters through it, from the page (/queue/join) and from API
    callers (/call/<name>): the one point that sees the request of an event before it waits."""
    _replace_once(demo._queue, "push", make_push)


def waiting_events(demo: gr.Blocks) -> list:
    """Every event waiting to run (Gradio's `Event`s), over all concurrency groups
    (`Queue.event_queue_per_concurrency_id[id].queue`; running events have left those lists)."""
    return [ev for group in list(demo._queue.event_queue_per_concurrency_id.values()) for ev in list(group.queue)]


def event_group(demo: gr.Blocks, concurrency_id: str) -> list | None:
    """The waiting list of one concurrency group, the list object itself: `Queue.get_events` starts its `queue[0]`
    next, so reordering it in place reorders service. None before the group's first event."""
    group = demo._queue.event_queue_per_concurrency_id.get(concurrency_id)
    return None if group is None else group.queue


def queued_event(demo: gr.Blocks, event_id: str) -> Any:
    """Gradio's `Event` for the id `push` returned (`Queue.event_ids_to_events`), or None once it is gone."""
    return demo._queue.event_ids_to_events.get(event_id)


def event_request(event: Any) -> Any:
    """The Starlette request that queued `event` (`Event.request`): its peer address and headers."""
    return event.request


def body_fn(demo: gr.Blocks, body: Any) -> Any:
    """The event (BlockFunction) a queue body asks for, found the way `Queue.push` finds it (`route_utils.get_fn`:
    the session's copy of the events, by `fn_index`), or None when the body names none that exists."""
    if body.fn_index is None:
        return None
    try:
        return route_utils.get_fn(demo, None, body)
    except Exception:
        return None


def called_by_name(body: Any) -> bool:
    """Whether a queue body came from `/gradio_api/call/<name>` (Gradio marks those `simple_format`) rather than
    from the page's `/queue/join`, which names events by index."""
    return bool(getattr(body, "simple_format", False))


def fn_name(fn: Any) -> str:
    """An event's API name, or when it has none its index (`BlockFunction._id`, the `fn_index` the page sends)."""
    return fn.api_name if isinstance(fn.api_name, str) else str(fn._id)


def event_functions(demo: gr.Blocks) -> list:
    """Every event of `demo` (`Blocks.fns`), as BlockFunctions: `inputs`, `api_name`, `api_visibility`,
    `concurrency_id`, `concurrency_limit`."""
    return list(demo.fns.values())


def cap_default_concurrency(fn: Any, limit: int) -> None:
    """Run `fn`'s event at most `limit` at once if it has Gradio's default limit. Gradio reads
    `BlockFunction.concurrency_limit` when the event is first queued (`Queue.create_event_queue_for_fn`), so a
    change made before launch holds."""
    if fn.concurrency_limit == "default":
        fn.concurrency_limit = limit


# --------------------------------------------------------------------------- inputs (gradio/blocks.py, components)


def wrap_preprocess(demo: gr.Blocks, make_preprocess: Callable[[Callable], Callable]) -> bool:
    """Replace `Blocks.preprocess_data(block_fn, inputs, state, explicit_call)` of `demo` by
    `make_preprocess(original)`, once (False if it already was). `Blocks.process_api` calls it for every event with
    the raw inputs, before files are moved or any component's `preprocess` runs."""
    return _replace_once(demo, "preprocess_data", make_preprocess)


def replace_preprocess(block: Any, preprocess: Callable[[Any], Any]) -> None:
    """Make `preprocess(payload)` this component instance's preprocess step. `Blocks.preprocess_data` calls
    `block.preprocess` on the instance (after moving files to the cache and validating the payload with the
    component's `data_model`), so an instance attribute takes the class method's place."""
    block.preprocess = preprocess


def session_component(block: Any, state: Any) -> Any:
    """The session's own copy of a (non-stateful) input `block` when it has one, else `block`: an event that updates
    a component's props gives the session a new instance (`Blocks.postprocess_data`), and `preprocess_data` then
    preprocesses with it (`state[block._id]`). `state` is the SessionState `preprocess_data` gets, or None."""
    return state[block._id] if state is not None and block._id in state else block


def fetched_urls(value: Any) -> list[str]:
    """The http(s) paths in an input that Gradio would download before preprocessing: file references as
    `processing_utils.async_move_files_to_cache` finds them (`traverse` with `is_file_obj_with_meta`)."""
    found: list[str] = []

    def visit(ref: dict) -> dict:
        if client_utils.is_http_url_like(ref.get("path")):
            found.append(ref["path"])
        return ref

    client_utils.traverse(value, visit, client_utils.is_file_obj_with_meta)
    return found


def event_payload(evt: gr.EventData) -> dict:
    """The dict a page script sent as an event's data (a custom `gr.HTML` event's `trigger(name, data)`), {} when
    none. gr.EventData exposes only its keys as attributes (raising for missing ones), so read `EventData._data`."""
    return evt._data or {}


def plot_value(fig: Any) -> PlotData:
    """gr.Plot's value for a figure with plotly's `to_json()` (a plotly Figure or a LightFigure), without building a
    plotly Figure: `gr.Plot.postprocess` passes a `PlotData` through as it is."""
    return PlotData(type="plotly", plot=fig.to_json())


def write_images_atomically() -> None:
    """Gradio's `processing_utils.save_pil_to_cache` writes an output image to a path named by its content hash with
    `write_bytes`, i.e. truncate-then-write, also when the file is already there: a visitor fetching that image
    while another event returns the same image again got a truncated body (1-8 broken images a minute with 40
    visitors, benchmarks/classroom.py). Here an existing file is left alone (same hash, same bytes) and a new one is
    written beside it and renamed into place, so a reader sees the whole file. Process-wide, once."""
    def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        data = pu.encode_pil_to_bytes(img, format)
        folder = Path(cache_dir) / pu.hash_bytes(data)
        folder.mkdir(exist_ok=True, parents=True)
        path = (folder / f"{name}.{format}").resolve()
        if not path.is_file() or path.stat().st_size != len(data):
            part = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
            part.write_bytes(data)
            os.replace(part, path)
        return str(path)

    _replace_once(pu, "save_pil_to_cache", lambda original: save_pil_to_cache)


# --------------------------------------------------------------------------- the page (Gradio's frontend DOM)

# What the page's scripts (explorer/static/*.js) find in the DOM that Gradio's frontend (and the plotly it bundles)
# renders, beyond our own elem_ids: written into each script where it says GRADIO_DOM (`with_page_dom`), so no
# static script spells one of these itself. tests/test_gradio_compat.py finds each one on a live page.
PAGE_DOM = {
    "plot": ".js-plotly-plot",  # the plotly graph div inside a gr.Plot: `#<elem_id> .js-plotly-plot`
    "plot_traces": ".scatterlayer .trace",  # plotly: one SVG group per scatter trace, in the figure's data order
    "tab_button": "-button",  # the button of gr.Tab(elem_id=X) is #X-button
    "tab_button_with_id": "button[role='tab'][data-tab-id='ID']",  # the button of gr.Tab(id=ID)
    "tab_strip": ".tab-wrapper",  # a gr.Tabs' row of tab buttons: the first `#<tabs elem_id> .tab-wrapper`
    "radio_input": "input[type='radio']",  # a gr.Radio's options: one input inside each option's label
    "slider_range": "input[type='range']",  # a gr.Slider: its range input and its number box
    "slider_number": "input[type='number']",
    "file_route": "/gradio_api/file=",  # a cached file's URL: <root><file_route><path>
    "config_global": "gradio_config",  # the page's config (window.gradio_config), whose `root` is the app's URL
    "image_button": ".image-container > button",  # a gr.Image showing a value: a button around an <img alt="">
    "block": ".block",  # a component's box, holding its label
    "block_label": "[data-testid='block-label']",
    "empty_labelled": ".empty[aria-label]",  # an empty gr.Image's placeholder: aria-label on a div with no role
    # the frontend's core module (a loaded resource whose URL matches this), whose export changeLocale(code) sets
    # the language gr.I18n's texts show in; importing it again gives the page's own instance
    "core_module": "/assets/core-[\\w-]+\\.js$",
}
PAGE_DOM_TOKEN = "GRADIO_DOM"


def with_page_dom(script: str) -> str:
    """A static script with PAGE_DOM (a JSON object) written where it says GRADIO_DOM."""
    if PAGE_DOM_TOKEN not in script:
        raise ValueError(f"the script does not name {PAGE_DOM_TOKEN}: {script[:60]!r}")
    return script.replace(PAGE_DOM_TOKEN, json.dumps(PAGE_DOM))


# --------------------------------------------------------------------------- launching and stopping


def cached_files(demo: gr.Blocks) -> set[str]:
    """Every file Gradio's cache holds for this app: uploads and outputs (`Blocks.temp_file_sets`) and the values
    components keep on purpose (`Block.keep_in_cache`)."""
    files: set[str] = set()
    for temp_set in getattr(demo, "temp_file_sets", []):
        files.update(map(str, temp_set))
    for block in demo.blocks.values():
        files.update(map(str, getattr(block, "keep_in_cache", ()) or ()))
    return files


def stop_server_now(demo: gr.Blocks) -> None:
    """Make a running demo stop at once: the queue takes no more events (`Queue.close`), open streams end
    (`App.stop_event`, which they wait on), and uvicorn exits without waiting for open connections and running
    requests (`Server.force_exit`). Gradio's own `close` (or the end of `launch`) still closes the server."""
    demo._queue.close()
    demo.app.stop_event.set()
    if getattr(demo, "server", None) is not None:
        demo.server.force_exit = True


_EVENT_REQUEST: ContextVar = ContextVar("capsnet_event_request", default=None)


def keep_event_request(demo: gr.Blocks) -> bool:
    """Make the event's request known to `current_request` while its inputs are preprocessed too, once (False if it
    already was): `Blocks.process_api(block_fn, inputs, state, request, ...)` runs preprocessing, the function and
    postprocessing for each event, and Gradio sets its own `LocalContext.request` only around the function, so an
    input refused before it (an image too large) could not be said in the visitor's language."""
    def make(original):
        async def process_api(block_fn, inputs, state=None, request=None, *args, **kwargs):
            token = _EVENT_REQUEST.set(request)
            try:
                return await original(block_fn, inputs, state, request, *args, **kwargs)
            finally:
                _EVENT_REQUEST.reset(token)

        return process_api

    return _replace_once(demo, "process_api", make)


def current_request() -> Any:
    """The gr.Request of the event being answered, None outside one. Gradio sets `LocalContext.request` around each
    event's function, in the thread that runs it (utils.get_function_with_locals), as gr.Warning finds its event;
    `keep_event_request` adds the event's preprocessing. The explorer reads the visitor's language from it
    (explorer/language.py) instead of adding an input to every event."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    return request if request is not None else _EVENT_REQUEST.get()


__all__ = [
    "GRADIO_VERSION", "PAGE_DOM", "InvalidPath", "UnknownEndpoint", "body_fn", "cached_files", "called_by_name",
    "cap_default_concurrency", "check_gradio_version", "current_request", "event_functions", "event_group",
    "event_payload", "event_request", "fetched_urls", "fn_name", "keep_event_request", "plot_value",
    "queued_event",
    "replace_preprocess", "session_component", "set_queue_max_size", "set_queue_poll",
    "skip_absent_matplotlib",
    "stop_server_now", "waiting_events", "with_page_dom", "wrap_preprocess", "wrap_queue_push",
]

