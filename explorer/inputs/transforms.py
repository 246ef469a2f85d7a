"""Input transforms for the explorer: affine warps of a 28x28 input and a batched rotation sweep.

Conventions: a positive angle rotates the digit counter-clockwise as displayed
(like torchvision's `rotate`; equal to torchvision's `affine(angle=-angle, ...)`,
whose angle is clockwise), scale > 1 enlarges it, dx moves it right
and dy moves it down, in pixels; all about the image centre. Pixels that come
from outside the image are 0 (background) and values are clipped to [0, 1].
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from capsnet.equivariance import affine

from ..views.routing import class_lengths_figure

IMAGE_SIZE = 28


def _as_chw(image28) -> torch.Tensor:
    """(28,28), (1,28,28) or (1,1,28,28) tensor / array -> float32 (1,28,28) tensor (uint8 scaled to [0,1])."""
    if isinstance(image28, torch.Tensor):
        t = image28.detach()
    else:
        t = torch.as_tensor(np.asarray(image28))
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    t = t.float().cpu()
    if t.dim() == 4 and t.shape[:2] == (1, 1):
        t = t[0]
    elif t.dim() == 2:
        t = t[None]
    if tuple(t.shape) != (1, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected a (1,28,28) or (28,28) image, got shape {tuple(image28.shape)}")
    return t


def transform_batch(image28, angles_deg, scales=1.0, dxs=0.0, dys=0.0) -> torch.Tensor:
    """One image warped by N (broadcast) parameter sets in one grid_sample call -> (N, 1, 28, 28) in [0,1]
    (`capsnet.equivariance.affine`, the same warp the pose trajectories and the offline matrix use)."""
    img = _as_chw(image28)
    f64 = lambda v: np.asarray(v, np.float64)  # noqa: E731
    return affine(img[None], f64(angles_deg), f64(scales), f64(dxs), f64(dys))


def transform_image(image28, angle_deg: float = 0.0, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> torch.Tensor:
    """Rotate (degrees, counter-clockwise), scale and shift (pixels) a 28x28 image about its centre -> (1,28,28)
    float tensor in [0,1]; zero fill. The identity returns the (clipped) input unchanged."""
    img = _as_chw(image28)
    if angle_deg == 0 and scale == 1 and dx == 0 and dy == 0:
        return img.clamp(0.0, 1.0)
    return transform_batch(img, [angle_deg], [scale], [dx], [dy])[0]


def rotation_sweep(
    model, image28, angles: Iterable[float] = range(-45, 46, 5), routing_iterations: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Digit-capsule lengths of the input rotated by each angle, in ONE batched forward pass ->
    (angles (n,), lengths (n, 10))."""
    angles = np.asarray(list(angles), np.float64)
    batch = transform_batch(image28, angles)
    zero = angles == 0
    if zero.any():  # keep angle 0 bit-identical to the untransformed input
        batch[torch.as_tensor(zero)] = _as_chw(image28).clamp(0, 1)
    device = next(model.parameters()).device
    with torch.inference_mode():
        out = model(batch.to(device), routing_iterations=routing_iterations)
    return angles, out.lengths.detach().cpu().float().numpy()


def rotation_sweep_figure(angles: Sequence[float], lengths: np.ndarray, highlight: int | None = None) -> go.Figure:
    """Each class's capsule length against the rotation angle; `highlight` (default: the class predicted at the
    angle nearest 0) is drawn bold, the rest faded."""
    angles = np.asarray(angles, np.float64)
    lengths = np.asarray(lengths)
    if highlight is None and len(angles):
        highlight = int(lengths[int(np.abs(angles).argmin())].argmax())
    fig = class_lengths_figure(angles, lengths, highlight, title="Digit-capsule lengths as the input rotates",
                               x_title="rotation (degrees, counter-clockwise)", x_hover="%{x:g}°", markers_for_all=False)
    fig.update_xaxes(zeroline=True)
    return fig
