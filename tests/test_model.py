"""The model against the paper: shapes, squash, routing, losses, masking, capsule layout."""
import math

import pytest
import torch
import torch.nn.functional as F

from capsnet import (
    CapsNet,
    CapsNetConfig,
    capsule_loss,
    dynamic_routing,
    margin_loss,
    primary_capsule_index,
    primary_capsule_position,
    receptive_field,
    reconstruction_sse,
    squash,
)


@pytest.fixture(scope="module")
def untrained_model():
    torch.manual_seed(0)
    return CapsNet().eval()


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(1)
    return torch.rand(3, 1, 28, 28, generator=g)


def test_output_shapes(untrained_model, images):
    with torch.no_grad():
        out = untrained_model(images)
    assert out.lengths.shape == (3, 10)
    assert out.poses.shape == (3, 10, 16)
    assert out.couplings.shape == (3, 3, 1152, 10)
    assert out.primary.shape == (3, 1152, 8)
    assert out.agreement.shape == (3, 1152, 10)
    assert out.reconstructions.shape == (3, 1, 28, 28)
    assert out.predictions.shape == (3,)
    assert ((out.reconstructions >= 0) & (out.reconstructions <= 1)).all()
    assert torch.allclose(out.lengths, out.poses.norm(dim=-1))


def test_paper_sizes():
    cfg = CapsNetConfig()
    assert (cfg.conv1_size, cfg.primary_grid, cfg.num_primary) == (20, 6, 1152)
    m = CapsNet(cfg)
    assert m.W.shape == (1152, 10, 16, 8)
    assert [l.out_features for l in m.decoder if isinstance(l, torch.nn.Linear)] == [512, 1024, 784]
    assert m.decoder[0].in_features == 160


def test_rejects_wrong_input_shape(untrained_model):
    with pytest.raises(ValueError, match="expected images of shape"):
        untrained_model(torch.zeros(1, 28, 28))


def test_squash_direction_and_norm():
    s = torch.randn(1000, 16) * torch.logspace(-3, 2, 1000).unsqueeze(1)
    v = squash(s)
    cos = F.cosine_similarity(s, v, dim=1)
    assert torch.allclose(cos, torch.ones_like(cos), atol=1e-5)
    n = v.norm(dim=1)
    assert (n >= 0).all() and (n < 1).all()
    sn = s.norm(dim=1)
    assert torch.allclose(n, sn**2 / (1 + sn**2), rtol=1e-4, atol=1e-7)


def test_squash_zero_vector_is_finite_with_finite_grad():
    s = torch.zeros(4, 8, requires_grad=True)
    v = squash(s)
    assert torch.isfinite(v).all() and (v == 0).all()
    v.sum().backward()
    assert torch.isfinite(s.grad).all()


def test_couplings_sum_to_one_and_start_uniform(untrained_model, images):
    with torch.no_grad():
        out = untrained_model(images, routing_iterations=4)
    c = out.couplings
    assert c.shape[1] == 4
    assert torch.allclose(c.sum(-1), torch.ones(c.shape[:-1]), atol=1e-5)
    assert torch.allclose(c[:, 0], torch.full_like(c[:, 0], 0.1))
    # routing changes them after the first iteration
    assert not torch.allclose(c[:, -1], c[:, 0])


def slow_routing(u_hat, iterations):
    """Procedure 1 of the paper, written as plain loops over children and parents."""
    B, I, J, D = u_hat.shape
    v_all, c_all = [], []
    for b in range(B):
        logits = [[0.0] * J for _ in range(I)]
        cs = []
        for r in range(iterations):
            c = [[math.exp(logits[i][j]) / sum(math.exp(x) for x in logits[i]) for j in range(J)] for i in range(I)]
            cs.append(c)
            v = []
            for j in range(J):
                s = sum(c[i][j] * u_hat[b, i, j] for i in range(I))
                n2 = float((s * s).sum())
                v.append(s * (n2 / (1 + n2)) / math.sqrt(n2))
            for i in range(I):
                for j in range(J):
                    logits[i][j] += float((u_hat[b, i, j] * v[j]).sum())
        v_all.append(torch.stack(v))
        c_all.append(torch.tensor(cs))
    return torch.stack(v_all), torch.stack(c_all)


def test_vectorized_routing_matches_paper_loop():
    g = torch.Generator().manual_seed(3)
    u_hat = torch.randn(2, 12, 4, 5, generator=g, dtype=torch.float64) * 0.5
    v, c = dynamic_routing(u_hat, 3)
    v_ref, c_ref = slow_routing(u_hat, 3)
    assert torch.allclose(v, v_ref, atol=1e-7)
    assert torch.allclose(c, c_ref.to(c.dtype), atol=1e-7)


def test_only_last_iteration_carries_gradient():
    g = torch.Generator().manual_seed(4)
    u_hat = torch.randn(1, 6, 3, 4, generator=g, requires_grad=True)
    v, c = dynamic_routing(u_hat, 3)
    assert not c.requires_grad  # couplings come from detached predictions
    v.sum().backward()
    # gradient equals c_final-weighted backprop through squash only
    u2 = u_hat.detach().clone().requires_grad_(True)
    s = torch.einsum("bij,bijd->bjd", c[:, -1], u2)
    squash(s).sum().backward()
    assert torch.allclose(u_hat.grad, u2.grad, atol=1e-6)


def test_margin_loss_hand_values():
    lengths = torch.tensor([[0.95, 0.05, 0.5, 0.0, 0.2, 0.1, 0.0, 0.0, 0.0, 0.0]])
    labels = torch.tensor([0])
    # present: max(0, 0.9-0.95)^2 = 0; absent: 0.5*(0.4^2 + 0.1^2) = 0.085
    assert torch.allclose(margin_loss(lengths, labels), torch.tensor([0.085]))
    labels = torch.tensor([2])
    # present: (0.9-0.5)^2 = 0.16; absent: 0.5*(0.85^2 + 0.1^2) = 0.36625
    assert torch.allclose(margin_loss(lengths, labels), torch.tensor([0.16 + 0.36625]))


def test_reconstruction_loss_is_per_image_sum_times_0005(untrained_model):
    images = torch.zeros(2, 1, 28, 28)
    images[0, 0, :10, :10] = 1.0
    with torch.no_grad():
        out = untrained_model(images, torch.tensor([1, 2]))
    recon = out.reconstructions
    sse = ((recon - images) ** 2).sum(dim=(1, 2, 3))
    assert torch.allclose(reconstruction_sse(recon, images), sse)
    expected = (margin_loss(out.lengths, torch.tensor([1, 2])) + 0.0005 * sse).mean()
    assert torch.allclose(capsule_loss(out, images, torch.tensor([1, 2])), expected)


def test_masking_by_label_prediction_and_class(untrained_model, images):
    with torch.no_grad():
        by_pred = untrained_model(images)
        labels = (by_pred.predictions + 1) % 10
        by_label = untrained_model(images, labels)
        by_class = untrained_model(images, mask_class=7)
    assert torch.equal(by_pred.masked_class, by_pred.predictions)
    assert torch.equal(by_label.masked_class, labels)
    assert (by_class.masked_class == 7).all()
    with torch.no_grad():
        for out, cls in ((by_pred, by_pred.predictions), (by_label, labels), (by_class, torch.full((3,), 7))):
            masked = torch.zeros_like(out.poses)
            masked[torch.arange(3), cls] = out.poses[torch.arange(3), cls]
            ref = untrained_model.decoder(masked.flatten(1)).view(3, 1, 28, 28)
            assert torch.allclose(out.reconstructions, ref, atol=1e-6)


def test_decode_edited_poses(untrained_model, images):
    with torch.no_grad():
        out = untrained_model(images)
        cls = out.predictions
        same = untrained_model.decode(out.poses, cls)
        assert torch.allclose(same, out.reconstructions, atol=1e-6)
        edited = out.poses.clone()
        edited[:, :, 3] += 0.25
        changed = untrained_model.decode(edited, cls)
        assert changed.shape == (3, 1, 28, 28)
        assert not torch.allclose(changed, same)
        # editing a capsule that is masked out changes nothing
        other = out.poses.clone()
        other[torch.arange(3), (cls + 1) % 10] += 1.0
        assert torch.allclose(untrained_model.decode(other, cls), same, atol=1e-6)
        assert torch.allclose(untrained_model.decode(out.poses, 4), untrained_model(images, mask_class=4).reconstructions, atol=1e-6)


def test_capsule_index_mapping_matches_conv_layout(untrained_model, images):
    """Primary capsule i must be the 8 channels of its type at its (row, col) of the PrimaryCaps conv output."""
    with torch.no_grad():
        out = untrained_model(images)
        conv = untrained_model.primary_caps(F.relu(untrained_model.conv1(images)))  # (B, 256, 6, 6), channel = type*8 + dim
        for i in [0, 1, 5, 6, 35, 36, 37, 500, 1151]:
            t, r, c = primary_capsule_position(i)
            assert primary_capsule_index(t, r, c) == i
            raw = conv[:, t * 8:(t + 1) * 8, r, c]
            assert torch.allclose(out.primary[:, i], squash(raw), atol=1e-6)
    assert primary_capsule_position(1151) == (31, 5, 5)
    with pytest.raises(IndexError):
        primary_capsule_position(1152)


def test_receptive_field_matches_convolution(untrained_model):
    """Changing a pixel changes exactly the primary capsules whose field contains it."""
    base = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(5)) * 0.5
    y, x = 13, 3
    bumped = base.clone()
    bumped[0, 0, y, x] = 1.0
    with torch.no_grad():
        diff = (untrained_model(bumped).primary - untrained_model(base).primary).abs().sum(-1)[0]
    for i in range(0, 1152):
        t, r, c = primary_capsule_position(i)
        top, left, bottom, right = receptive_field(r, c)
        inside = top <= y < bottom and left <= x < right
        if not inside:
            assert diff[i] == 0, (i, t, r, c)
    assert receptive_field(5, 5) == (10, 10, 27, 27)
    assert (diff > 0).any()


def test_traced_routing_matches_plain_routing_and_paper_loop():
    """Tracing changes nothing routing returns; its logits and sums are the paper loop's."""
    from capsnet.routing import traced_routing

    g = torch.Generator().manual_seed(5)
    u_hat = torch.randn(2, 12, 4, 5, generator=g, dtype=torch.float64) * 0.5
    v, c = dynamic_routing(u_hat, 3)
    v2, c2, trace = traced_routing(u_hat, 3)
    assert torch.equal(v, v2) and torch.equal(c, c2)
    assert trace.logits.shape == (2, 3, 12, 4) and trace.pre_squash.shape == (2, 3, 4, 5)
    assert (trace.logits[:, 0] == 0).all()
    assert torch.allclose(torch.softmax(trace.logits, dim=-1), c)
    _, c_ref = slow_routing(u_hat, 3)
    assert torch.allclose(c2, c_ref.to(c2.dtype), atol=1e-7)
    # each iteration's s is the coupling-weighted sum of the votes, and v is its squash
    assert torch.allclose(trace.pre_squash, torch.einsum("brij,bijd->brjd", c2, u_hat))
    assert torch.allclose(squash(trace.pre_squash[:, -1]), v)
    # the logits grow by the agreement with that iteration's v
    for r in range(2):
        agree = torch.einsum("bijd,bjd->bij", u_hat, squash(trace.pre_squash[:, r]))
        assert torch.allclose(trace.logits[:, r + 1] - trace.logits[:, r], agree)


def test_traced_forward_adds_fields_without_changing_the_result(untrained_model, images):
    with torch.no_grad():
        plain = untrained_model(images)
        traced = untrained_model(images, trace_routing=True)
    assert plain.votes is None and plain.projections is None
    with pytest.raises(ValueError, match="trace_routing"):
        plain.contributions
    for name in ("lengths", "poses", "couplings", "primary", "agreement", "reconstructions"):
        assert torch.allclose(getattr(plain, name), getattr(traced, name), atol=1e-6), name
    assert traced.votes.shape == (3, 1152, 10, 16)
    assert traced.logits.shape == (3, 3, 1152, 10)
    assert traced.pre_squash.shape == (3, 3, 10, 16)
    assert traced.projections.shape == traced.contributions.shape == (3, 3, 1152, 10)
    assert traced.uniform_lengths.shape == (3, 10)
    assert traced.blank_distance.shape == (3, 1152)
    assert torch.allclose(traced.votes, torch.einsum("ijdk,bik->bijd", untrained_model.W, traced.primary), atol=1e-6)


def test_vote_contributions_decompose_the_pre_squash_length(untrained_model, images):
    """sum_i c_ij (u_hat_j|i . v_j/|v_j|) = |s_j| for every digit capsule and iteration, and squash(|s_j|) = |v_j|."""
    with torch.no_grad():
        out = untrained_model(images, routing_iterations=4, trace_routing=True)
    a = out.contributions
    norms = out.pre_squash.norm(dim=-1)  # (B, r, 10)
    assert torch.allclose(a.sum(dim=2), norms, rtol=1e-4, atol=1e-6)
    assert torch.allclose(out.pre_squash_norms, norms[:, -1])
    n = out.pre_squash_norms
    assert torch.allclose(out.lengths, n**2 / (1 + n**2), rtol=1e-4, atol=1e-7)
    # contributions are signed: some votes point away from their digit capsule
    assert (a[:, -1] < 0).any() and (a[:, -1] > 0).any()
    # u_hat . v_hat is the vote's projection on v's direction
    v_hat = out.poses / out.poses.norm(dim=-1, keepdim=True)
    assert torch.allclose(out.projections[:, -1], torch.einsum("bijd,bjd->bij", out.votes, v_hat), atol=1e-5)


def test_uniform_lengths_are_routing_with_one_iteration(untrained_model, images):
    """Every coupling fixed at 0.1 is what one routing iteration does (the logits start at zero)."""
    with torch.no_grad():
        out = untrained_model(images, trace_routing=True)
        one = untrained_model(images, routing_iterations=1)
        v = squash(0.1 * out.votes.sum(dim=1))
    assert torch.allclose(out.uniform_lengths, one.lengths, atol=1e-6)
    assert torch.allclose(out.uniform_lengths, v.norm(dim=-1), atol=1e-6)


def test_blank_distance_is_the_change_from_a_blank_image(untrained_model, images):
    blank = torch.zeros(1, 1, 28, 28)
    with torch.no_grad():
        out = untrained_model(torch.cat([images, blank]), trace_routing=True)
        u_blank = untrained_model.primary_capsules(blank)[0]
    assert torch.allclose(out.blank_distance[-1], torch.zeros(1152), atol=1e-6)
    assert torch.allclose(out.blank_distance[:-1], (out.primary[:-1] - u_blank).norm(dim=-1), atol=1e-6)
    # the cache follows the weights
    m = CapsNet().eval()
    first = m.blank_primary().clone()
    with torch.no_grad():
        m.primary_caps.bias.add_(1.0)
    assert not torch.allclose(m.blank_primary(), first)


def _step_grads(net, forward, x, y):
    net.zero_grad(set_to_none=True)
    lengths, poses, recon, loss = forward(x, y)
    loss.backward()
    return (lengths, poses, recon, loss), {k: p.grad for k, p in net.named_parameters()}


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_training_step_matches_the_straightforward_reference(memory_format):
    """Whatever layout the speed work picks, outputs, loss and every gradient equal the plain implementation's."""
    from benchmarks.reference_capsnet import ReferenceCapsNet, reference_loss

    torch.manual_seed(0)
    net = CapsNet().to_memory_format(memory_format).train()
    ref = ReferenceCapsNet()
    ref.load_state_dict(net.state_dict())
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 3, 5, 7, 9, 1])

    def ours(x, y):
        out = net(x, y)
        return out.lengths, out.poses, out.reconstructions, capsule_loss(out, x, y)

    def plain(x, y):
        lengths, poses, recon = ref(x, y)
        return lengths, poses, recon, reference_loss(lengths, recon, x, y)

    a, ga = _step_grads(net, ours, x, y)
    b, gb = _step_grads(ref, plain, x, y)
    for t, u in zip(a, b):
        torch.testing.assert_close(t, u, rtol=1e-4, atol=1e-6)
    assert ga.keys() == gb.keys()
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], rtol=1e-3, atol=1e-7, msg=k)


def test_bf16_autocast_keeps_routing_and_lengths_in_float32():
    torch.manual_seed(0)
    net = CapsNet()
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([1, 2, 3, 4])
    full = net(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = net(x, y)
        loss = capsule_loss(half, x, y)
    assert half.lengths.dtype == half.poses.dtype == half.couplings.dtype == loss.dtype == torch.float32
    assert half.reconstructions.dtype == torch.bfloat16  # the decoder did run in bf16
    torch.testing.assert_close(half.lengths, full.lengths, rtol=0.05, atol=1e-3)
    loss.backward()
    assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all() for p in net.parameters())
