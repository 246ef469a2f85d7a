"""The analysis of one browser session and the tab protocol every tab builds on.

- `new_analysis(model, raw)`: preprocess + one forward pass -> an `Analysis` (views.capsules), or a message
  for the user; never raises. The Analysis lives in the session's `gr.State`; views only read it.
- `ExplorerUI`: what a tab gets. A tab is a function `tab(ui: ExplorerUI) -> None` called inside `ui.tabs`;
  it makes a `gr.Tab`, puts input-dependent components inside `ui.analysis_column()` (hidden while there is
  no input) and registers `ui.on_analysis(fn, outputs, inputs)`: `fn(analysis, digit_class, *input_values)`
  returns one value per output and runs whenever the input or the selected capsule changes. Listeners are
  lazy per tab: the input event runs only the listeners of the tab that is open (and of tab functions that
  made no gr.Tab); the others run when their tab is selected (see events.py).
- `ViewTab.share(name=(component, codec))`: share links made while the tab is open carry that control's value
  (inputs/share.py's codecs write and check it), and opening one sets it before the tab draws (tabs/share.py).
- New inputs come from `ui.add_input(triggers, fn, inputs, source=...)`: `fn(*values)` returns anything
  `preprocess` accepts, a (1,28,28) tensor, a `Preprocessed`, or `Labelled(image, note)`; the app then runs
  `analyse` once, stores it in the state and refreshes the open tab's listeners.
- `_safe(fn, n)` wraps a tab's own event handlers: an exception is logged, the outputs stay as they were.
- Serving setup shared by the app: `load_model`, `configure_torch`, `batch_threads`, `cache_policy`, the per-process tmp dir.
"""
from __future__ import annotations

import logging
import os
import tempfile
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import gradio as gr
import numpy as np
import torch

from capsnet import CapsNet
from capsnet.checkpoint import CheckpointError, default_checkpoint, load_pretrained
from capsnet.settings import settings

from .inputs.preprocess import BLANK_MESSAGE, Preprocessed, preprocess
from .inputs.share import LINK_FIELDS, MAX_SETTINGS
from .limits import usable_cpus
from .views import capsules

log = logging.getLogger("explorer")

NO_CHECKPOINT_HINT = (
    "**No trained model is loaded.** {error}\n\n"
    "To get one, run `python -m capsnet.train` (it writes `checkpoints/capsnet.safetensors`), "
    "or start the explorer with `python -m explorer --checkpoint PATH/TO/capsnet.safetensors`."
)
PROMPT = "### Draw a digit\n" + BLANK_MESSAGE
IGNORE = object()  # an input source's answer that changes nothing (e.g. a damaged share link, after its warning)
ERROR_PROMPT = "### Something went wrong with this input\nPlease clear it and try another drawing or image."
# Gradio's temporary files (uploads, output images) are deleted when older than this, checked as often;
# all of them go when the server stops. $CAPSNET_CACHE_MAX_AGE (seconds) overrides it.
CACHE_MAX_AGE_S = 3600


def _make_tmp_dir() -> Path:
    """Our generated PNGs (perturbation grid): in the system temp dir, removed when the process exits."""
    import atexit
    import shutil

    path = Path(tempfile.mkdtemp(prefix="capsnet-explorer-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def cache_policy() -> tuple[int, int]:
    """`Blocks(delete_cache=(frequency, age))`, both in seconds."""
    age = settings().cache_max_age_s
    age = CACHE_MAX_AGE_S if age is None else max(1, age)
    return age, age


class Pruner:
    """Deletes our own generated files older than max_age_s (Gradio has copied them to its cache by then).

    A directory is scanned at most every `every_s` seconds, so a burst of requests costs one scan; the time of
    each directory's last scan is this object's state (`_prune` is the process's one), not a hidden default."""

    def __init__(self, every_s: float = 30.0) -> None:
        self.every_s = every_s
        self.last_scan: dict[Path, float] = {}

    def __call__(self, directory: Path, max_age_s: float) -> None:
        import time

        now = time.time()
        if now - self.last_scan.get(directory, 0.0) < self.every_s:
            return
        self.last_scan[directory] = now
        try:
            for entry in os.scandir(directory):
                try:
                    if entry.is_file() and now - entry.stat().st_mtime > max_age_s:
                        os.unlink(entry.path)
                except OSError:
                    pass
        except OSError:
            pass


_prune = Pruner()  # for the tabs' generated files: one per process, like the tmp dir it prunes
GENERATED_MAX_AGE_S = 120.0  # Gradio has copied a generated file to its cache by then; ours need not pile up


# --------------------------------------------------------------------------- serving setup


def configure_torch(threads: int | None = None) -> int:
    """Few threads per request: tiny batches gain nothing from many, and concurrent sessions share the cores."""
    if threads is None:
        threads = settings().torch_threads or max(1, min(4, usable_cpus() // 2))
    torch.set_num_threads(threads)
    return threads


@contextmanager
def batch_threads(threads: int | None = None):
    """Up to 2 torch threads (never more than the cores) for this thread's work inside the block, then back.

    For the few events that run a whole batch (a 19-image sweep): a second thread halves their wait, while
    single-image events keep one thread each. torch keeps the count per calling thread, so other requests
    in flight are not touched."""
    before = torch.get_num_threads()
    n = threads or min(2, usable_cpus())
    if n <= before:
        yield before
        return
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def load_model(checkpoint: str | os.PathLike | None = None) -> tuple[CapsNet | None, str | None]:
    """(model, None) or (None, a sentence saying what is wrong and how to fix it).

    The explorer analyses one digit at a time, where oneDNN's convolutions are faster in channels_last on every CPU
    we measured (the AVX2 EPYC: a drawing's analysis 22 -> 17.5 ms, one thread; training picks its own layout)."""
    try:
        return load_pretrained(checkpoint).to_memory_format(torch.channels_last), None
    except CheckpointError as e:
        return None, str(e)
    except Exception as e:  # anything else: still start, and say what happened
        log.exception("could not load checkpoint")
        return None, f"Loading {checkpoint or default_checkpoint()} failed ({type(e).__name__}: {e})."


def load_cnn(path: str | os.PathLike | None = None):
    """The CNN baseline (capsnet.baseline) the Transforms and Attack tabs compare with, or None (logged) when its
    checkpoint is missing or unreadable: the explorer then shows the CapsNet alone."""
    from capsnet.baseline import load_pretrained_cnn

    try:
        return load_pretrained_cnn(path)
    except CheckpointError as e:
        log.warning("no CNN baseline: %s", e)
        return None


# --------------------------------------------------------------------------- the extension point


@dataclass
class Listener:
    """A view: fn(analysis, digit_class, *inputs) -> one value per output."""

    fn: Callable
    outputs: list
    inputs: list
    group: int | None = None  # its view tab (index into ExplorerUI.view_tabs); None: runs with every input


class InputSource(NamedTuple):
    """An input source registered with ExplorerUI.add_input (see there)."""

    triggers: list
    fn: Callable
    inputs: list
    api_name: str | None
    source: str
    select: bool


class SharedSetting(NamedTuple):
    """A view tab's control whose value share links carry while that tab is open (ViewTab.share, tabs/share.py)."""

    group: int  # its view tab (index into ExplorerUI.view_tabs)
    name: str  # its field in a link
    component: Any
    codec: Any  # how the link writes and checks it: inputs/share.py's Whole, Number, Choice, Wholes


class Labelled(NamedTuple):
    """What an input source may return to label its image: `note` is shown beside the prediction; `pose_edit`
    (a share link's pose, see capsules.Analysis) is where the Pose tab starts."""

    image: Any
    note: str = ""
    pose_edit: tuple | None = None


@dataclass
class ExplorerUI:
    """What a tab needs: the model, the per-session state and the hooks to stay in sync with the input."""

    model: CapsNet | None
    model_error: str | None
    state: gr.State  # Analysis | None, per session
    selected_class: gr.Radio | None  # the digit capsule the pose views show (set once the view column is built)
    tabs: gr.Tabs | None = None
    prompt: gr.Markdown | None = None
    prediction: gr.Markdown | None = None
    model_input: gr.Image | None = None
    active_tab: gr.State | None = None  # per session: index of the open view tab's group
    card: dict | None = None  # the model card beside the checkpoint (capsnet.checkpoint.load_model_card)
    cnn: Any = None  # the CNN baseline (session.load_cnn), or None without checkpoints/cnn.safetensors
    atlas_maps: Any = None  # (10, 16, 28, 28) difference maps beside the checkpoint (capsnet.atlas.load_maps), or None
    atlas_poses: Any = None  # (10, N, 16) poses of the digits the atlas measured (capsnet.atlas.load_poses), or None
    data_dir: Path | None = None  # MNIST folder (None: not configured)
    mnist: Any = None  # explorer.inputs.examples.MnistExamples, shared by the sessions; decided at startup
    demo: gr.Blocks | None = None
    load_example: bool = True  # analyse a synthetic example when the page opens
    allow_download: bool = False  # `python -m explorer --allow-download`: a button that downloads MNIST (local use)
    pose_edit: gr.State | None = None  # per session: (analysis, capsule, pose) set in the Pose tab (for share links)
    language: gr.HTML | None = None  # the language switch (explorer/language.py), whose change redraws the views
    tmp_dir: Path = field(default_factory=lambda: _make_tmp_dir())
    # What the tabs register while the page is built; events.wire turns it into Gradio events.
    listeners: list[Listener] = field(default_factory=list)
    sources: list[InputSource] = field(default_factory=list)
    columns: list = field(default_factory=list)  # [gr.Column] made by analysis_column, shown only with an input
    view_tabs: list = field(default_factory=list)  # [gr.Tab] made by view_tab, in page order
    sections: list = field(default_factory=list)  # [Section] made by ViewTab.section, in page order
    redraws: list = field(default_factory=list)  # [(triggers, Listener)] made by ViewTab.on
    settings: list = field(default_factory=list)  # [SharedSetting] made by ViewTab.share

    def on_analysis(self, fn: Callable, outputs: Sequence, inputs: Sequence = ()) -> None:
        """Run fn(analysis, digit_class, *inputs) -> one value per output whenever the input or the capsule changes,
        whichever tab is open (a view of a tab uses ViewTab.on_analysis instead)."""
        self.listeners.append(Listener(fn, list(outputs), list(inputs), None))

    @contextmanager
    def view_tab(self, label: str, **kwargs):
        """A gr.Tab among the view tabs (build it inside `ui.tabs`); yields its ViewTab, whose views draw only
        while it is open."""
        if kwargs.get("id") is not None:
            kwargs.setdefault("elem_id", f"{kwargs['id']}-tab")  # its button is #<elem_id>-button (static/links.js)
        with gr.Tab(label, **kwargs) as tab:
            handle = ViewTab(self, len(self.view_tabs), tab)
            self.view_tabs.append(tab)
            yield handle

    @contextmanager
    def analysis_column(self, **kwargs):
        """A gr.Column shown only while there is an analysed input (the prompt shows otherwise): the page's CSS hides
        it while the prompt has text (static/prompt.js), with no event sent to the server."""
        classes = ["analysis-column", *(kwargs.pop("elem_classes", None) or [])]
        with gr.Column(elem_classes=classes, **kwargs) as col:
            yield col
        self.columns.append(col)

    def add_input(
        self, triggers: Iterable, fn: Callable, inputs: Sequence, api_name: str | None = None, *,
        source: str = "input", select: bool = False,
    ) -> None:
        """A new input source: fn(*inputs) -> raw image / (1,28,28) tensor / Preprocessed / Labelled(image, note).

        `source` is stored in Analysis.source. With `select`, fn gets the event's gr.SelectData first
        (fn(evt, *inputs), e.g. for a gallery's .select)."""
        self.sources.append(InputSource(list(triggers), fn, list(inputs), api_name, source, select))


@dataclass
class ViewTab:
    """One view tab while the page is built (ExplorerUI.view_tab): its gr.Tab and its index among the view tabs."""

    ui: ExplorerUI
    group: int
    tab: gr.Tab

    def on_analysis(self, fn: Callable, outputs: Sequence, inputs: Sequence = ()) -> None:
        """Run fn(analysis, digit_class, *inputs) -> one value per output when the input or the capsule changes
        while this tab is open, and when the tab is selected with views older than the input."""
        self.ui.listeners.append(Listener(fn, list(outputs), list(inputs), self.group))

    def on(self, triggers: Iterable, fn: Callable, outputs: Sequence, inputs: Sequence = ()) -> None:
        """Also run fn(analysis, digit_class, *inputs) on other triggers, e.g. the .input of the tab's own control
        (a sort order, a step size); nothing happens before there is an analysis."""
        self.ui.redraws.append((list(triggers), Listener(fn, list(outputs), list(inputs), self.group)))

    def share(self, **settings: tuple) -> None:
        """Share links made while this tab is open carry these controls' values, and opening one sets them before
        the tab draws: name=(component, codec), the name being its field in a link (inputs/share.py)."""
        names = [s.name for s in self.ui.settings if s.group == self.group] + list(settings)
        if len(names) > MAX_SETTINGS or len(set(names)) < len(names) or set(names) & set(LINK_FIELDS):
            raise ValueError(f"a view shares at most {MAX_SETTINGS} settings, each named once and not {LINK_FIELDS}")
        self.ui.settings += [SharedSetting(self.group, name, c, codec) for name, (c, codec) in settings.items()]

    @contextmanager
    def section(self, label: str, *, open: bool = False, **kwargs):
        """A named gr.Accordion inside this tab (collapsed unless `open`); yields its Section, whose views draw only
        while it is open, so a closed section costs nothing when the input changes."""
        with gr.Accordion(label, open=open, **kwargs) as accordion:
            handle = Section(self, accordion, open)
            self.ui.sections.append(handle)
            yield handle


@dataclass
class Section:
    """A collapsed part of a view tab (ViewTab.section): drawn when opened with views older than the input, and
    on every new input or capsule while it is open and its tab is shown."""

    view_tab: ViewTab
    accordion: gr.Accordion
    is_open: bool
    listeners: list[Listener] = field(default_factory=list)
    redraws: list[tuple[list, Listener]] = field(default_factory=list)

    def on_analysis(self, fn: Callable, outputs: Sequence, inputs: Sequence = ()) -> None:
        """Run fn(analysis, digit_class, *inputs) -> one value per output when the section's views are stale and it
        is open (see the class)."""
        self.listeners.append(Listener(fn, list(outputs), list(inputs), self.view_tab.group))

    def on(self, triggers: Iterable, fn: Callable, outputs: Sequence, inputs: Sequence = ()) -> None:
        """Run fn(analysis, digit_class, *inputs) on other triggers (e.g. a slider's .input) while the section is
        open; while it is closed they only mark its views stale, and opening it draws them with on_analysis."""
        self.redraws.append((list(triggers), Listener(fn, list(outputs), list(inputs), self.view_tab.group)))


def new_analysis(model: CapsNet | None, raw: Any, source: str = "input", note: str = "") -> tuple[capsules.Analysis | None, str]:
    """Preprocess + one forward pass: (Analysis, "") or (None, message for the user). Never raises.

    `raw` may be a Labelled(image, note, pose_edit); (1,28,28) / (28,28) tensors and float arrays in [0,1] are used as they
    are (already the model's input), anything else goes through `preprocess`."""
    if model is None:
        return None, "No model loaded."
    try:
        pose_edit = None
        if isinstance(raw, Labelled):
            raw, note, pose_edit = raw.image, raw.note or note, raw.pose_edit
        if isinstance(raw, Preprocessed):
            pre = raw
        elif _is_model_input(raw):
            a = np.clip(np.nan_to_num(np.asarray(raw, np.float32).reshape(1, 28, 28)), 0.0, 1.0)
            pre = Preprocessed(torch.from_numpy(a)) if a.max() >= 0.1 else Preprocessed(None, BLANK_MESSAGE)
        else:
            pre = preprocess(raw)
        if pre.blank:
            return None, pre.message
        return capsules.analyse(model, pre.image, source, note, pose_edit), ""
    except Exception:
        log.error("analysis failed:\n%s", traceback.format_exc())
        return None, ERROR_PROMPT


def _is_model_input(raw: Any) -> bool:
    """A ready 28x28 model input: a float tensor / array of 784 values in [0, 1] (examples, transforms)."""
    if isinstance(raw, torch.Tensor):
        raw = raw.detach().cpu().numpy()
    if isinstance(raw, np.ndarray):
        return raw.dtype.kind == "f" and raw.size == 784 and raw.shape[-2:] == (28, 28)
    return False


def predict(model: CapsNet | None, image: Any, model_error: str | None = None, card: dict | None = None) -> dict:
    """The `predict` endpoint: {"digit", "lengths", "confidence", "pose", "reconstruction_distance",
    "reconstruction_percentile", "typical", "error"} (the last three from the card's `reconstruction_check`);
    errors as JSON, never raised."""
    if model is None:
        return {"digit": None, "lengths": None, "error": model_error or "No model loaded."}
    analysis, message = new_analysis(model, image, "api")
    if analysis is None:
        return {"digit": None, "lengths": None, "error": message or BLANK_MESSAGE}
    return capsules.summary(analysis, (card or {}).get("reconstruction_check"))


def _safe(fn: Callable, n_outputs: int) -> Callable:
    """Wrap an event handler: any exception is logged and the outputs are left unchanged (no traceback in the UI)."""

    def wrapper(*args):
        try:
            return fn(*args)
        except Exception:
            log.error("event %s failed:\n%s", getattr(fn, "__name__", fn), traceback.format_exc())
            return [gr.skip()] * n_outputs if n_outputs != 1 else gr.skip()

    wrapper.__name__ = getattr(fn, "__name__", "handler")
    return wrapper
