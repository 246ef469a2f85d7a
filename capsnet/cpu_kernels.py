"""Conv1 and PrimaryCaps for training on CPUs without AVX-512, where oneDNN's kernels are slow in the backward.

PrimaryCaps is 191 M of the 200 M multiply-adds of a forward pass, and training also forms its two gradients.
On a 2-core AVX2 EPYC (sgemm peak about 173 GFLOP/s) oneDNN runs its forward at about 160 GFLOP/s but each
gradient at about 110. `PrimaryCapsWinograd` computes the same convolution with about a quarter of the
multiplications:

1. Stride 2 -> stride 1: split the input into its 4 pixel phases (even/odd rows x even/odd columns) and the
   kernel into the matching 5x5 sub-kernels (5x4, 4x5 and 4x4 ones zero-padded). The convolution becomes one
   stride-1, 5x5 convolution over 4 x 256 channels of a 10x10 input.
2. Winograd F(3x3, 5x5) on that: 2x2 tiles of 7x7 input give the 6x6 output. Each tile is transformed
   (B^T d B), multiplied channel-wise with the transformed kernel (G g G^T) as 49 batched GEMMs, and
   transformed back (A^T m A). Per output value and channel pair that is 4 phases x 49 / 9 = 21.8
   multiplications instead of 81.

Both gradients are the transposed GEMMs and transforms, written out in `backward` (no autograd graph over
strided views). Tiles are gathered from and scattered to channels-last memory, so the inner loop runs over
256 contiguous channels; `Conv1Images` hands PrimaryCaps its input in that layout directly. Interpolation
points 0, +-1, +-2, 1/2 and infinity: outputs and gradients match F.conv2d to about 1e-5 relative in float32.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5)  # and infinity
M, R = 3, 5  # output tile, (sub-)kernel size
N = M + R - 1  # input tile, 7


def toom_cook(points=POINTS, m: int = M, r: int = R) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A^T (m x n), G (n x r), B^T (n x n)) in float64 for the correlation y = A^T [(G g) * (B^T d)].

    Linear convolution by evaluation at n points and interpolation is c = V_n^-1 [(V_r g) * (V_m h)]
    (V_k: the k-column Vandermonde matrix, infinity's row picking the leading coefficient); correlation is its
    transpose in h, so A^T = V_m^T, G = V_r, B^T = V_n^-T."""
    n = m + r - 1
    p = torch.tensor(points, dtype=torch.float64)

    def vandermonde(cols: int) -> torch.Tensor:
        v = torch.zeros(n, cols, dtype=torch.float64)
        v[: n - 1] = p[:, None] ** torch.arange(cols, dtype=torch.float64)
        v[n - 1, cols - 1] = 1.0
        return v

    return vandermonde(m).T.contiguous(), vandermonde(r), torch.linalg.inv(vandermonde(n)).T.contiguous()


@functools.lru_cache(maxsize=8)
def _transforms(dtype: torch.dtype, device: torch.device):
    """The 2-D transforms as Kronecker products on flattened tiles: (A^T x A^T (9x49), G x G (49x25), B^T x B^T (49x49))."""
    at, g, bt = toom_cook()
    return tuple(torch.kron(t, t).to(dtype=dtype, device=device) for t in (at, g, bt))


def _tiles(x: torch.Tensor) -> torch.Tensor:
    """Channels-last (B, C, 20, 20) -> view (7, 7, B, 2, 2, 2, 2, C):
    [i, j, b, t, u, p, q, c] = x[b, c, 6t + 2i + p, 6u + 2j + q], i.e. tile (t, u) of phase (p, q) at (i, j)."""
    B, C = x.shape[:2]
    return x.as_strided((N, N, B, 2, 2, 2, 2, C), (40 * C, 2 * C, 400 * C, 120 * C, 6 * C, 20 * C, C, 1))


class PrimaryCapsWinograd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        B, C = x.shape[:2]
        O, K = weight.shape[0], 4 * C
        at, g, bt = _transforms(x.dtype, x.device)
        x = x.contiguous(memory_format=torch.channels_last)
        V = (bt @ _tiles(x).reshape(N * N, B * 4 * K)).view(N * N, B * 4, K)
        # kernel taps (2a + p, 2e + q), tap 9 zero -> [(a, e), (p, q, c), o]; o is moved innermost first by a
        # plain 2-D transpose, so the 6-D permute copies runs of O contiguous values
        w = F.pad(weight, (0, 1, 0, 1)).view(O, C * 100).t().contiguous().view(C, R, 2, R, 2, O)
        w = w.permute(1, 3, 2, 4, 0, 5).reshape(R * R, K * O)
        U = (g @ w).view(N * N, K, O)
        Y = (at @ torch.bmm(V, U).view(N * N, -1)).view(M, M, B, 2, 2, O)
        ctx.save_for_backward(V, U)
        ctx.sizes = (B, C, O)
        return Y.permute(2, 5, 3, 0, 4, 1).reshape(B, O, 2 * M, 2 * M) + bias.view(1, O, 1, 1)

    @staticmethod
    def backward(ctx, grad):
        V, U = ctx.saved_tensors
        B, C, O = ctx.sizes
        K = 4 * C
        at, g, bt = _transforms(grad.dtype, grad.device)
        gY = grad.reshape(B, O, 2, M, 2, M).permute(3, 5, 0, 2, 4, 1).reshape(M * M, B * 4 * O)
        gM = (at.T @ gY).view(N * N, B * 4, O)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            gD = (bt.T @ torch.bmm(gM, U.transpose(1, 2)).view(N * N, -1)).view(N, N, B, 2, 2, 2, 2, C)
            grad_x = grad.new_zeros(B, 20, 20, C).permute(0, 3, 1, 2)  # channels last
            tiles = _tiles(grad_x)
            for i in range(N):
                for j in range(N):
                    tiles[i, j] += gD[i, j]
        if ctx.needs_input_grad[1]:
            gw = (g.T @ torch.bmm(V.transpose(1, 2), gM).view(N * N, -1)).view(R, R, 2, 2, C, O)
            gw = gw.permute(4, 0, 2, 1, 3, 5).reshape(C * 100, O).t()  # [c, a, p, e, q, o] -> (O, C x 10 x 10)
            grad_w = gw.reshape(O, C, 2 * R, 2 * R)[:, :, :9, :9].contiguous()
        return grad_x, grad_w, grad.sum((0, 2, 3))


class Conv1Images(torch.autograd.Function):
    """Conv1 (1 -> C channels, k x k, stride 1) on images that need no gradient, as one GEMM over the unfolded
    images. The output is channels-last, the layout PrimaryCapsWinograd reads; the backward forms only the
    weight and bias gradients (oneDNN's AVX2 weight-gradient kernel for one input channel is several times
    slower than its forward)."""

    @staticmethod
    def forward(ctx, images, weight, bias):
        B, _, H, W = images.shape
        C, k = weight.shape[0], weight.shape[-1]
        h, w = H - k + 1, W - k + 1
        cols = images[:, 0].unfold(1, k, 1).unfold(2, k, 1).reshape(B * h * w, k * k)  # each position's patch
        ctx.save_for_backward(cols)
        ctx.shape = (B, C, h, w, k)
        out = torch.addmm(bias, cols, weight.view(C, k * k).t())  # (B*h*w, C)
        return out.view(B, h, w, C).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad):
        (cols,) = ctx.saved_tensors
        B, C, h, w, k = ctx.shape
        g = grad.permute(0, 2, 3, 1).reshape(B * h * w, C)  # free for channels-last gradients
        return None, (g.t() @ cols).view(C, 1, k, k), g.sum(0)


def applies(images: torch.Tensor, conv1: torch.nn.Conv2d, primary_caps: torch.nn.Conv2d) -> bool:
    """Whether these kernels are written for this input and these layers: float32 images (B, 1, 28, 28) on CPU,
    the paper's conv1 (9x9, stride 1) and PrimaryCaps (9x9, stride 2, 20x20 -> 6x6), ungrouped, unpadded."""
    plain = all(
        c.padding == (0, 0) and c.dilation == (1, 1) and c.groups == 1 and c.bias is not None
        and c.kernel_size == (9, 9) and c.weight.dtype == torch.float32 for c in (conv1, primary_caps)
    )
    return (
        plain and conv1.stride == (1, 1) and primary_caps.stride == (2, 2) and conv1.in_channels == 1
        and images.dim() == 4 and tuple(images.shape[1:]) == (1, 28, 28) and images.dtype == torch.float32
        and images.device.type == "cpu"
    )


def primary_caps_maps(images: torch.Tensor, conv1: torch.nn.Conv2d, primary_caps: torch.nn.Conv2d) -> torch.Tensor:
    """primary_caps(relu(conv1(images))) through these kernels: the same values, channels-last."""
    x = torch.relu(Conv1Images.apply(images, conv1.weight, conv1.bias))
    return PrimaryCapsWinograd.apply(x, primary_caps.weight, primary_caps.bias)
