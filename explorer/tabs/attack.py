"""The Attack tab and the `attack` endpoint: a targeted PGD attack (capsnet.adversarial) on the analysed input, against
the CapsNet and, beside it, against the CNN baseline, each adversarial put through the capsules' reconstruction check
(DARCCC: does the reconstruction from the winning capsule still look like the input?)."""
from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import torch

from capsnet.adversarial import MAX_EPS, targeted_pgd
from capsnet.baseline import probabilities

from ..gradio_compat import plot_value
from ..inputs.preprocess import BLANK_MESSAGE, preprocess
from ..inputs.share import Number, Whole
from ..inputs.upload import GuardedImage
from ..session import batch_threads
from ..views import attack as views
from ..views import capsules
from .values import finite_float

PAGE_MAX_STEPS = 100  # a web request's budget: about 25 ms per CapsNet step on a 2-core CPU
DEFAULT_EPS, DEFAULT_STEPS = 0.1, 20
QUESTION = (
    "**Can a few changed pixels fool the capsules, and would they notice?** A targeted attack (projected gradient "
    "descent) changes every pixel by at most ε to push the input towards a target digit, once against the CapsNet "
    "and once against the CNN baseline. Each adversarial then goes through the capsules' reconstruction check "
    "(Frosst, Sabour & Hinton 2018): if the reconstruction from the winning capsule is far from the image, the "
    "capsules do not recognise it as a typical digit. In each change, red is ink added and blue ink removed."
)


# ---------------------------------------------------------------- plain functions (tested without Gradio)


def parse_attack(target: Any, eps: Any, steps: Any) -> tuple[int, float, int]:
    """(target, eps, steps) from an API client or the page, or ValueError with one sentence."""
    t = finite_float(target)
    if t is None or t != int(t) or not 0 <= t <= 9:
        raise ValueError(f"Unknown target class {str(target)[:40]!r}: use a digit from 0 to 9.")
    e = finite_float(eps)
    if e is None or not 0 < e <= MAX_EPS:
        raise ValueError(f"Epsilon must be a number in (0, {MAX_EPS:g}], got {str(eps)[:40]!r}.")
    s = finite_float(steps)
    if s is None or s != int(s) or not 1 <= s <= PAGE_MAX_STEPS:
        raise ValueError(f"Steps must be a whole number from 1 to {PAGE_MAX_STEPS}, got {str(steps)[:40]!r}.")
    return int(t), float(e), int(s)


def _meter(model, x: torch.Tensor, check: dict | None) -> tuple[torch.Tensor, dict]:
    """(lengths (10,), the reconstruction check of x) from one CapsNet forward pass on x (1, 1, 28, 28)."""
    with torch.inference_mode():
        out = model(x)
    t = capsules.typicality(capsules.Analysis(x[0], out), check)
    flagged = None if t["typical"] is None else not t["typical"]
    return out.lengths[0], {"reconstruction_distance": t["reconstruction_distance"],
                            "reconstruction_percentile": t["reconstruction_percentile"], "flagged": flagged}  # fmt: skip


def _rounded(t: torch.Tensor, digits: int = 4) -> list:
    return np.asarray(t.detach().float().cpu(), np.float64).round(digits).tolist()


def run_attack(model, cnn, image: torch.Tensor, target: int, eps: float, steps: int, check: dict | None) -> dict:
    """The attack's answer for a (1, 28, 28) model input in [0, 1]: the CapsNet's part at the top level (input,
    adversarial, lengths before and after, predictions, L-inf, the reconstruction check) and the CNN's under "cnn"
    (None without one): its adversarial, softmax before and after, and the capsules' check of its adversarial."""
    x = image.float().reshape(1, 1, capsules.IMAGE_SIZE, capsules.IMAGE_SIZE).clone()  # a normal tensor: an analysis's image may be an inference one
    target_t = torch.tensor([target])
    with batch_threads():
        before, _ = _meter(model, x, check)
        adv = targeted_pgd(model, x, target_t, eps, steps)
        after, meter = _meter(model, adv, check)
        answer = {"input": _rounded(x[0, 0]), "adversarial": _rounded(adv[0, 0]), "target": target, "eps": eps,
                  "steps": steps, "lengths_before": _rounded(before), "lengths_after": _rounded(after),
                  "prediction_before": int(before.argmax()), "prediction_after": int(after.argmax()),
                  "linf": round(float((adv - x).abs().max()), 4), **meter, "cnn": None, "error": None}  # fmt: skip
        if cnn is not None:
            cnn_adv = targeted_pgd(cnn, x, target_t, eps, steps)
            p0, p1 = probabilities(cnn, torch.cat([x, cnn_adv]))
            answer["cnn"] = {"adversarial": _rounded(cnn_adv[0, 0]), "probabilities_before": _rounded(p0),
                             "probabilities_after": _rounded(p1), "prediction_before": int(p0.argmax()),
                             "prediction_after": int(p1.argmax()), "linf": round(float((cnn_adv - x).abs().max()), 4),
                             **_meter(model, cnn_adv, check)[1]}  # fmt: skip
    return answer


FIELDS = ("input", "adversarial", "lengths_before", "lengths_after", "linf", "reconstruction_percentile", "flagged")


def attack_api(model, image: Any, target: Any, eps: Any, steps: Any, model_error: str | None = None, cnn=None,
               card: dict | None = None) -> dict:  # fmt: skip
    """The `attack` endpoint: an image (any size; preprocessed as /predict does), a target digit, epsilon and steps;
    refusals come back as {"error": one sentence} with the other fields None, never raised."""
    if model is None:
        return capsules.no_model_answer(model_error, *FIELDS)
    try:
        t, e, s = parse_attack(target, eps, steps)
        pre = preprocess(image)
    except ValueError as err:
        return {**dict.fromkeys(FIELDS), "error": str(err)[:200]}
    if pre.blank:
        return {**dict.fromkeys(FIELDS), "error": pre.message or BLANK_MESSAGE}
    return run_attack(model, cnn, torch.as_tensor(pre.image, dtype=torch.float32), t, e, s,
                      (card or {}).get("reconstruction_check"))


# ---------------------------------------------------------------- the Gradio part


def page_outputs(answer: dict) -> list:
    """[CapsNet's adversarial, its perturbation, CNN's adversarial, its perturbation, summary, figure]."""
    x, eps, cnn = answer["input"], answer["eps"], answer["cnn"]
    imgs = [capsules.upscale(np.asarray(answer["adversarial"]), views.SCALE), views.perturbation_image(x, answer["adversarial"], eps)]
    imgs += [None, None] if cnn is None else [capsules.upscale(np.asarray(cnn["adversarial"]), views.SCALE),
                                              views.perturbation_image(x, cnn["adversarial"], eps)]  # fmt: skip
    return [*imgs, views.attack_markdown(answer), plot_value(views.attack_figure(answer))]


def attack_tab(ui) -> None:
    with ui.view_tab("Attack", id="attack") as tab:
        with ui.analysis_column():
            gr.Markdown(QUESTION, elem_id="attack-question")
            with gr.Row():
                target = gr.Dropdown([(str(d), d) for d in range(10)], value=None, label="target digit",
                                     elem_id="attack-target", scale=1, min_width=120)  # fmt: skip
                eps = gr.Slider(0.01, MAX_EPS, value=DEFAULT_EPS, step=0.01, label="ε: largest change of a pixel",
                                elem_id="attack-eps", scale=2)  # fmt: skip
                steps = gr.Slider(1, PAGE_MAX_STEPS, value=DEFAULT_STEPS, step=1, label="steps", elem_id="attack-steps",
                                  scale=2)  # fmt: skip
            run = gr.Button("Attack", variant="primary", elem_id="attack-run")
            images = []
            with gr.Row(equal_height=False):
                for key, label in (("capsnet", "CapsNet attack"), ("capsnet-delta", "its change"), ("cnn", "CNN attack"),
                                   ("cnn-delta", "its change")):  # fmt: skip
                    images.append(gr.Image(label=label, interactive=False, format="png", height=170, min_width=120,
                                           elem_classes=["model-view"], elem_id=f"attack-{key}", buttons=["download"]))  # fmt: skip
            summary = gr.Markdown(elem_id="attack-summary")
            plot = gr.Plot(show_label=False, elem_id="attack-lengths")
            attack_endpoint(ui)  # hidden components: inside the tab (gr.Tabs holds only tabs)
    outputs = [*images, summary, plot]

    def fresh(a: capsules.Analysis, k: int):
        """A new input: the runner-up capsule as the target, the last attack's results cleared."""
        return [int(np.argsort(a.lengths)[-2]), *[None] * 4, "", None]

    def attack(a: capsules.Analysis, k: int, t: Any, e: Any, s: Any):
        if ui.model is None:
            return [gr.skip()] * 5 + [None]
        try:
            t, e, s = parse_attack(t, e, s)
        except ValueError as err:
            return [None] * 4 + [str(err), None]
        return page_outputs(run_attack(ui.model, ui.cnn, a.image, t, e, s, (ui.card or {}).get("reconstruction_check")))

    tab.share(eps=(eps, Number("ε", 0.01, MAX_EPS)), steps=(steps, Whole("number of steps", 1, PAGE_MAX_STEPS)))
    tab.on_analysis(fresh, [target, *outputs])
    tab.on([run.click], attack, outputs, [target, eps, steps])


def attack_endpoint(ui) -> None:
    api = [GuardedImage(type="pil", image_mode=None, visible=False), gr.Number(visible=False),
           gr.Number(visible=False), gr.Number(visible=False)]  # fmt: skip
    api_json = gr.JSON(visible=False)

    def attack_digit(image, target, eps, steps):
        """A targeted PGD attack on the image towards `target` within `eps` per pixel, against the CapsNet and the CNN."""
        return attack_api(ui.model, image, target, eps, steps, ui.model_error, ui.cnn, ui.card)

    api[0].upload(
        attack_digit, api, api_json, api_name="attack",
        api_description=f"Targeted PGD attack (L-inf) on a digit image towards a target digit: image, target (0-9), "
        f"epsilon (0 < eps <= {MAX_EPS:g}), steps (1-{PAGE_MAX_STEPS}); returns {{input 28x28, adversarial 28x28, "
        "lengths_before, lengths_after, linf, reconstruction_percentile, flagged, prediction_before, prediction_after, "
        "reconstruction_distance, cnn (the same attack on the CNN baseline, or null), error}.",
    )  # fmt: skip


__all__ = ["PAGE_MAX_STEPS", "attack_api", "attack_tab", "page_outputs", "parse_attack", "run_attack"]
