"""CUT and FastCUT: the PatchNCE loss and head, the recipes on the shared engine, the one-sided model and the CLI."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from synthaug.cli import build_parser, main
from synthaug.data import from_arrays
from synthaug.models import ClassifierModel, TranslatorModel, load_model
from synthaug.nets import create_net
from synthaug.nets.patchnce import PatchProjector, patch_nce_loss, sample_patches
from synthaug.train import CUTConfig, CUTRecipe, FastCUTConfig, FastCUTRecipe, Trainer, read_metrics

TINY_G = {"ngf": 8, "n_blocks": 2}
TINY_D = {"ndf": 8, "n_layers": 2}
LAYERS = ("input", "down1", "down2", "block1", "block2")
TINY_CLF = {"width": 4, "max_steps": 20, "batch_size": 8, "eval_every": 10, "patience": None}
SIZE = 16


def domains(n=12, labelled=False):
    """A: class 0 = bright left half, class 1 = bright right half on dark; B: the inverted images, shuffled."""
    rng = np.random.default_rng(0)
    a = rng.uniform(0.0, 0.2, size=(n, SIZE, SIZE, 1)).astype(np.float32)
    y = np.arange(n) % 2
    a[y == 0, :, : SIZE // 2] += 0.7
    a[y == 1, :, SIZE // 2:] += 0.7
    b = (1.0 - a)[rng.permutation(n)]
    extra = {"labels": y, "class_names": ["left", "right"]} if labelled else {}
    return from_arrays(a, name="dark", **extra), from_arrays(b, name="light")


def recipe(cls=CUTRecipe, steps=6, seed=0, labelled=False, **kw):
    config_class = cls.config_class
    a, b = domains(labelled=labelled)
    cfg = config_class(steps=steps, g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D), nce_layers=LAYERS, **kw)
    return cls(a, b, cfg, device="cpu", seed=seed, names=("dark", "light"))


# ------------------------------------------------------------------------------------------ PatchNCE
def test_patch_nce_loss_rewards_matching_patches():
    g = torch.Generator().manual_seed(0)
    n, p, d = 2, 256, 256  # the default num_patches and mlp_dim
    k = torch.nn.functional.normalize(torch.randn(n, p, d, generator=g), dim=-1)
    same = patch_nce_loss(k, k)
    shuffled = patch_nce_loss(k, k[:, torch.randperm(p, generator=g)])
    assert same < 0.2 * shuffled
    q = torch.nn.functional.normalize(torch.randn(n, p, d, generator=g), dim=-1)
    assert abs(float(patch_nce_loss(q, k)) - math.log(p)) < 0.15 * math.log(p)  # chance: log(P)
    # negatives come from the same image only: the loss is the mean of the images' own losses
    other = k.clone()
    other[1] = torch.nn.functional.normalize(torch.randn(p, d, generator=g), dim=-1)
    per_image = (patch_nce_loss(k[:1], other[:1]) + patch_nce_loss(k[1:], other[1:])) / 2
    assert torch.allclose(patch_nce_loss(k, other), per_image)
    with pytest.raises(ValueError, match="key: expected the shape of query"):
        patch_nce_loss(q, k[:, :10])


def test_patch_sampling_and_projection_reach_the_generator():
    torch.manual_seed(0)
    g = create_net("resnet", in_channels=1, out_channels=1, **TINY_G)
    assert g.feature_layers == ["input", "stem", "down1", "down2", "block1", "block2"]
    x = torch.rand(2, 1, SIZE, SIZE) * 2 - 1
    maps = g.features(x, list(LAYERS))
    assert [tuple(m.shape) for m in maps] == [(2, 1, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4), (2, 32, 4, 4),
                                               (2, 32, 4, 4)]
    assert torch.equal(g.features(x, ["block2"])[0], g.model[:12](x))  # the net's own layers, not a copy
    with pytest.raises(ValueError, match="layers: expected names among .*found \\['block5'\\]"):
        g.features(x, ["input", "block5"])
    positions = sample_patches(maps, 32, torch.Generator().manual_seed(1))
    assert [len(p) for p in positions] == [32, 32, 16, 16, 16]  # all positions of the 4x4 maps
    assert all(len(set(p.tolist())) == len(p) for p in positions)
    head = PatchProjector([m.shape[1] for m in maps], dim=8)
    feats = head(g.features(g(x), list(LAYERS)), positions)
    assert [tuple(f.shape) for f in feats] == [(2, 32, 8), (2, 32, 8), (2, 16, 8), (2, 16, 8), (2, 16, 8)]
    assert torch.allclose(feats[0].norm(dim=-1), torch.ones(2, 32))
    with torch.no_grad():
        keys = head(maps, positions)
    torch.stack([patch_nce_loss(q, k) for q, k in zip(feats, keys)]).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.model[1].parameters())
    assert all(p.grad is not None for p in head.parameters())


# ------------------------------------------------------------------------------------------ recipes
def test_cut_trains_exports_a_one_sided_model_and_translates(tmp_path):
    r = recipe(steps=4)
    assert set(r.nets) == {"G_A2B", "D_B", "F"}
    assert {id(p) for p in r.nets["F"].parameters()} <= {id(p) for g in r.optimizers["G"].param_groups
                                                        for p in g["params"]}
    res = Trainer(r, tmp_path / "cut", log_every=1, sample_every=4, progress=False).fit()
    rows = read_metrics(res.metrics_path)
    assert set(rows[0]) >= {"g_adv", "nce", "nce_idt", "d_loss", "lr"} and "task" not in rows[0]
    assert (tmp_path / "cut/samples/step_0000004.png").is_file()
    cfg = json.loads((res.model_dir / "config.json").read_text())
    assert cfg["kind"] == "cut" and sorted(cfg["nets"]) == ["G_A2B"] and cfg["domains"] == ["dark", "light"]
    assert cfg["train"]["nce_layers"] == list(LAYERS) and cfg["train"]["num_patches"] == 256
    assert sorted(p.name for p in res.model_dir.glob("*.safetensors")) == ["G_A2B.safetensors"]
    model = load_model(res.model_dir)
    assert isinstance(model, TranslatorModel) and model.directions() == ["A2B"]
    out = model.translate(torch.rand(3, 1, 40, 40) * 2 - 1)
    assert out.shape == (3, 1, 40, 40) and out.min() >= -1 and out.max() <= 1
    assert torch.equal(model.translate(r.A[:2]), r.nets["G_A2B"].eval()(r.A[:2]).clamp(-1, 1))
    with pytest.raises(ValueError, match="direction: this 'cut' translator is one-sided \\(A2B only\\), found 'B2A'"):
        model.translate(r.B[:2], direction="B2A")
    from synthaug.augment import GANTransform  # the translator transforms take it as they take a CycleGAN

    img = torch.randint(0, 256, (1, 24, 24), dtype=torch.uint8)
    assert GANTransform(str(res.model_dir), p=1.0)(img).shape == (1, 24, 24)
    with pytest.raises(ValueError, match="direction: this 'cut' translator is one-sided \\(A2B only\\), found 'B2A'"):
        GANTransform(str(res.model_dir), direction="B2A")


def test_nce_loss_decreases_on_a_fixed_batch():
    r = recipe(steps=40)
    x = r.A[:4]

    def nce():
        with torch.no_grad():
            return float(r._nce(x, r.nets["G_A2B"](x), False, torch.Generator().manual_seed(0)))

    before = nce()
    for step in range(10):
        r.train_step(step)
    assert nce() < 0.7 * before


def test_cut_is_deterministic_under_a_seed(weights_hash):
    runs = []
    for seed in (0, 0, 1):
        r = recipe(FastCUTRecipe, seed=seed)
        losses = [r.train_step(s) for s in range(3)]
        runs.append((weights_hash(r.nets), losses))
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[2][0]


@pytest.mark.parametrize("cls,kw", [(CUTRecipe, {}), (FastCUTRecipe, {"lambda_task": 1.0, "task_start_step": 2,
                                                                       "task_classifier": TINY_CLF})])
def test_resume_is_bit_exact(tmp_path, cls, kw, weights_hash, strip, kill_at):
    labelled = bool(kw)
    full_recipe = recipe(cls, labelled=labelled, **kw)
    full = Trainer(full_recipe, tmp_path / "full", log_every=1, ckpt_every=3, progress=False).fit()
    kill_at(Trainer(recipe(cls, labelled=labelled, **kw), tmp_path / "half", log_every=1, ckpt_every=3,
                    progress=False), 4)
    resumed_recipe = recipe(cls, labelled=labelled, **kw)
    resumed = Trainer(resumed_recipe, tmp_path / "half", log_every=1, ckpt_every=3, progress=False).fit()
    assert weights_hash(resumed_recipe.nets) == weights_hash(full_recipe.nets)  # F included
    assert strip(read_metrics(resumed.metrics_path)) == strip(read_metrics(full.metrics_path))


def test_fastcut_preset():
    fast, cut = FastCUTConfig(), CUTConfig()
    assert (fast.lambda_nce, fast.nce_idt, fast.flip_equivariance) == (10.0, False, True)
    assert (cut.lambda_gan, cut.lambda_nce, cut.nce_idt, cut.flip_equivariance) == (1.0, 1.0, True, False)
    for c in (fast, cut):
        assert (c.loss, c.num_patches, c.nce_temperature, c.mlp_dim, c.batch_size, c.lr, c.betas) == \
            ("lsgan", 256, 0.07, 256, 1, 2e-4, (0.5, 0.999))
        assert c.nce_layers == ("input", "down1", "down2", "block1", "block5")
    r = recipe(FastCUTRecipe, steps=8)
    assert isinstance(r.config, FastCUTConfig) and r.name == "fastcut"
    decay = r.schedulers["G"].lr_lambdas[0]
    assert [decay(s) for s in (5, 6, 7, 8)] == [1.0, 1.0, 0.5, 0.0]  # the last quarter, as the paper's 150 + 50
    decay = recipe(steps=8).schedulers["G"].lr_lambdas[0]
    assert [decay(s) for s in (3, 4, 5)] == [1.0, 1.0, 0.75]
    assert "nce_idt" not in r.train_step(0)


def test_task_loss_with_cut_is_recorded_and_the_model_carries_the_classifier(tmp_path, weights_hash):
    r = recipe(steps=3, labelled=True, lambda_task=1.0, task_start_step=1, task_classifier=dict(TINY_CLF))
    res = Trainer(r, tmp_path / "run", log_every=1, progress=False).fit()
    task = [row["task"] for row in read_metrics(res.metrics_path)]
    assert task[0] == 0.0 and all(t > 0 for t in task[1:])
    cfg = json.loads((res.model_dir / "config.json").read_text())
    assert cfg["train"]["lambda_task"] == 1.0 and cfg["train"]["task_classifier"] == TINY_CLF
    assert cfg["task_consistency"]["source_domain"] == "dark" and cfg["task_consistency"]["active"] is True
    model = load_model(res.model_dir)
    assert isinstance(model.task_classifier, ClassifierModel) and model.task_classifier.class_names == ["left", "right"]
    assert weights_hash({"f": model.task_classifier.net}) == weights_hash({"f": r.task.net})
    kept, _, report = model.translate_labelled(r.A, torch.arange(12) % 2)
    assert report["checked"] == 12 and len(kept) == report["kept"]
    plain = json.loads((Trainer(recipe(steps=1), tmp_path / "plain", progress=False).fit().model_dir
                        / "config.json").read_text())
    assert "task_consistency" not in plain and "lambda_task" not in plain["train"]


def test_bad_config_values_name_the_field():
    a, b = domains()
    for bad, match in (({"num_patches": 0}, "num_patches: expected an int >= 1"),
                       ({"nce_layers": ("input", "block9")}, r"nce_layers: expected names among .*found \['block9'\]"),
                       ({"nce_layers": ()}, "nce_layers: expected a non-empty list"),
                       ({"nce_layers": ("input", "input")}, "nce_layers: expected a non-empty list of distinct"),
                       ({"lambda_nce": 0.0}, "lambda_nce: expected a weight > 0"),
                       ({"nce_temperature": 0}, "nce_temperature: expected a float > 0"),
                       ({"mlp_dim": 0}, "mlp_dim: expected an int >= 1"),
                       ({"generator": "unet"},
                        r"generator: expected a translator with encoder features.*\['resnet', 'lptn'\]"),
                       ({"lambda_task": -1.0}, "lambda_task: expected a weight >= 0")):
        cfg = {"nce_layers": LAYERS, **bad}
        with pytest.raises(ValueError, match=match):
            CUTRecipe(a, b, CUTConfig(g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D), **cfg), device="cpu")
    with pytest.raises(ValueError, match=r"nce_layers: .*found \['block5'\]"):  # the default needs 5 blocks
        CUTRecipe(a, b, CUTConfig(g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D)), device="cpu")
    with pytest.raises(ValueError, match="same channel count in A and B.*A=1 and B=3"):
        CUTRecipe(a, from_arrays(np.zeros((4, SIZE, SIZE, 3), np.float32)), device="cpu")


# ------------------------------------------------------------------------------------------------ CLI
def _write_folder(folder, arrays):
    folder.mkdir(parents=True)
    for i, arr in enumerate(arrays):
        Image.fromarray((np.clip(arr[..., 0], 0, 1) * 255).astype(np.uint8)).save(folder / f"{i:03d}.png")


def test_cli_cut_train_and_translate(tmp_path, capsys):
    parser = build_parser()
    fast = parser.parse_args(["train", "fastcut", "--a", "x", "--b", "y", "--out", "o"])
    assert (fast.lambda_nce, fast.nce_idt, fast.flip_equivariance, fast.batch_size) == (10.0, False, True, 1)
    cut = parser.parse_args(["train", "cut", "--a", "x", "--b", "y", "--out", "o", "--no-nce-idt"])
    assert (cut.lambda_nce, cut.nce_idt, cut.nce_layers) == (1.0, False, None)  # None: the config's, for resnet

    rng = np.random.default_rng(1)
    _write_folder(tmp_path / "A", rng.uniform(0, 0.4, (6, SIZE, SIZE, 1)))
    _write_folder(tmp_path / "B", rng.uniform(0.6, 1, (6, SIZE, SIZE, 1)))
    common = ["--a", str(tmp_path / "A"), "--b", str(tmp_path / "B"), "--size", str(SIZE), "--channels", "1",
              "--steps", "2", "--no-progress", "--g-kwargs", json.dumps(TINY_G), "--d-kwargs", json.dumps(TINY_D)]
    for name in ("cut", "fastcut"):
        out = tmp_path / name
        assert main(["train", name, "--out", str(out), "--nce-layers", ",".join(LAYERS), *common]) == 0
        cfg = json.loads((out / "model" / "config.json").read_text())
        assert cfg["kind"] == name and cfg["train"]["nce_idt"] is (name == "cut")
    assert main(["translate", str(tmp_path / "cut" / "model"), "--in", str(tmp_path / "A"),
                 "--out", str(tmp_path / "AB")]) == 0
    outs = sorted((tmp_path / "AB").glob("*.png"))
    assert len(outs) == 6 and Image.open(outs[0]).size == (SIZE, SIZE)
    capsys.readouterr()
    assert main(["translate", str(tmp_path / "fastcut" / "model"), "--in", str(tmp_path / "B"), "--direction", "B2A",
                 "--out", str(tmp_path / "BA")]) == 2
    assert "one-sided" in capsys.readouterr().err
    assert main(["train", "cut", "--out", str(tmp_path / "bad"), *common]) == 2  # default layers need 5 blocks
    assert "nce_layers: expected names among" in capsys.readouterr().err


def test_cli_lptn_without_nce_layers_names_its_maps_not_unpassed_ones(tmp_path, capsys):
    """Issue 32: ``fastcut --arch lptn`` without ``--nce-layers`` reported the ResNet default as layers "found"."""
    rng = np.random.default_rng(1)
    _write_folder(tmp_path / "A", rng.uniform(0, 0.4, (4, SIZE, SIZE, 1)))
    _write_folder(tmp_path / "B", rng.uniform(0.6, 1, (4, SIZE, SIZE, 1)))
    common = ["--a", str(tmp_path / "A"), "--b", str(tmp_path / "B"), "--size", str(SIZE), "--channels", "1",
              "--steps", "1", "--no-progress", "--arch", "lptn", "--out", str(tmp_path / "run"),
              "--d-kwargs", json.dumps(TINY_D)]
    assert main(["train", "fastcut", *common]) == 2
    err = capsys.readouterr().err
    assert ("--nce-layers: expected the lptn generator's maps for PatchNCE, found none given (the default "
            "input,down1,down2,block1,block5 names maps of the resnet generator); its maps are low, stem, block1"
            in err and "e.g. --nce-layers low,stem,block1,block2" in err)
    assert "found ['input'" not in err and not (tmp_path / "run").exists()  # refused before loading or training
    assert main(["train", "fastcut", *common, "--nce-layers", "low,stem,block1"]) == 0
    assert json.loads((tmp_path / "run" / "model" / "config.json").read_text())["train"]["nce_layers"] == \
        ["low", "stem", "block1"]


def test_noise_translator_trains_resumes_exactly_and_translates_by_seed(tmp_path, weights_hash, strip, kill_at):
    g = {**TINY_G, "noise_dim": 4, "noise_maps": 1}

    def noisy():
        a, b = domains()
        cfg = FastCUTConfig(steps=6, g_kwargs=dict(g), d_kwargs=dict(TINY_D), nce_layers=LAYERS)
        return FastCUTRecipe(a, b, cfg, device="cpu", seed=0, names=("dark", "light"))

    full_recipe = noisy()
    full = Trainer(full_recipe, tmp_path / "full", log_every=1, ckpt_every=3, progress=False).fit()
    kill_at(Trainer(noisy(), tmp_path / "half", log_every=1, ckpt_every=3, progress=False), 4)
    resumed_recipe = noisy()
    resumed = Trainer(resumed_recipe, tmp_path / "half", log_every=1, ckpt_every=3, progress=False).fit()
    assert weights_hash(resumed_recipe.nets) == weights_hash(full_recipe.nets)  # the noise draws resume too
    assert strip(read_metrics(resumed.metrics_path)) == strip(read_metrics(full.metrics_path))
    m = TranslatorModel.from_pretrained(full.model_dir)
    x = domains()[0].images
    one = m.translate(x, seed=3, batch_size=4)
    assert torch.equal(one, m.translate(x, seed=3, batch_size=12))  # the seed, not the batching, fixes the noise
    assert not torch.equal(one, m.translate(x, seed=4))
    assert m.nets["G_A2B"].spec["kwargs"]["noise_dim"] == 4


def test_mode_seeking_term_needs_noise_and_spreads_the_translations():
    a, b = domains()
    g = {**TINY_G, "noise_dim": 4, "noise_maps": 1}

    def run(div):
        cfg = FastCUTConfig(steps=30, g_kwargs=dict(g), d_kwargs=dict(TINY_D), nce_layers=LAYERS, batch_size=4,
                            lambda_diversity=div)
        r = FastCUTRecipe(a, b, cfg, device="cpu", seed=0, names=("dark", "light"))
        logs = [r.train_step(s) for s in range(30)]
        gen = r.nets["G_A2B"].eval()
        with torch.no_grad():
            x = a.images[:6]
            n1, n2 = (gen.make_noise(6, SIZE, SIZE, torch.Generator().manual_seed(s)) for s in (1, 2))
            spread = (gen(x, n1) - gen(x, n2)).abs().mean().item()
        return r, logs, spread

    r, logs, spread_on = run(2.0)
    assert all("diversity" in m and math.isfinite(m["diversity"]) for m in logs)
    assert "lambda_diversity" in r.config_dict()
    r0, logs0, spread_off = run(0.0)
    assert "diversity" not in logs0[0] and "lambda_diversity" not in r0.config_dict()
    assert spread_on > spread_off  # the term makes the noise matter
    cfg = FastCUTConfig(steps=2, g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D), nce_layers=LAYERS, lambda_diversity=1)
    with pytest.raises(ValueError, match="lambda_diversity: needs a generator with noise inputs"):
        FastCUTRecipe(a, b, cfg, device="cpu", seed=0)
