"""Plain view functions: CapsNetOutput / tensors in, plotly figures and numpy / PIL images out.

Nothing here knows about Gradio. The model's maths is never re-implemented:
lengths, poses and reconstructions come from the CapsNetOutput, edited poses go
through `CapsNet.decode`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from capsnet import CapsNet, CapsNetOutput
from capsnet.losses import M_MINUS, M_PLUS  # margin-loss targets (paper, eq. 4), drawn as guides
from capsnet.typicality import percentile_of, reconstruction_distance

from .couplings import CFG, IMAGE_SIZE, NUM_CLASSES
from ..text import tr
from .fastfig import LightFigure

POSE_DIM = CFG.digit_dim  # 16
NO_MODEL = "No model loaded."  # what every endpoint answers without a model (and no load error to tell)
PERTURBATIONS = tuple(round(-0.25 + 0.05 * i, 2) for i in range(11))  # -0.25 .. +0.25, the paper's Figure 4
DISPLAY_SCALE = 8  # 28 px -> 224 px, nearest neighbour

PREDICTED_COLOR = "#e4572e"
SELECTED_COLOR = "#f3a712"
OTHER_COLOR = "#4c72b0"


@dataclass(frozen=True)
class Analysis:
    """Everything known about one input, kept per session (gr.State) so other views only decode.

    image:  (1, 28, 28) float tensor in [0, 1], what the model saw.
    output: the CapsNetOutput of one forward pass on image[None] (batch of 1; the
            reconstruction is of the predicted class).
    """

    image: torch.Tensor
    output: CapsNetOutput
    source: str = "input"  # where it came from: "sketch", "upload", "example", "mnist", "transform", "api", ...
    note: str = ""  # shown beside the prediction, e.g. "MNIST test #8, true label 5"
    # A pose a share link set: (digit capsule, or None for the predicted one; its 16 values). The Pose tab starts
    # there instead of at the capsule's own pose.
    pose_edit: tuple[int | None, tuple[float, ...]] | None = None

    def edited_pose(self, digit_class: int) -> tuple[float, ...] | None:
        """The share link's pose for this digit capsule, or None."""
        if self.pose_edit is None:
            return None
        k, pose = self.pose_edit
        return pose if (self.digit if k is None else k) == int(digit_class) else None

    @property
    def digit(self) -> int:
        return int(self.output.predictions[0])

    @property
    def lengths(self) -> np.ndarray:
        return self.output.lengths[0].detach().cpu().numpy()

    def pose(self, digit_class: int) -> np.ndarray:
        """The 16-D pose (instantiation parameters) of one digit capsule."""
        return self.output.poses[0, int(digit_class)].detach().cpu().numpy()


def analyse(model: CapsNet, image28: torch.Tensor, source: str = "input", note: str = "",
            pose_edit: tuple | None = None) -> Analysis:
    """One forward pass on a (1,28,28) / (28,28) / (1,1,28,28) image in [0,1], keeping routing's intermediate
    values (trace_routing) for the Routing tab's views and the `routing` endpoint."""
    x = torch.as_tensor(image28, dtype=torch.float32).reshape(1, 1, IMAGE_SIZE, IMAGE_SIZE)
    with torch.inference_mode():
        out = model(x, trace_routing=True)
    return Analysis(image=x[0].clone(), output=out, source=source, note=note, pose_edit=pose_edit)


def no_model_answer(model_error: str | None, *fields: str) -> dict:
    """An endpoint's answer when no model is loaded: each of `fields` None, "error" the load error (or NO_MODEL)."""
    return {**dict.fromkeys(fields), "error": model_error or NO_MODEL}


def typicality(analysis: Analysis, check: dict | None) -> dict:
    """Whether the capsules recognise the input as a typical digit (capsnet.typicality, DARCCC): the distance
    between the input and its reconstruction from the predicted capsule, its percentile among the correctly
    classified test digits and `typical` (distance <= the card's threshold); None where the card has no check."""
    distance = float(reconstruction_distance(analysis.image[None], analysis.output.reconstructions)[0])
    threshold = (check or {}).get("threshold")
    return {"reconstruction_distance": round(distance, 4), "reconstruction_percentile": percentile_of(check, distance),
            "typical": None if not isinstance(threshold, (int, float)) else distance <= threshold}  # fmt: skip


def typicality_text(t: dict, check: dict | None, digit: int) -> str:
    """The prediction's line about it (Markdown), "" without a check."""
    if t["typical"] is None:
        return ""
    share = f"{100 - int(check['threshold_percentile'])}%"
    if t["typical"]:
        return tr("Reconstruction distance {distance:.2f}: percentile {percentile:.0f} of the correctly classified "
                  "test digits.", distance=t["reconstruction_distance"], percentile=t["reconstruction_percentile"])
    return tr("**Not a typical digit:** its reconstruction from digit capsule {digit} is further from it (distance "
              "{distance:.2f}) than for all but {share} of the correctly classified test digits.", digit=digit,
              distance=t["reconstruction_distance"], share=share)


def summary(analysis: Analysis, check: dict | None = None) -> dict:
    """JSON-able summary (the `predict` endpoint's answer); with the card's `reconstruction_check`, whether the
    capsules recognise the input as a typical digit."""
    lengths = [round(float(v), 6) for v in analysis.lengths]
    d = analysis.digit
    return {
        "digit": d,
        "lengths": lengths,
        "confidence": lengths[d],
        "pose": [round(float(v), 6) for v in analysis.pose(d)],
        **typicality(analysis, check),
        "error": None,
    }


# --------------------------------------------------------------------------- images


def to_uint8(image) -> np.ndarray:
    """(28,28), (1,28,28) or (1,1,28,28) tensor / array in [0,1] -> (28,28) uint8."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().float().numpy()
    a = np.asarray(image, dtype=np.float32).reshape(image.shape[-2], image.shape[-1])
    return (np.clip(np.nan_to_num(a), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def upscale(image, scale: int = DISPLAY_SCALE) -> np.ndarray:
    """A 28x28 image as uint8 (28*scale, 28*scale), nearest neighbour so pixels stay visible."""
    a = to_uint8(image)
    return np.repeat(np.repeat(a, scale, axis=0), scale, axis=1)


def model_input_image(analysis: Analysis, scale: int = DISPLAY_SCALE) -> np.ndarray:
    """The 28x28 image the model actually sees, upscaled for display."""
    return upscale(analysis.image, scale)


def edited_poses(poses: torch.Tensor, digit_class: int, pose: Sequence[float]) -> torch.Tensor:
    """(1,10,16) or (10,16) poses with capsule `digit_class` replaced by `pose` -> (1,10,16)."""
    p = poses.detach().reshape(1, NUM_CLASSES, POSE_DIM).clone()
    p[0, int(digit_class)] = torch.as_tensor(np.asarray(pose, dtype=np.float32).reshape(POSE_DIM))
    return p


def decode_pose(model: CapsNet, analysis: Analysis, digit_class: int, pose: Sequence[float] | None = None) -> np.ndarray:
    """Reconstruction "as digit_class" from its capsule's pose (edited if `pose` is given): (28,28) float.

    Only the decoder runs (model.decode); the input is not routed again.
    """
    with torch.inference_mode():
        poses = analysis.output.poses if pose is None else edited_poses(analysis.output.poses, digit_class, pose)
        recon = model.decode(poses.reshape(1, NUM_CLASSES, POSE_DIM), int(digit_class))
    return recon[0, 0].numpy()


def perturbation_poses(poses: torch.Tensor, digit_class: int, deltas=PERTURBATIONS) -> torch.Tensor:
    """(16 * n, 10, 16) poses: row d, column k has dimension d of `digit_class` shifted by deltas[k] (n deltas for
    every dimension), or by deltas[d][k] (a (16, n) table: each dimension its own, e.g. its data's ±2σ)."""
    base = poses.detach().reshape(NUM_CLASSES, POSE_DIM)
    delta = torch.as_tensor(np.asarray(deltas, np.float64), dtype=base.dtype)
    n = delta.shape[-1]
    batch = base.expand(POSE_DIM, n, NUM_CLASSES, POSE_DIM).clone()
    dims = torch.arange(POSE_DIM)
    batch[dims, :, int(digit_class), dims] += delta  # (16, n) broadcast
    return batch.reshape(POSE_DIM * n, NUM_CLASSES, POSE_DIM)


def perturbation_reconstructions(model: CapsNet, analysis: Analysis, digit_class: int, deltas=PERTURBATIONS) -> torch.Tensor:
    """(16, n, 28, 28) reconstructions for perturbation_poses' deltas, decoded in ONE batched model.decode call."""
    batch = perturbation_poses(analysis.output.poses, digit_class, deltas)
    with torch.inference_mode():
        recon = model.decode(batch, int(digit_class))
    return recon.reshape(POSE_DIM, -1, IMAGE_SIZE, IMAGE_SIZE)


def tile_grid(tiles: torch.Tensor | np.ndarray, scale: int = 2, gap: int = 2, gap_value: int = 64) -> np.ndarray:
    """(R, C, 28, 28) images in [0,1] -> one uint8 image, tiles upscaled by `scale`, `gap` px apart."""
    t = tiles.detach().cpu().numpy() if isinstance(tiles, torch.Tensor) else np.asarray(tiles)
    R, C, h, w = t.shape
    a = (np.clip(t, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    a = np.repeat(np.repeat(a, scale, axis=2), scale, axis=3)
    th, tw = h * scale, w * scale
    out = np.full((R * th + (R - 1) * gap, C * tw + (C - 1) * gap), gap_value, np.uint8)
    for r in range(R):
        for c in range(C):
            out[r * (th + gap) : r * (th + gap) + th, c * (tw + gap) : c * (tw + gap) + tw] = a[r, c]
    return out


def grid_size(rows: int = POSE_DIM, cols: int = len(PERTURBATIONS), scale: int = 2, gap: int = 2) -> tuple[int, int]:
    """(height, width) of tile_grid's image."""
    return rows * IMAGE_SIZE * scale + (rows - 1) * gap, cols * IMAGE_SIZE * scale + (cols - 1) * gap


def perturbation_grid(model: CapsNet, analysis: Analysis, digit_class: int, deltas=PERTURBATIONS, scale: int = 2) -> np.ndarray:
    """The paper's Figure 4 for one capsule: 16 rows (dimensions) x 11 columns (by default -0.25..+0.25; see
    perturbation_poses for per-dimension deltas), one uint8 image."""
    return tile_grid(perturbation_reconstructions(model, analysis, digit_class, deltas), scale=scale)


def sweep_gif(model: CapsNet, analysis: Analysis, digit_class: int, dim: int, path: str | Path, deltas=PERTURBATIONS,
              scale: int = DISPLAY_SCALE, frame_ms: int = 120) -> Path:
    """One row of the Figure-4 grid as a looping animated GIF: dimension `dim` stepped through `deltas` and back
    (28 px upscaled by `scale`, nearest neighbour). Returns the path."""
    recon = perturbation_reconstructions(model, analysis, digit_class, deltas)[int(dim)]
    frames = [Image.fromarray(upscale(r, scale)) for r in recon]
    frames += frames[-2:0:-1]  # there and back
    path = Path(path)
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return path


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 image as PNG (fast compression); returns the path."""
    path = Path(path)
    Image.fromarray(image).save(path, format="PNG", compress_level=1)
    return path


# --------------------------------------------------------------------------- figures


def lengths_figure(analysis: Analysis | CapsNetOutput, selected: int | None = None, height: int = 340) -> LightFigure:
    """Bar chart of the ten digit-capsule lengths; the prediction highlighted, guides at m+, m- and 0.5.

    `selected` (if not the prediction) gets its own colour: it is the capsule the pose views show.
    """
    out = analysis.output if isinstance(analysis, Analysis) else analysis
    lengths = out.lengths[0].detach().cpu().numpy().astype(float)
    pred = int(lengths.argmax())
    colors = [OTHER_COLOR] * NUM_CLASSES
    if selected is not None and int(selected) != pred:
        colors[int(selected)] = SELECTED_COLOR
    colors[pred] = PREDICTED_COLOR
    bar = dict(
        type="bar",
        x=[str(k) for k in range(NUM_CLASSES)],
        y=lengths,
        marker=dict(color=colors),
        text=[f"{v:.2f}" for v in lengths],
        textposition="outside",
        customdata=[(tr("predicted") if k == pred else (tr("selected") if k == selected else ""))
                    for k in range(NUM_CLASSES)],
        hovertemplate=tr("digit capsule %{x}<br>length ||v|| = %{y:.4f}<br>%{customdata}<extra></extra>"),
        name=tr("capsule length"),
    )
    guides = ((M_PLUS, f"m+ = {M_PLUS:g}", "dash"), (0.5, "0.5", "dot"), (M_MINUS, f"m- = {M_MINUS:g}", "dash"))
    # Guides as plain layout shapes (one validation pass; add_hline is ~10x slower).
    shapes = [
        dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y, line=dict(color="#888", width=1, dash=dash))
        for y, _, dash in guides
    ]
    annotations = [
        dict(xref="paper", x=1, yref="y", y=y, text=text, showarrow=False, xanchor="right", yanchor="bottom",
             font=dict(size=11, color="#555"))
        for y, text, _ in guides
    ]
    return LightFigure(
        [bar],
        dict(
            title=dict(text=tr("Digit-capsule lengths: predicted <b>{digit}</b> ({length:.3f})", digit=pred,
                               length=lengths[pred]), x=0.5),
            xaxis=dict(title=dict(text=tr("digit capsule")), type="category"),
            yaxis=dict(title=dict(text=tr("length ||v|| (probability)")), range=[0, 1.1], gridcolor="#eee"),
            shapes=shapes,
            annotations=annotations,
            height=height,
            margin=dict(l=50, r=20, t=50, b=40),
            plot_bgcolor="white",
            showlegend=False,
        ),
    )


__all__ = [
    "Analysis",
    "M_MINUS",
    "M_PLUS",
    "NO_MODEL",
    "PERTURBATIONS",
    "analyse",
    "decode_pose",
    "edited_poses",
    "grid_size",
    "lengths_figure",
    "model_input_image",
    "no_model_answer",
    "perturbation_grid",
    "perturbation_poses",
    "perturbation_reconstructions",
    "save_png",
    "summary",
    "tile_grid",
    "to_uint8",
    "upscale",
]
