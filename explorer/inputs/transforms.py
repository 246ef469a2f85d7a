"""Input transforms for the explorer: affine warps of a 28x28 input and a batched rotation sweep.

Conventions: a positive angle rotates the digit counter-clockwise as displayed
(like torchvision's `rotate`; equal to torchvision's `affine(angle=-angle, ...)`,
whose angle is clockwise), scale > 1 enlarges it, dx moves it right
and dy moves it down, in pixels; all about the image centre. Pixels that come
from outside the image are 0 (background) and values are clipped to [0, 1].
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn.functional as F

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


def _thetas(angles_deg, scales, dxs, dys, size: int = IMAGE_SIZE) -> torch.Tensor:
    """(N, 2, 3) affine_grid matrices mapping output to input normalised coordinates for the forward map
    p_out = R(angle) S (p_in - centre) + centre + (dx, dy)."""
    a = torch.as_tensor(np.asarray(angles_deg, np.float64)) * (math.pi / 180.0)
    s = torch.as_tensor(np.asarray(scales, np.float64))
    tx = torch.as_tensor(np.asarray(dxs, np.float64)) * (2.0 / size)
    ty = torch.as_tensor(np.asarray(dys, np.float64)) * (2.0 / size)
    a, s, tx, ty = torch.broadcast_tensors(a, s, tx, ty)
    if (s <= 0).any():
        raise ValueError("scale must be positive")
    cos, sin = torch.cos(a), torch.sin(a)
    # Forward (x right, y down), counter-clockwise on screen: [[cos, sin], [-sin, cos]] * s.
    # Its inverse is [[cos, -sin], [sin, cos]] / s.
    inv = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2) / s[..., None, None]
    t = torch.stack([tx, ty], -1)[..., None]
    return torch.cat([inv, -(inv @ t)], -1).float()  # (N, 2, 3)


def transform_batch(image28, angles_deg, scales=1.0, dxs=0.0, dys=0.0) -> torch.Tensor:
    """One image warped by N (broadcast) parameter sets in one grid_sample call -> (N, 1, 28, 28) in [0,1]."""
    img = _as_chw(image28)
    theta = _thetas(angles_deg, scales, dxs, dys).reshape(-1, 2, 3)
    n = theta.shape[0]
    grid = F.affine_grid(theta, [n, 1, IMAGE_SIZE, IMAGE_SIZE], align_corners=False)
    out = F.grid_sample(img[None].expand(n, -1, -1, -1), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)  # fmt: skip
    return out.clamp_(0.0, 1.0)


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
