"""DiffAugment and the adaptive augmentation strength."""

import json

import pytest
import torch

from synthaug.diffaug import POLICIES, AdaptiveAugment, diff_augment

ALL = "color,translation,cutout"


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("policy", [ALL, "color", "translation", "cutout", "brightness,contrast"])
def test_shape_and_dtype_preserved(channels, policy):
    x = torch.rand(4, channels, 28, 28) * 2 - 1
    out = diff_augment(x, policy, generator=gen())
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.equal(out, x)


def test_p_zero_and_empty_policy_are_identity():
    x = torch.randn(4, 3, 16, 16)
    assert torch.equal(diff_augment(x, ALL, p=0.0, generator=gen()), x)
    assert torch.equal(diff_augment(x, "", generator=gen()), x)


def test_partial_p_leaves_some_samples_untouched():
    x = torch.randn(200, 1, 16, 16)
    out = diff_augment(x, "brightness", p=0.3, generator=gen(1))
    untouched = (out == x).flatten(1).all(dim=1).float().mean().item()
    assert 0.55 < untouched < 0.85


def test_gradients_flow_to_input():
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    diff_augment(x, ALL, generator=gen()).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # cutout zeros a square and translation fills with zeros: those pixels get no gradient
    y = torch.randn(4, 1, 16, 16, requires_grad=True)
    diff_augment(y, "cutout", generator=gen()).sum().backward()
    zero_grad = (y.grad == 0).flatten(1).sum(1)
    assert ((zero_grad > 0) & (zero_grad <= 64)).all()  # an 8x8 square, clipped at the borders


def test_deterministic_under_generator_and_global_seed():
    x = torch.randn(8, 3, 32, 32)
    a, b = (diff_augment(x, ALL, p=0.5, generator=gen(3)) for _ in range(2))
    assert torch.equal(a, b)
    assert not torch.equal(diff_augment(x, ALL, generator=gen(3)), diff_augment(x, ALL, generator=gen(4)))
    torch.manual_seed(5)
    a = diff_augment(x, ALL)
    torch.manual_seed(5)
    assert torch.equal(a, diff_augment(x, ALL))


def test_translation_is_an_integer_shift_with_zero_fill():
    x = torch.arange(1, 17, dtype=torch.float32).view(1, 1, 4, 4).repeat(64, 1, 1, 1)
    out = diff_augment(x, "translation", generator=gen())
    for img in out[:, 0]:
        vals = img[img != 0]
        assert set(vals.tolist()) <= set(range(1, 17))  # values are moved, not blended
        assert vals.numel() >= 9  # a shift of at most 1 px (1/8 of 4, rounded) per axis keeps >= 3x3


def test_cutout_zeroes_a_half_size_square():
    x = torch.ones(32, 1, 16, 16)
    out = diff_augment(x, "cutout", generator=gen())
    zeros = (out == 0).flatten(1).sum(1)
    assert (zeros <= 64).all() and (zeros > 0).all() and (zeros == 64).any()


def test_one_channel_skips_saturation():
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(diff_augment(x, "saturation", generator=gen()), x)
    assert not torch.equal(diff_augment(x, "color", generator=gen()), x)


def test_bad_arguments():
    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"policy: expected names from \[.*'color'.*\], found \['colour'\]"):
        diff_augment(x, "colour,translation")
    with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\]"):
        diff_augment(x, ALL, p=1.5)
    with pytest.raises(ValueError, match=r"x: expected a 4-D batch"):
        diff_augment(torch.randn(1, 8, 8), ALL)
    assert set(POLICIES) >= {"color", "translation", "cutout"}


def test_adaptive_augment_follows_overfitting_sign():
    ada = AdaptiveAugment(target=0.6, speed=0.1, interval=2)
    assert ada.p == 0.0
    for _ in range(4):
        ada.update(torch.full((8,), 3.0))  # D overconfident on reals: r_t = 1 > 0.6
    assert ada.r_t == 1.0 and ada.p == pytest.approx(0.2)
    for _ in range(20):
        ada.update(torch.ones(8))
    assert ada.p == 1.0  # clamped
    for _ in range(4):
        ada.update(torch.full((8,), -1.0))  # r_t = -1 < 0.6
    assert ada.r_t == -1.0 and ada.p == pytest.approx(0.8)
    ada.update(torch.full((8,), 1.0))  # only one call of the interval: no change yet
    assert ada.p == pytest.approx(0.8)


def test_adaptive_augment_lowers_p_and_state_round_trip():
    ada = AdaptiveAugment(p_init=0.5, speed=0.05, interval=4)
    for _ in range(8):
        ada.update([torch.full((2, 1, 3, 3), -0.5)])  # lists (multi-scale) accepted
    assert ada.p == pytest.approx(0.4)
    ada.update(torch.ones(4))
    state = json.loads(json.dumps(ada.state_dict()))  # plain numbers only
    other = AdaptiveAugment()
    other.load_state_dict(state)
    assert other.state_dict() == ada.state_dict()
    for a in (ada, other):
        for _ in range(3):
            a.update(torch.ones(4))
    assert other.p == ada.p and other.r_t == ada.r_t == 1.0


def test_adaptive_augment_bad_arguments():
    with pytest.raises(ValueError, match="target"):
        AdaptiveAugment(target=1.5)
    with pytest.raises(ValueError, match="interval"):
        AdaptiveAugment(interval=0)
    with pytest.raises(ValueError, match="p_init"):
        AdaptiveAugment(p_init=-0.1)
