"""The CPU speed options of the translation recipes: batched calls of per-sample nets, fused Adam, transposed-conv
upsampling and bfloat16 autocast give the update they replace (up to float rounding) and are recorded only when on."""

import pytest
import torch

from synthaug.nets.translators import ResnetGenerator
from synthaug.train import CycleGANConfig, CycleGANRecipe, Trainer
from synthaug.train.recipe import cpu_has_bf16
from test_cut import recipe as cut_recipe
from test_translation import TINY_D, TINY_G, cyclegan, domains


@pytest.mark.parametrize("make", [cyclegan, cut_recipe])
def test_batched_calls_give_the_same_update(make):
    batched = make()
    assert all(batched._per_sample.values())  # instance norm: every net treats samples alone
    single = make()  # the same nets and state (seeded), calling every net once per input as with batch norm
    single._per_sample = {k: False for k in single._per_sample}
    for step in range(3):
        out_b, out_s = batched.train_step(step), single.train_step(step)
        for k in out_b:
            assert out_b[k] == pytest.approx(out_s[k], rel=1e-4, abs=1e-5), k
    for name, net in batched.nets.items():
        for (pn, p), q in zip(net.named_parameters(), single.nets[name].parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=f"{name}.{pn}")


def test_batch_norm_and_spectral_norm_nets_are_called_one_input_at_a_time():
    a, b = domains()
    cfg = CycleGANConfig(steps=6, g_kwargs={**TINY_G, "norm": "batch"}, d_kwargs={**TINY_D, "spectral_norm": True})
    r = CycleGANRecipe(a, b, cfg, device="cpu", seed=0)
    assert not r._per_sample["G_A2B"] and not r._per_sample["D_A"]
    calls = []
    r.nets["D_A"].register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    r.train_step(0)
    assert calls == [1, 1, 1]  # fake in the G step, then real and pooled fake separately


def test_optimisers_use_the_fused_adam_kernel():
    r = cyclegan()
    assert all(o.param_groups[0]["fused"] for o in r.optimizers.values())


def test_transposed_upsampling_matches_the_reference_layout():
    near = ResnetGenerator(3, 3, ngf=8, n_blocks=2)
    trans = ResnetGenerator(3, 3, ngf=8, n_blocks=2, upsample="transposed")
    assert sum(p.numel() for p in near.parameters()) == sum(p.numel() for p in trans.parameters())
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in trans.modules()) == 2
    x = torch.rand(2, 3, 24, 24) * 2 - 1
    y = trans(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert trans.spec["kwargs"]["upsample"] == "transposed"
    with pytest.raises(ValueError, match="upsample"):
        ResnetGenerator(upsample="bilinear")


def test_cpu_bf16_is_recorded_only_when_on(tmp_path):
    assert "cpu_bf16" not in cyclegan().config_dict()
    r = cyclegan(cpu_bf16=True)
    assert r.config_dict()["cpu_bf16"] is True
    assert r.cpu_bf16 == cpu_has_bf16()
    if not cpu_has_bf16():
        pytest.skip("this CPU has no native bf16: the option is ignored")
    with r.autocast():
        assert r.nets["G_A2B"](r.A[:1]).dtype == torch.bfloat16
    res = Trainer(r, tmp_path / "bf16", 6, log_every=1, progress=False).fit()
    assert res.model_dir is not None
    with pytest.raises(ValueError, match="cpu_bf16"):  # a bf16 run resumes only as one
        Trainer(cyclegan(steps=8), tmp_path / "bf16", 8, progress=False).fit()
