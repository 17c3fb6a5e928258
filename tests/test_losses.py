"""GAN objectives and gradient penalties."""

import math

import pytest
import torch

from synthaug.losses import MODES, GANLoss, gradient_penalty, r1_penalty


def test_mode_names():
    assert MODES == ("minimax", "nonsaturating", "hinge", "lsgan", "wgan")
    with pytest.raises(ValueError, match=r"mode: expected one of .*found 'vanilla'"):
        GANLoss("vanilla")


@pytest.mark.parametrize("mode", MODES)
def test_d_loss_prefers_high_real_low_fake(mode):
    loss = GANLoss(mode)
    good = loss.d_loss(torch.full((8,), 2.0), torch.full((8,), -2.0))
    bad = loss.d_loss(torch.full((8,), -2.0), torch.full((8,), 2.0))
    assert good.ndim == 0 and torch.isfinite(good) and good < bad


@pytest.mark.parametrize("mode", MODES)
def test_g_loss_decreases_as_fake_logits_rise(mode):
    loss = GANLoss(mode)
    values = [loss.g_loss(torch.full((4, 1, 3, 3), v)).item() for v in (-2.0, -0.5, 0.5, 0.9)]
    assert all(a > b for a, b in zip(values, values[1:])), values


@pytest.mark.parametrize("mode", MODES)
def test_patch_maps_and_lists(mode):
    loss = GANLoss(mode)
    real, fake = torch.randn(2, 1, 6, 6), torch.randn(2, 1, 6, 6)
    real2, fake2 = torch.randn(2, 1, 3, 3), torch.randn(2, 1, 3, 3)
    both = loss.d_loss([real, real2], [fake, fake2])
    assert torch.allclose(both, (loss.d_loss(real, fake) + loss.d_loss(real2, fake2)) / 2)
    assert torch.allclose(loss.g_loss([fake, fake2]), (loss.g_loss(fake) + loss.g_loss(fake2)) / 2)
    with pytest.raises(ValueError, match="fake_logits: expected as many tensors"):
        loss.d_loss([real, real2], [fake])


def test_known_values():
    r, f = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.5])
    sp = torch.nn.functional.softplus
    assert torch.isclose(GANLoss("hinge").d_loss(r, f), torch.tensor(0.0 + 0.75))
    assert torch.isclose(GANLoss("hinge").g_loss(f), torch.tensor(0.25))
    assert torch.isclose(GANLoss("wgan").d_loss(r, f), torch.tensor(-0.25 - 2.0))
    assert torch.isclose(GANLoss("lsgan").d_loss(r, f), torch.tensor(2.0 + 0.625))
    assert torch.isclose(GANLoss("lsgan").g_loss(f), torch.tensor((4 + 0.25) / 2))
    assert torch.isclose(GANLoss("nonsaturating").d_loss(r, f), sp(-r).mean() + sp(f).mean())
    assert torch.isclose(GANLoss("nonsaturating").g_loss(f), sp(-f).mean())
    assert torch.isclose(GANLoss("minimax").g_loss(f), torch.log(1 - torch.sigmoid(f)).mean())


@pytest.mark.parametrize("mode", ["minimax", "nonsaturating", "lsgan"])
def test_label_smoothing(mode):
    loss = GANLoss(mode)
    real, fake = torch.full((4,), 3.0), torch.full((4,), -3.0)
    assert loss.d_loss(real, fake, label_smoothing=0.1) > loss.d_loss(real, fake)
    if mode == "minimax":  # target 0.9 for reals: BCE(3, 0.9)
        sig = torch.sigmoid(torch.tensor(3.0)).item()
        expected = -(0.9 * math.log(sig) + 0.1 * math.log(1 - sig))
        fake_term = torch.nn.functional.softplus(torch.tensor(-3.0)).item()
        assert math.isclose(loss.d_loss(real, fake, 0.1).item(), expected + fake_term, rel_tol=1e-5)
    with pytest.raises(ValueError, match="label_smoothing: expected a float in"):
        loss.d_loss(real, fake, label_smoothing=1.0)


@pytest.mark.parametrize("mode", ["hinge", "wgan"])
def test_label_smoothing_rejected(mode):
    with pytest.raises(ValueError, match=f"label_smoothing: expected 0 for mode '{mode}'"):
        GANLoss(mode).d_loss(torch.ones(2), torch.zeros(2), label_smoothing=0.1)


def test_losses_are_float32_for_half_logits():
    half = dict(dtype=torch.bfloat16)
    out = GANLoss("nonsaturating").d_loss(torch.ones(4, **half), torch.zeros(4, **half))
    assert out.dtype == torch.float32


def _linear_critic(weight):
    return lambda x: (x * weight).flatten(1).sum(dim=1)


def test_gradient_penalty_zero_for_unit_gradient_critic():
    torch.manual_seed(0)
    w = torch.randn(1, 3, 8, 8)
    real, fake = torch.randn(5, 3, 8, 8), torch.randn(5, 3, 8, 8)
    gp = gradient_penalty(_linear_critic(w / w.norm()), real, fake)
    assert gp.item() < 1e-8
    gp2 = gradient_penalty(_linear_critic(2 * w / w.norm()), real, fake)
    assert math.isclose(gp2.item(), 1.0, rel_tol=1e-4)  # (||grad|| - 1)^2 = 1


def test_gradient_penalty_trains_the_critic():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 1, 3)
    real, fake = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    gp = gradient_penalty(lambda x: conv(x).tanh().mean(dim=(1, 2, 3)), real, fake)
    assert gp.item() > 0
    gp.backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="fake: expected the shape of real"):
        gradient_penalty(lambda x: x.sum(), torch.randn(4, 1, 8, 8), torch.randn(3, 1, 8, 8))


def test_gradient_penalty_accepts_list_outputs_and_autocast():
    w = torch.ones(1, 1, 4, 4) / 4
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp = gradient_penalty(lambda x: [(x * w).flatten(1).sum(1), 0 * x.sum()], torch.randn(3, 1, 4, 4),
                              torch.randn(3, 1, 4, 4))
    assert gp.dtype == torch.float32 and gp.item() < 1e-8


def test_r1_penalty_known_function():
    x = torch.randn(6, 2, 4, 4, requires_grad=True)
    logits = (x**2).flatten(1).sum(dim=1)  # grad = 2x, so penalty = mean_i 4 ||x_i||^2
    expected = (4 * x.detach().flatten(1).pow(2).sum(1)).mean()
    r1 = r1_penalty(logits, x)
    assert torch.isclose(r1, expected)
    r1.backward()  # create_graph=True: the penalty is differentiable
    assert torch.allclose(x.grad, 8 * x.detach() / 6)
    with pytest.raises(ValueError, match="real_images: expected the D input with requires_grad=True"):
        r1_penalty(torch.zeros(2), torch.zeros(2, 1, 4, 4))
