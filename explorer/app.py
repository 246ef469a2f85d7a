"""The CapsNet Explorer page: `build_demo()` lays out the inputs, the digit-capsule selector and the view tabs.

Where things live (the data flows down this list; imports point up it, never down):

- `inputs/`: raw drawing / upload / example -> the model's 28x28 input (preprocess, upload limits,
  built-in and MNIST examples, affine transforms).
- `views/`: pure functions (no Gradio) from an `Analysis` / CapsNetOutput to figures, images and JSON:
  `capsules` (the `Analysis` of one forward pass; lengths, pose decoding, perturbations), `couplings` and
  `routing` (routing inspector), `capsule_map` (the clickable coupling map), `model_card`.
- `session.py`: per browser session: `new_analysis`, `Labelled`, `predict`, the tab protocol (`ExplorerUI`:
  `view_tab` -> `ViewTab.on_analysis`, `on_analysis`, `analysis_column`, `add_input`), `_safe`; plus model
  loading and serving setup.
- `events.py`: `wire(ui)`, the Gradio events that run one analysis per input and draw the open tab lazily.
- `tabs/`: one module per tab, Gradio components and events only (capsules, pose, perturbations, routing,
  transforms, model_card; `examples` is an input tab).
- `static/`: the page's CSS and JS, read here at import time into `LAUNCH_OPTIONS` and `demo.load(js=...)`.
- this module: page layout, the default tabs and launch options; `__main__.py` is the CLI, `serving.py`
  runs a demo on a free port for tests and benchmarks.
- `limits.py` (server limits, clean stop) and `inputs/guard.py` (input checks) reach Gradio's internals only
  through `gradio_compat.py`, which checks the installed Gradio release at startup.

`build_demo(tabs=..., input_tabs=...)` takes the view-tab and input-tab functions; the defaults are
`DEFAULT_TABS` and `DEFAULT_INPUT_TABS`.
"""
from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any, Callable, Sequence

import gradio as gr

from capsnet import CapsNet
from capsnet.atlas import load_atlas
from capsnet.checkpoint import load_model_card

from .events import wire
from .gradio_compat import (check_gradio_version, keep_event_request, set_queue_poll, skip_absent_matplotlib,
                            with_page_dom, write_images_atomically)
from .limits import QUEUE_MAX, QUEUE_POLL_S, event_concurrency, harden_server
from .inputs.examples import MnistExamples
from .inputs.guard import guard_inputs
from .inputs.sketch import canvas_template, sketch_input
from .inputs.upload import MAX_FILE_SIZE, GuardedImage
from .language import I18N, language_switch, translate_page, ui_text
from .session import NO_CHECKPOINT_HINT, PROMPT, ExplorerUI, cache_policy, configure_torch, load_cnn, load_model, predict
from .tabs.attack import attack_tab
from .tabs.capsules import capsules_tab
from .tabs.examples import examples_tab
from .tabs.export import export_controls, wire_export
from .tabs.share import share_controls, wire_share
from .tabs.atlas import atlas_tab
from .tabs.model_card import model_card_tab
from .tabs.perturbations import perturbation_tab
from .tabs.pose import pose_tab
from .tabs.routing import routing_tab
from .tabs.transforms import transforms_tab
from .views.capsules import NUM_CLASSES

STATIC = Path(__file__).parent / "static"

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
CLASS_CHOICES = [(str(k), k) for k in range(NUM_CLASSES)]
CSS = (STATIC / "explorer.css").read_text(encoding="utf-8")
# The drawing canvas: one change event per stroke, undo and clear, with the canvas as a PNG data URL.
CANVAS_JS = (STATIC / "canvas.js").read_text(encoding="utf-8")
# The plots' scripts run when Gradio changes a plot (its .change js); this waits for plotly to have drawn it.
WHEN_PLOT_JS = (STATIC / "when_plot.js").read_text(encoding="utf-8")
ROUTING_LINKS_JS = with_page_dom((STATIC / "routing_links.js").read_text(encoding="utf-8"))
# A click on a pose dimension in the Transforms tab's trajectories opens the Pose tab at its slider.
POSE_LINK_JS = with_page_dom((STATIC / "pose_link.js").read_text(encoding="utf-8"))
# Shows the analysis columns while the prompt is empty, the prompt otherwise: in the page, no server event.
PROMPT_JS = (STATIC / "prompt.js").read_text(encoding="utf-8")
# On a phone the trajectories' two panels are stacked instead of side by side.
TRAJECTORIES_NARROW_JS = with_page_dom((STATIC / "trajectories_narrow.js").read_text(encoding="utf-8"))
# ?view= (one view, for an iframe) and share links' ?in=&k=&tab=; LINK_VIEWS: links_js.
LINKS_JS = with_page_dom((STATIC / "links.js").read_text(encoding="utf-8"))
# Names the images Gradio shows inside unnamed buttons (axe-core's button-name), after each image change and tab.
A11Y_JS = with_page_dom((STATIC / "a11y.js").read_text(encoding="utf-8"))
NAME_IMAGES_JS = "() => window.capsnetNameImages?.()"
# An SVG download beside each plotly figure, after each plot change and tab.
FIGURE_EXPORT_JS = with_page_dom((STATIC / "figure_export.js").read_text(encoding="utf-8"))
SVG_BUTTONS_JS = "() => window.capsnetSvgButtons?.()"
# Gradio's Soft theme in orange, with text dark enough for WCAG AA contrast (4.5:1) where Soft puts orange-500 text
# on orange-100 labels, white on orange-500 buttons and grey-400 hints (tests/test_accessibility.py, axe-core).
THEME = gr.themes.Soft(primary_hue="orange").set(
    block_label_text_color="*primary_800", block_title_text_color="*primary_800", body_text_color_subdued="*neutral_600",
    color_accent="*primary_700", checkbox_label_background_fill_selected="*primary_700",
    button_primary_background_fill="*primary_700", button_primary_background_fill_hover="*primary_600",
    button_primary_border_color="*primary_700", button_primary_border_color_hover="*primary_600",
)
# max_file_size: Gradio's upload route answers 413 before anything is decoded (see docs/robustness.md).
LAUNCH_OPTIONS: dict[str, Any] = {
    "theme": THEME, "css": CSS, "max_file_size": MAX_FILE_SIZE,
    "ssr_mode": False,  # client-side rendering, as the tests run it (Spaces may set GRADIO_SSR_MODE=True)
    "i18n": I18N,  # the fixed texts' translations (explorer/language.py)
}

CORE_TABS: tuple[Callable[[ExplorerUI], None], ...] = (capsules_tab, pose_tab, perturbation_tab)
DEFAULT_TABS: tuple[Callable[[ExplorerUI], None], ...] = (*CORE_TABS, routing_tab, transforms_tab, attack_tab,
                                                           atlas_tab, model_card_tab)
DEFAULT_INPUT_TABS: tuple[Callable[[ExplorerUI], None], ...] = (examples_tab,)


def _identity(value):
    return value


_UIS: "weakref.WeakKeyDictionary[gr.Blocks, ExplorerUI]" = weakref.WeakKeyDictionary()


def explorer_ui(demo: gr.Blocks) -> ExplorerUI:
    """The ExplorerUI a demo was built with (its model, tabs, temporary folder): for `serve`, tests and
    extensions. Kept here, not as an attribute on gr.Blocks."""
    return _UIS[demo]


def input_column(ui: ExplorerUI, input_tabs: Sequence[Callable[[ExplorerUI], None]]) -> tuple:
    """The left column: Draw, Upload and the extra input tabs, then the prediction and what the model sees.
    Returns (canvas, upload) for their input events, the export and the share controls (tabs/export.py,
    tabs/share.py)."""
    with gr.Tabs(elem_id="input-tabs"):
        with gr.Tab("Draw", id="draw"):
            sketch = gr.HTML("", html_template=canvas_template(), js_on_load=CANVAS_JS,
                             elem_id="sketchpad", apply_default_css=False)  # fmt: skip
            sketch.carries_image = True  # its events run in the image lanes (limits.limit_image_events)
        with gr.Tab("Upload", id="upload"):
            upload = GuardedImage(  # unreadable / oversized files become a message, not an error
                label="Upload an image of a digit (any size, light or dark background)",
                type="pil", image_mode=None, sources=["upload", "clipboard"], elem_id="upload",
            )
        for input_tab in input_tabs:
            input_tab(ui)
    ui.prediction = gr.Markdown("", elem_id="prediction")
    ui.model_input = gr.Image(
        label="What the model sees (28x28, centred like MNIST)", interactive=False, format="png",
        height=300, elem_classes=["model-view"], elem_id="model-input", buttons=[],
    )
    return sketch, upload, export_controls(), share_controls()


def view_column(ui: ExplorerUI, tabs: Sequence[Callable[[ExplorerUI], None]]) -> None:
    """The right column: the prompt (shown while there is no input), the digit-capsule choice and the view tabs."""
    ui.prompt = gr.Markdown(
        PROMPT if ui.model is not None else ui_text(NO_CHECKPOINT_HINT, error=ui.model_error or ""), elem_id="prompt"
    )
    ui.prompt.change(None, ui.prompt, None, js=PROMPT_JS)  # the input events set its text
    with ui.analysis_column():
        ui.selected_class = gr.Radio(
            CLASS_CHOICES, value=None, label="Digit capsule to inspect (defaults to the prediction)",
            elem_id="selected-class",
        )
    with gr.Tabs(elem_id="view-tabs", overflow_behavior="wrap") as ui.tabs:  # every tab in reach on a phone
        for tab in tabs:
            tab(ui)


def links_js(ui: ExplorerUI) -> str:
    """static/links.js with the views a link can name (`?view=` / `&tab=<tab id>`: each view tab's id and elem_id)."""
    import json

    views = {tab.id: tab.elem_id for tab in ui.view_tabs if tab.id is not None and tab.elem_id}
    return LINKS_JS.replace("LINK_VIEWS", json.dumps(views))


def page_hooks(demo: gr.Blocks, ui: ExplorerUI) -> None:
    """In the page, no server event: every shown gr.Image and every view tab runs static/a11y.js's naming, every
    gr.Plot and every view tab static/figure_export.js's SVG buttons."""
    for block in list(demo.blocks.values()):
        if isinstance(block, gr.Image) and block.visible:
            block.change(None, None, None, js=NAME_IMAGES_JS)
        if isinstance(block, gr.Plot):
            block.change(None, None, None, js=SVG_BUTTONS_JS)
    for tab in ui.view_tabs:
        tab.select(None, None, None, js=NAME_IMAGES_JS)
        tab.select(None, None, None, js=SVG_BUTTONS_JS)


def predict_api(model: CapsNet | None, model_error: str | None, card: dict | None = None) -> None:
    """The public `predict` endpoint: image in, JSON out; independent of the UI's state."""
    api_image = GuardedImage(type="pil", image_mode=None, visible=False)
    api_json = gr.JSON(visible=False)

    def predict_digit(image):
        """Classify an image of a digit (any size or mode, dark-on-light or light-on-dark)."""
        return predict(model, image, model_error, card)

    api_image.upload(  # never fires from the UI (the component is hidden); the event carries the endpoint
        predict_digit, api_image, api_json, api_name="predict",
        api_description="Classify an image of a digit: returns {digit, lengths (10 capsule lengths), confidence, pose (16-D), reconstruction_distance, reconstruction_percentile, typical, error}.",
    )


def build_demo(
    checkpoint: str | os.PathLike | None = None,
    *,
    model: CapsNet | None = None,
    tabs: Sequence[Callable[[ExplorerUI], None]] | None = None,
    input_tabs: Sequence[Callable[[ExplorerUI], None]] | None = None,
    data_dir: str | os.PathLike | None = None,
    load_example: bool = True,
    allow_download: bool = False,
    torch_threads: int | None = None,
    concurrency_limit: int | None = None,
) -> gr.Blocks:
    """The explorer as a gr.Blocks (queue enabled). Starts even without a checkpoint, showing how to get one.

    `model` overrides loading `checkpoint` (default: checkpoints/capsnet.safetensors or $CAPSNET_CHECKPOINT).
    `tabs` are the view tabs (default DEFAULT_TABS), `input_tabs` extra tabs beside Draw / Upload (default
    DEFAULT_INPUT_TABS: the examples). `data_dir` is a folder with MNIST (test digits in the examples; None: only
    the built-in synthetic examples). `load_example` analyses a synthetic example when
    the page opens, so every view has something to show before anything is drawn. `allow_download` adds the
    Examples tab's *Download MNIST* button (`python -m explorer --allow-download`, for local use only).
    Serve it with `limits.serve(demo, **LAUNCH_OPTIONS)` (blocking) or `serving.served(demo, **LAUNCH_OPTIONS)`:
    they add the body limit and the short error answers to the theme and CSS (`limits.launch_with_limits`).
    """
    check_gradio_version()  # the limits rest on Gradio internals checked for one release (gradio_compat.py)
    write_images_atomically()  # no truncated image for a visitor fetching one while it is returned again
    skip_absent_matplotlib()  # Gradio imports it around every event; absent, each import searched sys.path
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
    atlas = load_atlas(checkpoint)  # (difference maps, digits' poses) beside the checkpoint, or Nones

    cache = cache_policy()
    with gr.Blocks(title=TITLE, delete_cache=cache) as demo:
        with gr.Row(elem_id="title-row"):
            gr.Markdown(f"# {TITLE}", elem_id="explorer-title")
            language = language_switch()
        gr.Markdown(INTRO, elem_id="explorer-intro")
        gr.HTML("", elem_id="embed-note", padding=False)  # static/links.js: a link naming no view says so here
        ui = ExplorerUI(model, model_error, gr.State(None), None, active_tab=gr.State(0), card=card,
                        atlas_maps=atlas[0], atlas_poses=atlas[1], cnn=load_cnn() if model is not None else None,
                        data_dir=Path(data_dir) if data_dir is not None else None,
                        mnist=MnistExamples(data_dir), demo=demo, load_example=load_example,
                        allow_download=allow_download)  # fmt: skip
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                sketch, upload, export, share = input_column(ui, input_tabs)
            with gr.Column(scale=3, min_width=420):
                view_column(ui, tabs)
        ui.language = language
        ui.add_input([sketch.change], sketch_input, [sketch], api_name="analyse_sketch", source="sketch")
        ui.add_input([upload.change], _identity, [upload], api_name="analyse_upload", source="upload")
        wire_share(ui, *share)  # a share link's input: one more input source
        wire(ui)
        wire_export(ui, *export)
        page_js = (WHEN_PLOT_JS, ROUTING_LINKS_JS, POSE_LINK_JS,
                   TRAJECTORIES_NARROW_JS, A11Y_JS, FIGURE_EXPORT_JS, links_js(ui))  # fmt: skip
        page_hooks(demo, ui)
        for js in page_js:
            demo.load(None, None, None, js=js)
        predict_api(model, model_error, card)
    demo.queue(default_concurrency_limit=concurrency_limit or event_concurrency(), max_size=QUEUE_MAX)
    set_queue_poll(demo, QUEUE_POLL_S)
    guard_inputs(demo)  # every input of every event: size from the header before decoding, one-sentence refusals
    keep_event_request(demo)  # the visitor's language known while inputs are checked (their refusals)
    translate_page(demo, ui.language)  # the fixed texts in the visitor's language (gr.I18n)
    harden_server(demo)  # fair queue, per-visitor caps, private events not callable by name
    _UIS[demo] = ui
    return demo


__all__ = [
    "CORE_TABS",
    "DEFAULT_INPUT_TABS",
    "DEFAULT_TABS",
    "LAUNCH_OPTIONS",
    "build_demo",
    "explorer_ui",
]
