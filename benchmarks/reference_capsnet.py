"""A straightforward CapsNet training step: the yardstick for benchmarks/bench_train.py.

Written the plain way on purpose (NCHW convolutions, u_hat by one einsum, a
3-iteration routing loop, the decoder on the masked poses, Adam), with the same
parameter shapes and initial values as capsnet.CapsNet so the two can be checked
against each other and timed side by side.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def squash(s: torch.Tensor) -> torch.Tensor:
    sq = (s * s).sum(-1, keepdim=True)
    return s * (sq / (1.0 + sq) / torch.sqrt(sq + 1e-8))


class ReferenceCapsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 256, 9)
        self.primary_caps = nn.Conv2d(256, 256, 9, stride=2)
        self.W = nn.Parameter(0.01 * torch.randn(1152, 10, 16, 8))
        self.decoder = nn.Sequential(nn.Linear(160, 512), nn.ReLU(inplace=True), nn.Linear(512, 1024),
                                     nn.ReLU(inplace=True), nn.Linear(1024, 784), nn.Sigmoid())

    def forward(self, x: torch.Tensor, y: torch.Tensor, iterations: int = 3):
        """(lengths (B,10), poses (B,10,16), reconstructions (B,1,28,28))."""
        B = x.shape[0]
        h = self.primary_caps(F.relu(self.conv1(x)))
        u = squash(h.view(B, 32, 8, 6, 6).permute(0, 1, 3, 4, 2).reshape(B, 1152, 8))
        u_hat = torch.einsum("ijdk,bik->bijd", self.W, u)
        b = torch.zeros(B, 1152, 10)
        for r in range(iterations):
            c = b.softmax(dim=2)
            if r < iterations - 1:
                v = squash(torch.einsum("bij,bijd->bjd", c, u_hat.detach()))
                b = b + torch.einsum("bijd,bjd->bij", u_hat.detach(), v)
            else:
                v = squash(torch.einsum("bij,bijd->bjd", c, u_hat))
        lengths = v.norm(dim=-1)
        mask = F.one_hot(y, 10).to(v.dtype)
        recon = self.decoder((v * mask[..., None]).flatten(1)).view(B, 1, 28, 28)
        return lengths, v, recon


def reference_loss(lengths, recon, x, y) -> torch.Tensor:
    T = F.one_hot(y, 10).to(lengths.dtype)
    margin = (T * F.relu(0.9 - lengths) ** 2 + 0.5 * (1 - T) * F.relu(lengths - 0.1) ** 2).sum(1)
    return (margin + 0.0005 * ((recon - x) ** 2).flatten(1).sum(1)).mean()
