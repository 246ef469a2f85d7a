"""The Examples input tab: built-in synthetic digits always; MNIST test digits when a copy is available.

Every example is an input source (`ui.add_input`), so it becomes the analysed input of every view, with a note
beside the prediction (e.g. "MNIST test #8: true label 5"). Synthetic examples are drawn by code
(`inputs.examples.synthetic_examples`, no MNIST pixels); one is analysed when the page opens.
Whether MNIST is there is decided at startup (`--data-dir`); a visitor can make the server download it only
when `python -m explorer --allow-download` was given (never on a hosted page); otherwise the tab says how.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from capsnet.data import default_data_dir

from ..inputs.examples import MnistExamples, synthetic_examples
from ..session import Labelled
from ..language import ui_built
from ..text import tr
from ..views import capsules

log = logging.getLogger("explorer")

STARTUP_EXAMPLE = 7  # "synthetic 7 (upright)": analysed when the page opens
THUMB_SCALE = 2  # gallery thumbnails: 56 px, scaled up crisply by CSS
# Without --allow-download a visitor cannot make the server download anything: this says how to get MNIST.
GET_MNIST = ("To see MNIST test digits, run the explorer locally with `python -m explorer --data-dir FOLDER` (a folder "
             "with the four MNIST .gz files) or `python -m explorer --allow-download`.")
_download_lock = threading.Lock()


# ---------------------------------------------------------------- plain functions (tested without Gradio)


def synthetic_input(index: Any):
    """Labelled synthetic example number `index` (0..19), or None for an invalid index."""
    ex = synthetic_examples()
    try:
        i = int(index)
    except (TypeError, ValueError):
        return None
    if not 0 <= i < len(ex):
        return None
    name, label, image = ex[i]
    return Labelled(image, tr("Example: **{name}**, drawn by code (not from MNIST); true label {label}.", name=name,
                             label=label))


def gallery_items() -> list[np.ndarray]:
    """The synthetic examples as thumbnails, in synthetic_examples() order (the digit is the caption enough)."""
    return [capsules.upscale(img, THUMB_SCALE) for _, _, img in synthetic_examples()]


def mnist_note(index: int, label: int, predicted: int | None = None) -> str:
    if predicted is not None:
        return tr("MNIST test digit **#{index}**: true label **{label}** (the model card lists it as misclassified, "
                  "predicted {predicted}).", index=index, label=label, predicted=predicted)
    return tr("MNIST test digit **#{index}**: true label **{label}**.", index=index, label=label)


def mnist_input(mnist: MnistExamples, index: Any, predicted: int | None = None):
    """Labelled MNIST test digit `index` (None if MNIST is unavailable or the index is invalid)."""
    try:
        i = int(index)
        image, label = mnist.get(i)
    except Exception as e:  # unavailable, bad index: the input handler shows the prompt
        log.info("MNIST example %r unavailable: %s", index, e)
        return None
    return Labelled(image, mnist_note(i, label, predicted))


def random_mnist_input(mnist: MnistExamples, rng: np.random.Generator | int | None = None):
    try:
        i, image, label = mnist.random(rng)
    except Exception as e:
        log.info("random MNIST example unavailable: %s", e)
        return None
    return Labelled(image, mnist_note(i, label))


def misclassified_choices(mnist: MnistExamples, card: dict | None) -> list[tuple[str, int]]:
    """Dropdown choices [(label, test index)] for the test digits the model card lists as misclassified."""
    if not card or mnist is None or mnist.unavailable_reason() is not None:
        return []
    try:
        rows = mnist.misclassified(card)
    except Exception as e:
        log.warning("misclassified list unavailable: %s", e)
        return []
    out = []
    for i, true, pred in rows:
        t = "?" if true is None else str(true)
        p = "?" if pred is None else str(pred)
        out.append((f"#{i}: true {t}, predicted {p}", int(i)))
    return out


def mnist_status(mnist: MnistExamples, card: dict | None) -> str:
    reason = mnist.unavailable_reason() if mnist is not None else "No MNIST folder configured."
    if reason is None:
        n = len((card or {}).get("misclassified") or [])
        extra = (tr(" The model card lists {n} misclassified test digits.", n=n) if card
                 else tr(" (No model card: no list of misclassified digits.)"))  # fmt: skip
        return tr("MNIST test set: `{folder}`.", folder=mnist.data_dir) + extra
    return tr("**MNIST test digits unavailable.** {reason}", reason=tr(reason))


def download_mnist(ui) -> str | None:
    """Download MNIST into ui.data_dir (or $CAPSNET_DATA, or ./data) and use it: None on success, else the reason.

    Only with `python -m explorer --allow-download`, meant for one local user: it rebinds ui.mnist and ui.data_dir,
    which every session shares, under a lock so that two clicks download once and readers see the old or the new."""
    target = ui.data_dir or Path(default_data_dir())
    with _download_lock:
        m = MnistExamples(target, download=True)
        reason = m.try_load()
        if reason is not None:
            return f"Download failed: {reason} (no network here? Put the four MNIST .gz files in a folder and start " \
                   f"the explorer with `--data-dir FOLDER`.)"
        ui.mnist, ui.data_dir = MnistExamples(target), Path(target)
        ui.mnist._split = m._split  # already loaded
    return None


# ---------------------------------------------------------------- the tab


def examples_tab(ui) -> None:
    mnist_ok = ui.mnist is not None and ui.mnist.unavailable_reason() is None
    choices = misclassified_choices(ui.mnist, ui.card) if mnist_ok else []
    status = ui_built(lambda: mnist_status(ui.mnist, ui.card) + ("" if mnist_ok or ui.allow_download
                                                                  else "\n\n" + tr(GET_MNIST)))  # fmt: skip
    with gr.Tab("Examples", id="examples", elem_id="examples-tab"):
        gallery = gr.Gallery(
            value=gallery_items(), label="Built-in examples (drawn by code, not MNIST): click one", columns=4,
            height="auto", allow_preview=False, object_fit="contain", elem_id="synthetic-gallery",
            elem_classes=["example-gallery"], buttons=[],
        )
        with gr.Group():
            mnist_md = gr.Markdown(status, elem_id="mnist-status")
            with gr.Row(visible=mnist_ok) as mnist_row:
                random_btn = gr.Button("Random test digit", elem_id="random-mnist", variant="secondary")
                wrong = gr.Dropdown(choices, value=None, label="Test digits the model gets wrong (model card)",
                                    elem_id="misclassified", scale=2)  # fmt: skip
            if ui.allow_download:
                download_btn = gr.Button("Download MNIST (needs network access)", visible=not mnist_ok, size="sm",
                                         elem_id="download-mnist")  # fmt: skip

    ui.add_input([gallery.select], lambda evt: synthetic_input(evt.index), [], source="example", select=True)
    ui.add_input([random_btn.click], lambda: random_mnist_input(ui.mnist), [], source="mnist")
    preds = {i: p for i, _, p in (ui.mnist.misclassified(ui.card) if choices else [])}
    ui.add_input([wrong.input], lambda i: mnist_input(ui.mnist, i, preds.get(i) if i is not None else None), [wrong],
                 source="mnist")  # fmt: skip
    if ui.load_example and ui.demo is not None:
        ui.add_input([ui.demo.load], lambda: synthetic_input(STARTUP_EXAMPLE), [], source="example")
    if ui.allow_download:
        _wire_download(ui, download_btn, [mnist_md, mnist_row, wrong, download_btn], preds)


def _wire_download(ui, button: gr.Button, outputs: list, preds: dict) -> None:
    """The button's click: download, then show the MNIST row (status, row, dropdown, button) or say why not."""

    def do_download():
        reason = download_mnist(ui)
        if reason is not None:
            return gr.update(value=f"**MNIST test digits unavailable.** {reason}"), gr.skip(), gr.skip(), gr.skip()
        new = misclassified_choices(ui.mnist, ui.card)
        preds.update({i: p for i, _, p in ui.mnist.misclassified(ui.card)})
        return (mnist_status(ui.mnist, ui.card), gr.update(visible=True), gr.update(choices=new),
                gr.update(visible=False))  # fmt: skip

    button.click(do_download, None, outputs, api_visibility="private", concurrency_limit=1)


__all__ = ["GET_MNIST", "download_mnist", "examples_tab", "gallery_items", "misclassified_choices", "mnist_input",
           "mnist_note", "mnist_status", "random_mnist_input", "synthetic_input"]
