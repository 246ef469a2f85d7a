"""The CPU training kernels (capsnet/cpu_kernels.py) compute what F.conv2d computes, values and gradients."""
import pytest
import torch

from capsnet import CapsNet, CapsNetConfig, capsule_loss, cpu_kernels


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_toom_cook_matrices_compute_the_correlation_exactly():
    at, g, bt = cpu_kernels.toom_cook()
    assert at.shape == (3, 7) and g.shape == (7, 5) and bt.shape == (7, 7)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        d = torch.randn(7, dtype=torch.float64, generator=gen)
        w = torch.randn(5, dtype=torch.float64, generator=gen)
        direct = torch.stack([(d[i : i + 5] * w).sum() for i in range(3)])
        torch.testing.assert_close(at @ ((g @ w) * (bt @ d)), direct, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch", [1, 5])
def test_winograd_primary_caps_matches_conv2d_values_and_gradients(batch):
    gen = torch.Generator().manual_seed(batch)
    conv = torch.nn.Conv2d(256, 256, 9, stride=2)
    x = torch.relu(torch.randn(batch, 256, 20, 20, generator=gen))
    grad = torch.randn(batch, 256, 6, 6, generator=gen)
    results = []
    for fn in (lambda x: conv(x), lambda x: cpu_kernels.PrimaryCapsWinograd.apply(x, conv.weight, conv.bias)):
        xi = x.clone().requires_grad_(True)
        conv.zero_grad()
        y = fn(xi)
        y.backward(grad)
        results.append((y.detach(), xi.grad, conv.weight.grad.clone(), conv.bias.grad.clone()))
    (y0, gx0, gw0, gb0), (y1, gx1, gw1, gb1) = results
    assert y1.shape == y0.shape and gx1.shape == gx0.shape and gw1.shape == gw0.shape
    assert _rel(y1, y0) < 1e-4  # measured about 6e-6
    assert _rel(gx1, gx0) < 1e-4
    assert _rel(gw1, gw0) < 1e-4
    torch.testing.assert_close(gb1, gb0, rtol=1e-4, atol=1e-4)


def test_conv1_on_images_matches_conv2d_and_is_channels_last():
    gen = torch.Generator().manual_seed(3)
    conv = torch.nn.Conv2d(1, 256, 9)
    images = torch.rand(4, 1, 28, 28, generator=gen)
    grad = torch.randn(4, 256, 20, 20, generator=gen).contiguous(memory_format=torch.channels_last)
    y = conv(images)
    y.backward(grad)
    ref = (y.detach(), conv.weight.grad.clone(), conv.bias.grad.clone())
    conv.zero_grad()
    y = cpu_kernels.Conv1Images.apply(images, conv.weight, conv.bias)
    assert y.is_contiguous(memory_format=torch.channels_last)
    y.backward(grad)
    for a, b in zip((y.detach(), conv.weight.grad, conv.bias.grad), ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def _backward_nodes(t: torch.Tensor) -> set[str]:
    seen, names, todo = set(), set(), [t.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(type(fn).__name__)
        todo.extend(f for f, _ in fn.next_functions)
    return names


def test_the_model_trains_through_the_kernels_only_where_they_apply():
    torch.manual_seed(0)
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3])
    net = CapsNet().to_memory_format(torch.contiguous_format)
    assert cpu_kernels.applies(x, net.conv1, net.primary_caps)
    loss = capsule_loss(net(x, y), x, y)
    assert {"PrimaryCapsWinogradBackward", "Conv1ImagesBackward"} <= _backward_nodes(loss)
    # not for inference, another layout, or a configuration the kernels are not written for
    with torch.no_grad():
        assert net(x).primary.grad_fn is None
    cl = CapsNet().to_memory_format(torch.channels_last)
    assert "PrimaryCapsWinogradBackward" not in _backward_nodes(capsule_loss(cl(x, y), x, y))
    small = CapsNet(CapsNetConfig(conv1_channels=32, primary_types=4, kernel_size=7)).to_memory_format(
        torch.contiguous_format)
    assert not cpu_kernels.applies(x, small.conv1, small.primary_caps)
    out = small(x, y)
    assert "PrimaryCapsWinogradBackward" not in _backward_nodes(capsule_loss(out, x, y))
    assert torch.isfinite(out.lengths).all()


def test_training_through_the_kernels_follows_onednn_step_by_step():
    """Six Adam steps from the same weights, NCHW (the kernels) and channels-last (oneDNN): same losses."""
    x, y = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(4)), torch.arange(8) % 10
    runs = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        torch.manual_seed(1)
        net = CapsNet().to_memory_format(fmt)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        losses = []
        for _ in range(6):
            loss = capsule_loss(net(x, y), x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs.append((losses, net.primary_caps.weight.detach().contiguous()))
    (kernels, w0), (onednn, w1) = runs
    assert kernels == pytest.approx(onednn, rel=1e-4)
    # Adam moves every weight by up to lr = 1e-3 a step; the two runs end within a tenth of one step
    assert float((w0 - w1).abs().max()) < 1e-4
