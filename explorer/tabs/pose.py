"""The Pose tab: the selected digit capsule's 16-D pose as sliders, each named by what it does, and a 2-D pad.

The browser draws the reconstruction itself (static/pose_decoder.js runs the decoder on weights exported at
startup), so dragging makes no request; the server hears the values when a drag ends (`pose` endpoint) and
keeps drawing them if the browser cannot (then the page says so).
"""
from __future__ import annotations

import hashlib
import logging
import traceback
from pathlib import Path

import gradio as gr

from capsnet.atlas import PERCENTILES
from capsnet.checkpoint import save_tensors
from capsnet.export import export_decoder

from ..gradio_compat import event_payload, with_page_dom
from ..session import ExplorerUI, _safe
from ..text import LANGUAGES, speaking
from ..views import capsules
from ..views import pose as pose_views

log = logging.getLogger("explorer")

STATIC = Path(__file__).resolve().parent.parent / "static"
SLIDER_RANGE = 1.0  # digit-capsule poses have length <= 1, so every dimension lies in [-1, 1]
SLIDER_STEP = 0.01
POSE_DECIMALS = 3  # the sliders' values, and so what both decoders see
VIEW_TEMPLATE = (STATIC / "pose_view.html").read_text(encoding="utf-8")
DECODER_JS = with_page_dom((STATIC / "pose_decoder.js").read_text(encoding="utf-8"))


def publish_decoder(ui: ExplorerUI) -> tuple[str, str]:
    """Write the model's decoder weights to a content-hashed file and let Gradio serve it: (path, "") or
    ("", why not). The browser fetches it once through Gradio's file route."""
    if ui.model is None:
        return "", "no model is loaded"
    try:
        path = export_decoder(ui.model, ui.tmp_dir / "decoder")
        gr.set_static_paths([path])
        return str(path), ""
    except Exception as e:  # the page still works through the server
        log.error("could not export the decoder weights:\n%s", traceback.format_exc())
        return "", f"the decoder weights could not be exported ({type(e).__name__})"


def publish_atlas_poses(ui: ExplorerUI) -> str:
    """The poses of the atlas's test digits (10 x N x 16, float32) in a content-hashed file Gradio serves, for the
    2-D pad's scatter; "" when there are none. The page fetches it once, like the decoder's weights."""
    if ui.atlas_poses is None:
        return ""
    try:
        data = ui.atlas_poses.float().contiguous()
        digest = hashlib.sha1(data.numpy().tobytes()).hexdigest()[:16]
        path = ui.tmp_dir / f"atlas-poses-{digest}.safetensors"
        if not path.exists():
            save_tensors(path, {"poses": data})
        gr.set_static_paths([path])
        return str(path)
    except Exception:  # the pad works without its scatter
        log.error("could not export the atlas's poses:\n%s", traceback.format_exc())
        return ""


def pose_tab(ui: ExplorerUI) -> None:
    weights_path, weights_error = publish_decoder(ui)
    with ui.view_tab("Pose", id="pose", elem_id="pose-tab") as tab:  # static/pose_link.js opens it by this id
        with ui.analysis_column():
            model_view, recon, sliders, reset, keep = pose_controls(ui, weights_path, weights_error)
        # the switch's value, per session: the views read it without it becoming an input of their API
        kept = gr.State(False)
        ui.pose_edit = edit = gr.State(None)  # per session: (analysis, capsule, pose) the visitor set (share links)
    views = PoseViews(ui)
    tab.on_analysis(views.on_analysis, [model_view, recon, *sliders, edit], [kept])
    keep.input(_safe(views.keep_within, 3 + len(sliders)), [ui.state, ui.selected_class, keep, *sliders],
               [kept, recon, *sliders, edit], api_visibility="private", show_progress="hidden",
               trigger_mode="always_last")  # fmt: skip
    gr.on(
        [s.release for s in sliders], _safe(views.release, 2), [ui.state, ui.selected_class, *sliders],
        [recon, edit], api_name="pose", api_visibility="undocumented", trigger_mode="always_last",
        show_progress="hidden", queue=True,
    )
    # "multiple": with "always_last", Gradio 6.31 sends a queued custom event with the data of the first one;
    # the script keeps at most one pose_input in flight itself.
    recon.pose_input(views.from_browser, [ui.state], [recon, edit], api_visibility="private",
                     trigger_mode="multiple", show_progress="hidden")
    recon.pose_release(views.from_browser, [ui.state], [recon, edit], api_visibility="private",
                       trigger_mode="multiple", show_progress="hidden")
    reset.click(
        _safe(views.do_reset, 2 + len(sliders)), [ui.state, ui.selected_class], [recon, *sliders, edit],
        api_visibility="private", show_progress="hidden",
    )


def pad_labels(card: dict | None) -> dict | None:
    """The 2-D pad's axis names for every class, in each language ({code: 10 x 16}); None without labels."""
    if pose_views.dimension_labels(card) is None:
        return None
    labels = {}
    for code in LANGUAGES:
        with speaking(code):
            labels[code] = pose_views.all_slider_labels(card)
    return labels


def pose_controls(ui: ExplorerUI, weights_path: str, weights_error: str) -> tuple:
    """The tab's components: (model input image, the in-browser reconstruction, 16 sliders, reset button, the
    "keep within the data" switch)."""
    percentiles = pose_views.percentiles(ui.card)  # per class and dimension, capsnet.atlas.PERCENTILES; or None
    gr.Markdown(
        "The 16 sliders are the **pose** of the selected digit capsule, starting at its actual values; each "
        "is named by what one standard deviation of the data along it does to the digit, in units of how much "
        "that class's digits vary (measured over 100 test digits per class, see `python -m capsnet.atlas`). Your browser runs the decoder, so the reconstruction follows a "
        "drag frame by frame; the **2-D pad** moves two dimensions at once. Pick another capsule above to "
        "reconstruct the input *as that digit*."
    )
    with gr.Row():
        model_view = gr.Image(
            label="Model input (28x28)", interactive=False, format="png", height=300,
            elem_classes=["model-view"], buttons=[], scale=1,
        )
        recon = gr.HTML(
            pose_views.empty_payload(), html_template=VIEW_TEMPLATE, js_on_load=DECODER_JS,
            elem_id="reconstruction", scale=3, weights_path=weights_path, weights_error=weights_error,
            labels=pad_labels(ui.card),
            percentiles=percentiles, percentile_levels=list(PERCENTILES), digits_path=publish_atlas_poses(ui),
        )
    sliders = []
    with gr.Row():
        for col in range(4):
            with gr.Column(min_width=160):
                for dim in range(col * 4, col * 4 + 4):
                    sliders.append(gr.Slider(
                        -SLIDER_RANGE, SLIDER_RANGE, value=0.0, step=SLIDER_STEP, label=f"dim {dim}",
                        elem_id=f"pose-dim-{dim}", elem_classes=["pose-slider"],
                    ))  # fmt: skip
    with gr.Row():
        reset = gr.Button("Reset to the actual pose", variant="secondary", elem_id="reset-pose")
        keep = gr.Checkbox(False, label="Keep within the data: each slider spans the class's 1–99% range of test "
                           "digits (and this input's own value)", elem_id="pose-keep-data",
                           interactive=percentiles is not None)  # fmt: skip
    return model_view, recon, sliders, reset, keep


class PoseViews:
    """The tab's handlers: the pose of a new input or capsule, a released slider, the page's own pose events."""

    def __init__(self, ui: ExplorerUI):
        self.ui = ui
        self.labelled = pose_views.dimension_labels(ui.card) is not None

    def actual(self, a: capsules.Analysis, k: int) -> list[float]:
        return [round(float(v), POSE_DECIMALS) for v in a.pose(k)]

    def payload(self, a: capsules.Analysis, k: int, pose) -> dict:
        return pose_views.reconstruction_payload(capsules.decode_pose(self.ui.model, a, k, pose), pose, k)

    def slider_values(self, k: int, pose, keep=False, actual=None) -> list:
        """The sliders for capsule k at `pose`: named and ranged (the data's range around `actual` with `keep`)."""
        if not self.labelled:  # plain values: Gradio rebuilds a component for every gr.update
            return list(pose)
        names, infos = pose_views.slider_labels(self.ui.card, k), pose_views.slider_infos(self.ui.card, k)
        full = [(-SLIDER_RANGE, SLIDER_RANGE)] * len(pose)
        bounds = pose_views.data_bounds(self.ui.card, k, actual or pose, SLIDER_RANGE) if keep else full
        return [gr.update(value=min(max(v, lo), hi), label=names[d], info=infos[d] or None, minimum=lo, maximum=hi)
                for d, (v, (lo, hi)) in enumerate(zip(pose, bounds))]  # fmt: skip

    @staticmethod
    def adopted(p: dict) -> dict:
        """A payload whose pose the page takes over (new input, other capsule, reset); the page keeps its own
        values for every other answer, which may land after newer ones were set."""
        return {**p, "adopt": True}

    def on_analysis(self, a: capsules.Analysis, k: int, keep=False):
        """The capsule's own pose, or the pose a share link set for it (then also the session's edit)."""
        linked = a.edited_pose(k)
        pose = self.actual(a, k) if linked is None else [round(float(v), POSE_DECIMALS) for v in linked]
        return [capsules.model_input_image(a, scale=1), self.adopted(self.payload(a, k, pose)),
                *self.slider_values(k, pose, bool(keep)), None if linked is None else (a, k, pose)]  # fmt: skip

    def keep_within(self, a: capsules.Analysis | None, k, keep, *values):
        """The switch: every slider ranged over the data (or -1 ... 1 again), its value moved inside, and the page
        given the resulting pose."""
        k, pose = pose_views.clean_class(k), pose_views.clean_pose(values)
        if a is None or pose is None:
            return [bool(keep), *[gr.skip()] * (2 + capsules.POSE_DIM)]
        k = a.digit if k is None else k
        actual = self.actual(a, k)
        updates = self.slider_values(k, pose, bool(keep), actual)
        kept = [u["value"] if isinstance(u, dict) else u for u in updates]
        return [bool(keep), self.adopted(self.payload(a, k, kept)), *updates, (a, k, kept)]

    def release(self, a: capsules.Analysis | None, k, *pose):
        """The values at the end of a drag (also the `pose` endpoint): the server's reconstruction payload, and the
        session's edit."""
        pose = pose_views.clean_pose(pose)
        k = pose_views.clean_class(k)
        if a is None or k is None or pose is None:
            return [gr.skip(), gr.skip()]
        return [self.payload(a, k, pose), (a, k, list(pose))]

    def from_browser(self, a: capsules.Analysis | None, evt: gr.EventData):
        """{pose, cls} sent by the page (a value changing while the browser cannot decode, the end of a pad drag,
        a typed value) -> the server's image of it. Only the image: the page already shows these values, and
        the pad writes its two into the sliders itself, so an answer landing after newer values undoes nothing."""
        try:
            data = event_payload(evt)
            pose, k = pose_views.clean_pose(data.get("pose")), pose_views.clean_class(data.get("cls"))
            if a is None or k is None or pose is None:
                return [gr.skip(), gr.skip()]
            pose = [round(v, POSE_DECIMALS) for v in pose]
            return [self.payload(a, k, pose), (a, k, pose)]
        except Exception:
            log.error("pose event from the page failed:\n%s", traceback.format_exc())
            return [gr.skip(), gr.skip()]

    def do_reset(self, a: capsules.Analysis | None, k):
        if a is None or k is None:
            return [gr.skip()] * (2 + capsules.POSE_DIM)
        k = int(k)
        pose = self.actual(a, k)
        return [self.adopted(self.payload(a, k, pose)), *pose, None]
