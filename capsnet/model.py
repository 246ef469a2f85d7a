"""CapsNet with its reconstruction decoder (Sabour, Frosst & Hinton 2017).

One forward pass returns everything the trainer, the evaluator and the
explorer need as a single typed result: capsule lengths, poses, coupling
coefficients at every routing iteration, primary capsules, agreements and
reconstructions. With `trace_routing=True` it also keeps what routing computed on the way (votes,
logits and pre-squash sums per iteration, the uniform-coupling counterfactual, each primary capsule's change
from a blank image) so the routing inspector reads them instead of redoing the model's math.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from . import cpu_kernels
from .routing import agreement, dynamic_routing, squash, traced_routing

PAPER_TEST_ACCURACY = 0.9975  # the paper's MNIST test accuracy (Table 1: 0.25% error, 3 routing iterations)


@dataclass
class CapsNetConfig:
    """The paper's MNIST architecture; every number here is from Section 4."""

    image_size: int = 28
    conv1_channels: int = 256
    kernel_size: int = 9
    primary_types: int = 32
    primary_dim: int = 8
    primary_stride: int = 2
    num_classes: int = 10
    digit_dim: int = 16
    routing_iterations: int = 3
    decoder_hidden: tuple[int, int] = (512, 1024)

    @property
    def conv1_size(self) -> int:
        return self.image_size - self.kernel_size + 1  # 20

    @property
    def primary_grid(self) -> int:
        return (self.conv1_size - self.kernel_size) // self.primary_stride + 1  # 6

    @property
    def num_primary(self) -> int:
        return self.primary_types * self.primary_grid**2  # 1152

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CapsNetConfig":
        d = dict(d)
        if "decoder_hidden" in d:
            d["decoder_hidden"] = tuple(d["decoder_hidden"])
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        return cls(**d)


@dataclass
class CapsNetOutput:
    """Everything one forward pass produces. B = batch, I = primary capsules (1152)."""

    lengths: torch.Tensor  # (B, 10) digit-capsule lengths = class probabilities
    poses: torch.Tensor  # (B, 10, 16) digit-capsule output vectors v_j
    couplings: torch.Tensor  # (B, r, I, 10) coupling coefficients c_ij used at each iteration
    primary: torch.Tensor  # (B, I, 8) squashed primary-capsule vectors u_i
    agreement: torch.Tensor  # (B, I, 10) u_hat_j|i . v_j with the final v_j
    reconstructions: torch.Tensor  # (B, 1, 28, 28) decoder output for `masked_class`
    masked_class: torch.Tensor  # (B,) class whose pose fed the decoder
    # Only with forward(..., trace_routing=True), else None (training does not pay for them); all detached.
    votes: torch.Tensor | None = None  # (B, I, 10, 16) predictions u_hat_j|i = W_ij u_i
    logits: torch.Tensor | None = None  # (B, r, I, 10) logits b_ij each iteration's couplings are the softmax of
    pre_squash: torch.Tensor | None = None  # (B, r, 10, 16) s_j = sum_i c_ij u_hat_j|i at each iteration
    projections: torch.Tensor | None = None  # (B, r, I, 10) u_hat_j|i . s_j/|s_j| (= . v_j/|v_j|) at each iteration
    uniform_lengths: torch.Tensor | None = None  # (B, 10) lengths with every coupling fixed at 1/10 (no routing)
    blank_distance: torch.Tensor | None = None  # (B, I) |u_i - u_i(blank image)|: what the input changed

    @property
    def contributions(self) -> torch.Tensor:
        """(B, r, I, 10) signed vote contributions a_ij = c_ij (u_hat_j|i . v_j/|v_j|) at each iteration.

        They decompose the pre-squash length exactly: sum_i a_ij = |s_j| (v_j and s_j point the same way).
        """
        if self.projections is None:
            raise ValueError("vote contributions need forward(..., trace_routing=True)")
        return self.couplings * self.projections

    @property
    def pre_squash_norms(self) -> torch.Tensor:
        """(B, 10) |s_j| of the final iteration; squash maps it to the digit-capsule length."""
        if self.pre_squash is None:
            raise ValueError("pre-squash sums need forward(..., trace_routing=True)")
        return self.pre_squash[:, -1].norm(dim=-1)

    @property
    def predictions(self) -> torch.Tensor:
        """Predicted class: the longest digit capsule."""
        return self.lengths.argmax(dim=1)

    @property
    def primary_lengths(self) -> torch.Tensor:
        """(B, I) activity of every primary capsule."""
        return self.primary.norm(dim=-1)


class PrimaryPosition(NamedTuple):
    type: int
    row: int
    col: int


def primary_capsule_position(index: int, config: CapsNetConfig | None = None) -> PrimaryPosition:
    """Map a primary-capsule index (0..1151) to (capsule type, row, col) on the 6x6 grid."""
    cfg = config or CapsNetConfig()
    g = cfg.primary_grid
    if not 0 <= index < cfg.num_primary:
        raise IndexError(f"primary capsule index {index} outside 0..{cfg.num_primary - 1}")
    t, rest = divmod(int(index), g * g)
    r, c = divmod(rest, g)
    return PrimaryPosition(t, r, c)


def primary_capsule_index(type_: int, row: int, col: int, config: CapsNetConfig | None = None) -> int:
    """Inverse of primary_capsule_position."""
    cfg = config or CapsNetConfig()
    g = cfg.primary_grid
    if not (0 <= type_ < cfg.primary_types and 0 <= row < g and 0 <= col < g):
        raise IndexError(f"(type, row, col) = ({type_}, {row}, {col}) outside {cfg.primary_types}x{g}x{g}")
    return (type_ * g + row) * g + col


def receptive_field(row: int, col: int, config: CapsNetConfig | None = None) -> tuple[int, int, int, int]:
    """Input pixels seen by a primary capsule at (row, col): (top, left, bottom, right), bottom/right exclusive.

    Conv1 (k=9, stride 1) then PrimaryCaps (k=9, stride s): output cell r covers
    conv1 rows s*r .. s*r+k-1, each of which covers k input rows, so the field
    is s*r .. s*r + 2(k-1), i.e. 17x17 pixels for the paper's network.
    """
    cfg = config or CapsNetConfig()
    k, s = cfg.kernel_size, cfg.primary_stride
    size = 2 * (k - 1) + 1
    return (s * row, s * col, s * row + size, s * col + size)


def conv_memory_format(device: torch.device | str | None = None) -> torch.memory_format:
    """The activation layout the convolutions are fastest in.

    oneDNN's AVX-512 kernels train about 2x faster in channels_last; on CPUs with AVX2 only
    (or with oneDNN capped below AVX-512 by ONEDNN_MAX_CPU_ISA) channels_last is slower than NCHW.
    cuDNN's tensor-core kernels (bf16 autocast) also want channels_last.
    """
    if device is not None and torch.device(device).type == "cuda":
        return torch.channels_last
    isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if isa_cap and isa_cap != "ALL" and "AVX512" not in isa_cap and "AMX" not in isa_cap:
        return torch.contiguous_format
    return torch.channels_last if "AVX512" in torch.backends.cpu.get_cpu_capability() else torch.contiguous_format


def _float32_routing(device_type: str):
    """Under a bf16 autocast (training with --bf16) the convolutions and decoder run in bf16, but
    predictions, routing and capsule lengths stay float32: the margin loss compares lengths to 0.9 and 0.1."""
    if device_type in ("cpu", "cuda") and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


class CapsNet(nn.Module):
    def __init__(self, config: CapsNetConfig | None = None):
        super().__init__()
        self.config = cfg = config or CapsNetConfig()
        self.conv1 = nn.Conv2d(1, cfg.conv1_channels, cfg.kernel_size)
        self.primary_caps = nn.Conv2d(
            cfg.conv1_channels, cfg.primary_types * cfg.primary_dim, cfg.kernel_size, stride=cfg.primary_stride
        )
        # W_ij: one 16x8 transform per (primary capsule i, digit capsule j).
        self.W = nn.Parameter(0.01 * torch.randn(cfg.num_primary, cfg.num_classes, cfg.digit_dim, cfg.primary_dim))
        h1, h2 = cfg.decoder_hidden
        self.decoder = nn.Sequential(
            nn.Linear(cfg.num_classes * cfg.digit_dim, h1),
            nn.ReLU(inplace=True),
            nn.Linear(h1, h2),
            nn.ReLU(inplace=True),
            nn.Linear(h2, cfg.image_size**2),
            nn.Sigmoid(),
        )
        self.to(memory_format=conv_memory_format())

    def to_memory_format(self, memory_format: torch.memory_format) -> "CapsNet":
        """Lay the convolution weights (and so the activations) out in `memory_format`; values are unchanged."""
        return self.to(memory_format=memory_format)

    def primary_capsules(self, images: torch.Tensor) -> torch.Tensor:
        """(B,1,28,28) -> squashed primary capsules (B, 1152, 8), index = (type*6 + row)*6 + col."""
        cfg = self.config
        w = self.primary_caps.weight
        fmt = torch.channels_last if w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() \
            else torch.contiguous_format
        images = images.contiguous(memory_format=fmt)
        if fmt == torch.contiguous_format and torch.is_grad_enabled() and self.conv1.weight.requires_grad \
                and not images.requires_grad and not torch.is_autocast_enabled("cpu") \
                and cpu_kernels.applies(images, self.conv1, self.primary_caps):
            # training on a CPU without AVX-512: same values, a quarter of PrimaryCaps' multiplications
            x = cpu_kernels.primary_caps_maps(images, self.conv1, self.primary_caps)
        else:
            x = self.primary_caps(F.relu(self.conv1(images)))  # (B, 32*8, 6, 6): channel = type*8 + dim
        B, _, H, W = x.shape
        # Split channels into (type, dim) and move dim last; a bare view would mix positions into dims.
        u = x.view(B, cfg.primary_types, cfg.primary_dim, H, W).permute(0, 1, 3, 4, 2)
        return squash(u.reshape(B, cfg.primary_types * H * W, cfg.primary_dim).float())

    def votes(self, images: torch.Tensor) -> torch.Tensor:
        """(B,1,28,28) -> predictions u_hat_j|i = W_ij u_i (B, 1152, 10, 16): everything before routing."""
        return self.predictions(self.primary_capsules(images))

    def predictions(self, u: torch.Tensor) -> torch.Tensor:
        """u_hat_j|i = W_ij u_i: primary capsules (B, I, 8) -> (B, I, 10, 16).

        One GEMM per primary capsule i over the batch, (B x 8) @ (8 x 10*16); the result is a (B, I, ...) view
        of the (I, B, ...) product, which routing's GEMMs read without a copy."""
        I, J, D, K = self.W.shape
        u_hat = torch.bmm(u.transpose(0, 1), self.W.reshape(I, J * D, K).transpose(1, 2))  # (I, B, J*D)
        return u_hat.transpose(0, 1).unflatten(-1, (J, D))

    def blank_primary(self) -> torch.Tensor:
        """(1152, 8) primary capsules of an all-black image, cached until the conv weights change."""
        params = (*self.conv1.parameters(), *self.primary_caps.parameters())
        key = tuple((p.data_ptr(), p._version, p.device, p.dtype) for p in params)
        cached = getattr(self, "_blank_cache", None)
        if cached is None or cached[0] != key:
            s = self.config.image_size
            with torch.no_grad():
                u = self.primary_capsules(params[0].new_zeros(1, 1, s, s))[0]
            cached = self._blank_cache = (key, u)
        return cached[1]

    def decode(self, poses: torch.Tensor, classes: torch.Tensor | int) -> torch.Tensor:
        """Reconstruct from (possibly edited) poses (B,10,16), keeping only `classes`' capsule.

        Only the decoder runs: the explorer's pose sliders call this without re-routing.
        """
        B = poses.shape[0]
        if isinstance(classes, int):
            classes = torch.full((B,), classes, dtype=torch.long, device=poses.device)
        mask = F.one_hot(classes.to(poses.device).long(), self.config.num_classes).to(poses.dtype)
        masked = (poses * mask.unsqueeze(-1)).flatten(1)
        s = self.config.image_size
        return self.decoder(masked).view(B, 1, s, s)

    def forward(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        mask_class: torch.Tensor | int | None = None,
        routing_iterations: int | None = None,
        trace_routing: bool = False,
    ) -> CapsNetOutput:
        """images (B,1,28,28) in [0,1]. The decoder sees the capsule of `labels` (training),
        else of `mask_class`, else of the predicted class. `trace_routing` fills the routing-inspection fields."""
        cfg = self.config
        if images.dim() != 4 or tuple(images.shape[1:]) != (1, cfg.image_size, cfg.image_size):
            raise ValueError(f"expected images of shape (B, 1, {cfg.image_size}, {cfg.image_size}), got {tuple(images.shape)}")
        u = self.primary_capsules(images)  # (B, I, 8)
        with _float32_routing(images.device.type):
            u_hat = self.predictions(u)  # u_hat_j|i = W_ij u_i: (B, I, 10, 16)
            iterations = routing_iterations or cfg.routing_iterations
            extra = {}
            if trace_routing:
                v, couplings, trace = traced_routing(u_hat, iterations)
                with torch.no_grad():
                    s = trace.pre_squash
                    direction = s / s.norm(dim=-1, keepdim=True).clamp_min(1e-30)
                    extra = dict(
                        votes=u_hat.detach(),
                        logits=trace.logits,
                        pre_squash=s,
                        projections=torch.einsum("bijd,brjd->brij", u_hat.detach(), direction),
                        uniform_lengths=squash(s[:, 0]).norm(dim=-1),
                        blank_distance=(u.detach() - self.blank_primary()).norm(dim=-1),
                    )
            else:
                v, couplings = dynamic_routing(u_hat, iterations)
            lengths = v.norm(dim=-1)
            with torch.no_grad():
                agreements = agreement(u_hat, v)
        if labels is not None:
            masked_class = labels.long()
        elif mask_class is not None:
            masked_class = (
                torch.full((images.shape[0],), mask_class, dtype=torch.long, device=images.device)
                if isinstance(mask_class, int)
                else mask_class.long()
            )
        else:
            masked_class = lengths.detach().argmax(dim=1)
        return CapsNetOutput(
            lengths=lengths,
            poses=v,
            couplings=couplings,
            primary=u,
            agreement=agreements,
            reconstructions=self.decode(v, masked_class),
            masked_class=masked_class,
            **extra,
        )
