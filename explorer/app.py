"""The CapsNet Explorer Gradio app: `build_demo()` wires the plain views (views.py) to the UI.

Structure (for adding tabs):

- `ExplorerUI` holds the model, the per-session `gr.State` (an `Analysis` or None),
  the shared "digit capsule to inspect" selector and the views' `gr.Tabs`.
- A tab is a function `tab(ui: ExplorerUI) -> None` called inside `ui.tabs`; it makes a
  `gr.Tab`, puts input-dependent components inside `ui.analysis_column()` (hidden
  while there is no input) and registers `ui.on_analysis(fn, outputs, inputs)`:
  `fn(analysis, digit_class, *input_values)` returns one value per output and runs
  whenever the input or the selected capsule changes (all listeners run in ONE event).
  Listeners are lazy per tab: the input event runs only the listeners of the tab that is
  open (and of tab functions that made no gr.Tab); the others run when their tab is selected.
- New inputs come from `ui.add_input(triggers, fn, inputs, source=...)`: `fn(*values)` returns
  anything `preprocess` accepts, a (1,28,28) tensor, a `Preprocessed`, or `Labelled(image, note)`;
  the app then runs `analyse` once, stores it in the state and refreshes the open tab's listeners.
- `build_demo(tabs=..., input_tabs=...)` takes the view-tab and input-tab functions; the defaults
  are `DEFAULT_TABS` and `DEFAULT_INPUT_TABS`.
"""
from __future__ import annotations

import hashlib
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
from capsnet.checkpoint import CheckpointError, default_checkpoint, load_model_card, load_pretrained

from . import views
from .preprocess import BLANK_MESSAGE, Preprocessed, preprocess
from .upload import MAX_FILE_SIZE, GuardedImage

log = logging.getLogger("explorer")

TITLE = "CapsNet Explorer"
INTRO = """
A **capsule** is a group of neurons whose activity *vector* describes one entity: its **length** is the
probability that the entity is present, its direction (the **pose**, or instantiation parameters) describes
*how* it looks: stroke thickness, skew, width, position. This network
([Sabour, Frosst & Hinton 2017](https://arxiv.org/abs/1710.09829)) has 1152 **primary capsules** (8-D) that vote
for 10 **digit capsules** (16-D); *routing by agreement* sets the **coupling coefficients** that decide which votes
count. The decoder redraws the digit from the winning capsule's pose alone, so editing that pose shows what each
dimension encodes.
"""
NO_CHECKPOINT_HINT = (
    "**No trained model is loaded.** {error}\n\n"
    "To get one, run `python -m capsnet.train` (it writes `checkpoints/capsnet.safetensors`), "
    "or start the explorer with `python -m explorer --checkpoint PATH/TO/capsnet.safetensors`."
)
PROMPT = "### Draw a digit\n" + BLANK_MESSAGE
ERROR_PROMPT = "### Something went wrong with this input\nPlease clear it and try another drawing or image."
CLASS_CHOICES = [(str(k), k) for k in range(views.NUM_CLASSES)]
SLIDER_RANGE = 1.0  # digit-capsule poses have length <= 1, so every dimension lies in [-1, 1]
SLIDER_STEP = 0.01
CANVAS = 336  # sketchpad canvas size; the brush is about 1/12 of it so strokes survive 28x28
BRUSH_RADIUS = 14

CSS = """
#explorer-title h1 {margin-bottom: 0}
.model-view img {image-rendering: pixelated}
#prompt {min-height: 120px; padding: 1.5em; border: 1px dashed var(--border-color-primary); border-radius: 8px}
#prediction {text-align: center}
/* display images are sent at their real size (28x28 etc.) and scaled up crisply by the browser */
.model-view img {width: 100%; height: 100%; object-fit: contain}
.example-gallery img {image-rendering: pixelated}
#coupling-map img {cursor: crosshair}
#capsule-summary th, #capsule-summary td {padding: 2px 5px; font-size: 0.85em; white-space: nowrap}
"""
# The sketchpad starts with no tool selected; pick the brush so a visitor can draw straight away.
SELECT_BRUSH_JS = """
() => {
  const pick = (tries) => {
    const b = document.querySelector("#sketchpad button[aria-label='Brush']");
    if (b) { b.click(); } else if (tries > 0) { setTimeout(() => pick(tries - 1), 200); }
  };
  pick(25);
}
"""
# max_file_size: Gradio's upload route answers 413 before anything is decoded (see docs/robustness.md).
LAUNCH_OPTIONS: dict[str, Any] = {
    "theme": gr.themes.Soft(primary_hue="orange"), "css": CSS, "max_file_size": MAX_FILE_SIZE,
}
# Gradio's queue keeps a record of every event (up to 10,000) for its monitoring page and rebuilds a pandas
# summary of all of them after *every* event: memory and per-event CPU that grow with traffic. Keep fewer
# records and summarise every 100 events (read when the queue is created; the environment can override).
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")
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
    age = max(1, int(os.environ.get("CAPSNET_CACHE_MAX_AGE") or CACHE_MAX_AGE_S))
    return age, age


def _prune(directory: Path, max_age_s: float, every_s: float = 30.0, _last: dict = {}) -> None:  # noqa: B006
    """Delete our own generated files older than max_age_s (Gradio has copied them to its cache by then)."""
    import time

    now = time.time()
    if now - _last.get(directory, 0.0) < every_s:
        return
    _last[directory] = now
    try:
        for entry in os.scandir(directory):
            try:
                if entry.is_file() and now - entry.stat().st_mtime > max_age_s:
                    os.unlink(entry.path)
            except OSError:
                pass
    except OSError:
        pass


# --------------------------------------------------------------------------- serving setup


def configure_torch(threads: int | None = None) -> int:
    """Few threads per request: tiny batches gain nothing from many, and concurrent sessions share the cores."""
    if threads is None:
        env = os.environ.get("CAPSNET_TORCH_THREADS")
        threads = int(env) if env else max(1, min(4, (os.cpu_count() or 2) // 2))
    torch.set_num_threads(threads)
    return threads


def load_model(checkpoint: str | os.PathLike | None = None) -> tuple[CapsNet | None, str | None]:
    """(model, None) or (None, a sentence saying what is wrong and how to fix it)."""
    try:
        return load_pretrained(checkpoint), None
    except CheckpointError as e:
        return None, str(e)
    except Exception as e:  # anything else: still start, and say what happened
        log.exception("could not load checkpoint")
        return None, f"Loading {checkpoint or default_checkpoint()} failed ({type(e).__name__}: {e})."


# --------------------------------------------------------------------------- the extension point


@dataclass
class _Listener:
    fn: Callable
    outputs: list
    inputs: list
    group: int | None = None  # the view tab (index into ExplorerUI._groups) it belongs to; None: always runs


class Labelled(NamedTuple):
    """What an input source may return to label its image: `note` is shown beside the prediction."""

    image: Any
    note: str = ""


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
    data_dir: Path | None = None  # MNIST folder (None: not configured)
    mnist: Any = None  # explorer.examples.MnistExamples, shared by the sessions
    demo: gr.Blocks | None = None
    load_example: bool = True  # analyse a synthetic example when the page opens
    tmp_dir: Path = field(default_factory=lambda: _make_tmp_dir())
    _listeners: list[_Listener] = field(default_factory=list)
    _columns: list = field(default_factory=list)
    _sources: list = field(default_factory=list)
    _groups: list = field(default_factory=list)  # [[gr.Tab, ...]] per view-tab function
    _group: int | None = None  # the group being built

    def on_analysis(self, fn: Callable, outputs: Sequence, inputs: Sequence = ()) -> None:
        """Run fn(analysis, digit_class, *inputs) -> one value per output when the input or capsule changes
        (only while its tab is open; it runs again when the tab is selected)."""
        self._listeners.append(_Listener(fn, list(outputs), list(inputs), self._group))

    @contextmanager
    def analysis_column(self, **kwargs):
        """A gr.Column shown only while there is an analysed input (the prompt shows otherwise)."""
        with gr.Column(visible=False, **kwargs) as col:
            yield col
        self._columns.append(col)

    def add_input(
        self, triggers: Iterable, fn: Callable, inputs: Sequence, api_name: str | None = None, *,
        source: str = "input", select: bool = False,
    ) -> None:
        """A new input source: fn(*inputs) -> raw image / (1,28,28) tensor / Preprocessed / Labelled(image, note).

        `source` is stored in Analysis.source. With `select`, fn gets the event's gr.SelectData first
        (fn(evt, *inputs), e.g. for a gallery's .select)."""
        self._sources.append((list(triggers), fn, list(inputs), api_name, source, select))


def new_analysis(model: CapsNet | None, raw: Any, source: str = "input", note: str = "") -> tuple[views.Analysis | None, str]:
    """Preprocess + one forward pass: (Analysis, "") or (None, message for the user). Never raises.

    `raw` may be a Labelled(image, note); (1,28,28) / (28,28) tensors and float arrays in [0,1] are used as they
    are (already the model's input), anything else goes through `preprocess`."""
    if model is None:
        return None, "No model loaded."
    try:
        if isinstance(raw, Labelled):
            raw, note = raw.image, raw.note or note
        if isinstance(raw, Preprocessed):
            pre = raw
        elif _is_model_input(raw):
            a = np.clip(np.nan_to_num(np.asarray(raw, np.float32).reshape(1, 28, 28)), 0.0, 1.0)
            pre = Preprocessed(torch.from_numpy(a)) if a.max() >= 0.1 else Preprocessed(None, BLANK_MESSAGE)
        else:
            pre = preprocess(raw)
        if pre.blank:
            return None, pre.message
        return views.analyse(model, pre.image, source, note), ""
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


def predict(model: CapsNet | None, image: Any, model_error: str | None = None) -> dict:
    """The `predict` endpoint: {"digit", "lengths", "confidence", "pose", "error"}; errors as JSON, never raised."""
    if model is None:
        return {"digit": None, "lengths": None, "error": model_error or "No model loaded."}
    analysis, message = new_analysis(model, image, "api")
    if analysis is None:
        return {"digit": None, "lengths": None, "error": message or BLANK_MESSAGE}
    return views.summary(analysis)


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


# --------------------------------------------------------------------------- the default tabs


def capsules_tab(ui: ExplorerUI) -> None:
    with gr.Tab("Digit capsules", id="capsules"):
        with ui.analysis_column():
            plot = gr.Plot(label="Digit-capsule lengths", show_label=False, elem_id="lengths-plot")
            gr.Markdown(
                "Each bar is the **length** of one digit capsule's 16-D output vector: the network's probability that "
                "this digit is present. Training pushes the right capsule above **m+ = 0.9** and the others below "
                "**m- = 0.1** (margin loss). Hover a bar for the exact value."
            )
    ui.on_analysis(lambda a, k: views.lengths_figure(a, selected=k), [plot])


def pose_tab(ui: ExplorerUI) -> None:
    with gr.Tab("Pose", id="pose"):
        with ui.analysis_column():
            gr.Markdown(
                "The 16 sliders are the **pose** of the selected digit capsule, starting at its actual values. "
                "Moving one re-runs only the decoder on the edited pose. Pick another capsule above to "
                "reconstruct the input *as that digit*."
            )
            with gr.Row():
                model_view = gr.Image(
                    label="Model input (28x28)", interactive=False, format="png", height=300,
                    elem_classes=["model-view"], buttons=[],
                )
                recon = gr.Image(
                    label="Reconstruction from the pose", interactive=False, format="png", height=300,
                    elem_classes=["model-view"], elem_id="reconstruction", buttons=["download"],
                )
            sliders = []
            with gr.Row():
                for col in range(4):
                    with gr.Column(min_width=160):
                        for dim in range(col * 4, col * 4 + 4):
                            sliders.append(
                                gr.Slider(
                                    -SLIDER_RANGE, SLIDER_RANGE, value=0.0, step=SLIDER_STEP,
                                    label=f"dim {dim}", elem_id=f"pose-dim-{dim}", elem_classes=["pose-slider"],
                                )
                            )
            reset = gr.Button("Reset to the actual pose", variant="secondary", elem_id="reset-pose")

    def on_analysis(a: views.Analysis, k: int):
        pose = a.pose(k)
        img = views.upscale(views.decode_pose(ui.model, a, k), scale=1)  # 28x28; the browser scales it up
        return [views.model_input_image(a, scale=1), img, *[round(float(v), 3) for v in pose]]

    ui.on_analysis(on_analysis, [model_view, recon, *sliders])

    def move(a: views.Analysis | None, k, *pose):
        if a is None or k is None:
            return gr.skip()
        return views.upscale(views.decode_pose(ui.model, a, int(k), pose), scale=1)

    def do_reset(a: views.Analysis | None, k):
        if a is None or k is None:
            return [gr.skip()] * (1 + len(sliders))
        k = int(k)
        return [views.upscale(views.decode_pose(ui.model, a, k), scale=1), *[round(float(v), 3) for v in a.pose(k)]]

    gr.on(
        [s.input for s in sliders], _safe(move, 1), [ui.state, ui.selected_class, *sliders], recon,
        api_name="pose", api_visibility="undocumented", trigger_mode="always_last",
        show_progress="hidden", queue=True,
    )
    reset.click(
        _safe(do_reset, 1 + len(sliders)), [ui.state, ui.selected_class], [recon, *sliders],
        api_visibility="private", show_progress="hidden",
    )


def perturbation_tab(ui: ExplorerUI) -> None:
    with gr.Tab("Perturbations", id="perturbations"):
        with ui.analysis_column():
            gr.Markdown(
                "As in the paper's Figure 4: each **row** is one pose dimension of the selected digit capsule, each "
                "**column** adds -0.25 ... +0.25 (step 0.05) to it; the middle column is the unedited pose. "
                "All 176 reconstructions come from one batched decoder call."
            )
            grid = gr.Image(
                label="Dimension perturbations (rows: dim 0-15; columns: -0.25 ... +0.25)", interactive=False,
                format="png", elem_classes=["model-view"], elem_id="perturbation-grid", buttons=["download", "fullscreen"],
            )
            download = gr.DownloadButton("Download PNG", elem_id="download-grid", variant="secondary")

    def on_analysis(a: views.Analysis, k: int):
        img = views.perturbation_grid(ui.model, a, k)
        digest = hashlib.sha1(img.tobytes()).hexdigest()[:16]
        path = views.save_png(img, ui.tmp_dir / f"capsnet-perturbations-class{k}-{digest}.png")
        _prune(ui.tmp_dir, max_age_s=120.0)  # Gradio copies the file to its cache; ours need not pile up
        return [str(path), str(path)]

    ui.on_analysis(on_analysis, [grid, download])


CORE_TABS: tuple[Callable[[ExplorerUI], None], ...] = (capsules_tab, pose_tab, perturbation_tab)


# --------------------------------------------------------------------------- wiring


def _run(listeners: Sequence[_Listener], analysis: views.Analysis, k: int, values: Sequence) -> list:
    """Call each listener with its slice of `values` (missing values are None); a failing view leaves its outputs."""
    results, i = [], 0
    for ln in listeners:
        n = len(ln.inputs)
        vals = list(values[i : i + n])
        vals += [None] * (n - len(vals))
        i += n
        try:
            out = ln.fn(analysis, k, *vals)
            out = list(out) if isinstance(out, (list, tuple)) else [out]
            if len(out) != len(ln.outputs):
                raise ValueError(f"{ln.fn} returned {len(out)} values for {len(ln.outputs)} outputs")
        except Exception:
            log.error("view %s failed:\n%s", getattr(ln.fn, "__name__", ln.fn), traceback.format_exc())
            out = [gr.skip()] * len(ln.outputs)
        results.extend(out)
    return results


def _wire(ui: ExplorerUI) -> None:
    """Events, kept small because Gradio rebuilds a component for every gr.update()/gr.skip() output:

    - per input source: ONE fast event returning the analysis (state), the prediction, the model input and
      per-tab "draw" tokens (gr.State, free to return); the open tab's token changes, and its .change event
      draws that tab's views (a second event with only that tab's outputs);
    - prompt and column visibility follow a `view_status` state's .change, i.e. only when they flip;
    - selecting a tab (or another digit capsule) changes that tab's token when its views are stale.
    """
    import itertools

    listeners = ui._listeners
    always = [ln for ln in listeners if ln.group is None]  # tab functions without a tab of their own
    always_inputs = [c for ln in always for c in ln.inputs]
    always_outputs = [c for ln in always for c in ln.outputs]
    n_groups = len(ui._groups)
    counter = itertools.count(1)
    rendered = gr.State({})  # per session: {group: (analysis, digit class)} last drawn by that tab's views
    view_status = gr.State((False, ""))  # (has input, prompt text): its change shows / hides prompt and views
    tokens = [gr.State(0) for _ in range(n_groups)]  # per tab: a new value draws its views
    ui._draw_tokens = tokens

    def draw_tokens(active, fresh: bool) -> list:
        """A new token for the open tab (when `fresh`), gr.skip() (no change, no event) for the others."""
        active = 0 if active is None else int(active)
        return [next(counter) if (fresh and g == active) else gr.skip() for g in range(n_groups)]

    head_outputs = [ui.state, view_status, ui.selected_class, ui.prediction, ui.model_input, *tokens]

    def outputs_for(analysis, message, always_values, active) -> list:
        if analysis is None:
            text = PROMPT if message in ("", BLANK_MESSAGE) else f"### Nothing to show\n{message}"
            if ui.model is None:
                text = NO_CHECKPOINT_HINT.format(error=ui.model_error or "")
            return [None, (False, text), gr.skip(), "", None, *draw_tokens(active, False),
                    *[gr.skip()] * len(always_outputs)]  # fmt: skip
        k = analysis.digit
        pred = f"## Prediction: **{k}**\ndigit-capsule length {float(analysis.lengths[k]):.3f}"
        if analysis.note:
            pred += f"\n\n{analysis.note}"
        return [analysis, (True, ""), k, pred, views.model_input_image(analysis, scale=1),
                *draw_tokens(active, True), *_run(always, analysis, k, always_values)]  # fmt: skip

    for triggers, fn, inputs, api_name, source, select in ui._sources:
        n_in = len(inputs)

        def handle(call, args, _n, _src):
            try:
                raw = call()
            except Exception:
                log.error("input source failed:\n%s", traceback.format_exc())
                raw = None
            rest = list(args[_n:])
            rest += [None] * (1 + len(always_inputs) - len(rest))  # API callers leave out the view inputs
            analysis, message = new_analysis(ui.model, raw, _src)
            return outputs_for(analysis, message, rest[1:], rest[0])

        if select:
            def handler(evt: gr.SelectData, *args, _fn=fn, _n=n_in, _src=source):
                return handle(lambda: _fn(evt, *args[:_n]), args, _n, _src)
        else:
            def handler(*args, _fn=fn, _n=n_in, _src=source):
                return handle(lambda: _fn(*args[:_n]), args, _n, _src)

        gr.on(
            triggers, handler, [*inputs, ui.active_tab, *always_inputs], head_outputs + always_outputs,
            api_visibility="private", trigger_mode="always_last", show_progress="minimal",
        )
        if api_name:  # the same handler for API clients: only the source's inputs
            gr.Button(visible=False).click(
                handler, [*inputs, ui.active_tab], head_outputs + always_outputs,
                api_name=api_name, api_visibility="undocumented",
            )

    n_cols = len(ui._columns)

    def show(status):
        has_input, text = status if status else (False, "")
        prompt = gr.update(visible=False) if has_input else gr.update(value=text or PROMPT, visible=True)
        return [prompt, *[gr.update(visible=bool(has_input))] * n_cols]

    view_status.change(show, view_status, [ui.prompt, *ui._columns], api_visibility="private", show_progress="hidden")

    # Each tab draws its views when its token changes (a new input while it is open, or selected while stale).
    for g, group_tabs in enumerate(ui._groups):
        g_listeners = [ln for ln in listeners if ln.group == g]
        g_inputs = [c for ln in g_listeners for c in ln.inputs]
        g_outputs = [c for ln in g_listeners for c in ln.outputs]
        tab_id = getattr(group_tabs[0], "id", None) or g

        if g_outputs:
            def draw(analysis, k, drawn, *values, _g=g, _lns=g_listeners, _n=len(g_outputs)):
                if analysis is None:
                    return [gr.skip()] * (1 + _n)
                k = analysis.digit if k is None else int(k)
                return [{**(drawn or {}), _g: (analysis, k)}, *_run(_lns, analysis, k, values)]

            tokens[g].change(
                draw, [ui.state, ui.selected_class, rendered, *g_inputs], [rendered, *g_outputs],
                api_name=f"views_{tab_id}", api_visibility="undocumented", trigger_mode="always_last",
                show_progress="minimal",
            )

        def on_select(analysis, k, drawn, _g=g, _has=bool(g_outputs)):
            drawn = drawn or {}
            stale = _has and analysis is not None and k is not None and not (
                _g in drawn and drawn[_g][0] is analysis and drawn[_g][1] == int(k))
            return [_g, next(counter) if stale else gr.skip()]

        for tab in group_tabs:
            tab.select(on_select, [ui.state, ui.selected_class, rendered], [ui.active_tab, tokens[g]],
                       api_visibility="private", show_progress="hidden")  # fmt: skip

    def reselect(analysis: views.Analysis | None, k, active, *values):
        if analysis is None or k is None:
            return [*draw_tokens(active, False), *[gr.skip()] * len(always_outputs)]
        return [*draw_tokens(active, True), *_run(always, analysis, int(k), values)]

    ui.selected_class.input(
        reselect, [ui.state, ui.selected_class, ui.active_tab, *always_inputs], [*tokens, *always_outputs],
        api_visibility="private", trigger_mode="always_last", show_progress="hidden",
    )


def _identity(value):
    return value


def build_demo(
    checkpoint: str | os.PathLike | None = None,
    *,
    model: CapsNet | None = None,
    tabs: Sequence[Callable[[ExplorerUI], None]] | None = None,
    input_tabs: Sequence[Callable[[ExplorerUI], None]] | None = None,
    data_dir: str | os.PathLike | None = None,
    load_example: bool = True,
    torch_threads: int | None = None,
    concurrency_limit: int = 4,
) -> gr.Blocks:
    """The explorer as a gr.Blocks (queue enabled). Starts even without a checkpoint, showing how to get one.

    `model` overrides loading `checkpoint` (default: checkpoints/capsnet.safetensors or $CAPSNET_CHECKPOINT).
    `tabs` are the view tabs (default DEFAULT_TABS), `input_tabs` extra tabs beside Draw / Upload (default
    DEFAULT_INPUT_TABS: the examples). `data_dir` is a folder with MNIST (test digits in the examples; None: only
    the built-in synthetic examples, plus a download button). `load_example` analyses a synthetic example when
    the page opens, so every view has something to show before anything is drawn.
    Launch it with `demo.launch(**LAUNCH_OPTIONS)` for the theme and CSS.
    """
    from .examples import MnistExamples

    if tabs is None:
        tabs = DEFAULT_TABS
    if input_tabs is None:
        input_tabs = DEFAULT_INPUT_TABS
    configure_torch(torch_threads)
    model_error = None
    if model is None:
        model, model_error = load_model(checkpoint)
    if model is not None:
        model.eval()
    card = load_model_card(checkpoint)

    with gr.Blocks(title=TITLE, delete_cache=cache_policy()) as demo:
        gr.Markdown(f"# {TITLE}", elem_id="explorer-title")
        gr.Markdown(INTRO)
        state = gr.State(None)
        ui = ExplorerUI(model, model_error, state, None, active_tab=gr.State(0), card=card,
                        data_dir=Path(data_dir) if data_dir is not None else None,
                        mnist=MnistExamples(data_dir), demo=demo, load_example=load_example)  # fmt: skip
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                with gr.Tabs(elem_id="input-tabs"):
                    with gr.Tab("Draw", id="draw"):
                        sketch = gr.Sketchpad(
                            label="Draw a digit (mouse or touch)",
                            type="numpy",
                            image_mode="RGBA",
                            canvas_size=(CANVAS, CANVAS),
                            fixed_canvas=True,
                            brush=gr.Brush(default_size=BRUSH_RADIUS, colors=["#000000"], color_mode="fixed"),
                            layers=False,
                            transforms=(),
                            elem_id="sketchpad",
                        )
                        clear = gr.Button("Clear canvas", elem_id="clear-canvas", size="sm")
                    with gr.Tab("Upload", id="upload"):
                        upload = GuardedImage(  # unreadable / oversized files become a message, not an error
                            label="Upload an image of a digit (any size, light or dark background)",
                            type="pil", image_mode=None, sources=["upload", "clipboard"], elem_id="upload",
                        )
                    for input_tab in input_tabs:
                        input_tab(ui)
                prediction = gr.Markdown("", elem_id="prediction")
                model_input = gr.Image(
                    label="What the model sees (28x28, centred like MNIST)", interactive=False, format="png",
                    height=300, elem_classes=["model-view"], elem_id="model-input", buttons=[],
                )
            with gr.Column(scale=3, min_width=420):
                prompt = gr.Markdown(
                    PROMPT if model is not None else NO_CHECKPOINT_HINT.format(error=model_error or ""),
                    elem_id="prompt",
                )
                with gr.Column(visible=False) as selector_column:
                    selected = gr.Radio(
                        CLASS_CHOICES, value=None, label="Digit capsule to inspect (defaults to the prediction)",
                        elem_id="selected-class",
                    )
                ui.selected_class, ui.prompt, ui.prediction, ui.model_input = selected, prompt, prediction, model_input
                ui._columns.append(selector_column)
                with gr.Tabs(elem_id="view-tabs") as view_tabs:
                    ui.tabs = view_tabs
                    for tab in tabs:
                        before = set(map(id, view_tabs.children))
                        ui._group = len(ui._groups)
                        tab(ui)
                        made = [t for t in view_tabs.children if id(t) not in before and isinstance(t, gr.Tab)]
                        if made:
                            ui._groups.append(made)
                        else:  # no tab of its own: its listeners run with every input
                            for ln in ui._listeners:
                                if ln.group == ui._group:
                                    ln.group = None
                        ui._group = None

        ui.add_input([sketch.change], _identity, [sketch], api_name="analyse_sketch", source="sketch")
        ui.add_input([upload.change], _identity, [upload], api_name="analyse_upload", source="upload")
        _wire(ui)
        clear.click(lambda: None, None, sketch, api_visibility="private", show_progress="hidden")
        demo.load(None, None, None, js=SELECT_BRUSH_JS)

        # The public API: image in, JSON out; independent of the UI's state.
        api_image = GuardedImage(type="pil", image_mode=None, visible=False)
        api_json = gr.JSON(visible=False)

        def predict_digit(image):
            """Classify an image of a digit (any size or mode, dark-on-light or light-on-dark)."""
            return predict(model, image, model_error)

        api_image.upload(  # never fires from the UI (the component is hidden); the event carries the endpoint
            predict_digit, api_image, api_json, api_name="predict",
            api_description="Classify an image of a digit: returns {digit, lengths (10 capsule lengths), confidence, pose (16-D), error}.",
        )
    demo.queue(default_concurrency_limit=concurrency_limit, max_size=64)
    demo.explorer = ui  # for tests and extensions
    return demo


# The issue-5 tabs live in their own modules (they import this one, so they are imported last).
from .tabs_examples import examples_tab  # noqa: E402
from .tabs_model_card import model_card_tab  # noqa: E402
from .tabs_routing import routing_tab  # noqa: E402
from .tabs_transforms import transforms_tab  # noqa: E402

DEFAULT_TABS: tuple[Callable[[ExplorerUI], None], ...] = (*CORE_TABS, routing_tab, transforms_tab, model_card_tab)
DEFAULT_INPUT_TABS: tuple[Callable[[ExplorerUI], None], ...] = (examples_tab,)

__all__ = [
    "CORE_TABS",
    "DEFAULT_INPUT_TABS",
    "DEFAULT_TABS",
    "Labelled",
    "ExplorerUI",
    "LAUNCH_OPTIONS",
    "build_demo",
    "capsules_tab",
    "configure_torch",
    "load_model",
    "new_analysis",
    "perturbation_tab",
    "pose_tab",
    "predict",
]
