"""Task consistency for unpaired translation (CyCADA) and the label-checked filtering of translations."""

import json
import random

import numpy as np
import pytest
import torch
from PIL import Image

from synthaug.augment import translated_dataset
from synthaug.data import from_arrays
from synthaug.models import ClassifierModel, TranslatorModel, load_model
from synthaug.train import CycleGANConfig, CycleGANRecipe, Trainer, read_metrics

TINY_G = {"ngf": 4, "n_blocks": 1}
TINY_D = {"ndf": 4, "n_layers": 2}
TINY_CLF = {"width": 4, "max_steps": 20, "batch_size": 8, "eval_every": 10, "patience": None}
SIZE = 16


def labelled_domains(n=16, seed=0):
    """A: class 0 = bright left half, class 1 = bright right half (labelled); B: the inverted images, shuffled."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.0, 0.2, size=(n, SIZE, SIZE, 1)).astype(np.float32)
    y = np.arange(n) % 2
    a[y == 0, :, : SIZE // 2] += 0.7
    a[y == 1, :, SIZE // 2:] += 0.7
    b = (1.0 - a)[rng.permutation(n)]
    return (from_arrays(a, labels=y, class_names=["left", "right"], name="dark"),
            from_arrays(b, name="light"))


def config(steps=6, **kw):
    kw.setdefault("lambda_task", 1.0)
    if kw["lambda_task"] > 0:
        kw.setdefault("task_classifier", dict(TINY_CLF))
    return CycleGANConfig(steps=steps, g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D), pool_size=4, **kw)


def recipe(steps=6, seed=0, given=None, **kw):
    """A tiny task-loss CycleGAN; ``given``: a classifier to use instead of training one."""
    a, b = labelled_domains()
    if given is not None:
        kw.setdefault("task_classifier", None)
    return CycleGANRecipe(a, b, config(steps, **kw), device="cpu", seed=seed, names=("dark", "light"),
                          task_classifier=given)


def constant_classifier(cls=0, k=2):
    """A small_cnn that always answers ``cls`` (accuracy on the balanced source: exactly 1/2)."""
    from synthaug.eval.classifier import build_classifier

    net = build_classifier("small_cnn", 1, k, SIZE, width=4)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        net.head.bias[cls] = 1.0
    return net


# ------------------------------------------------------------------------------------------ the loss
def test_task_term_is_zero_before_the_start_step_and_positive_after(tmp_path):
    r = recipe(steps=6, task_start_step=3)
    assert r.task.info["accuracy_on"] == "held_out" and 0 <= r.task.info["accuracy"] <= 1
    assert r.task.target_labels.shape == (16,) and r.task.target_labels.dtype == torch.int64
    rows = read_metrics(Trainer(r, tmp_path / "run", 6, log_every=1, progress=False).fit().metrics_path)
    task = [row["task"] for row in rows]  # logged step s ran train_step(s - 1)
    assert task[:3] == [0.0, 0.0, 0.0]
    assert all(t > 0 for t in task[3:])
    # below the accuracy bar the term never switches on, and a warning says so
    with pytest.warns(UserWarning, match="task loss stays off: the task classifier's accuracy 0.500"):
        off = recipe(steps=2, given=constant_classifier(), task_min_accuracy=0.6)
    assert off.task.info["accuracy"] == 0.5 and not off.task.reliable and not off.task.active(10**6)
    rows = read_metrics(Trainer(off, tmp_path / "off", 2, log_every=1, progress=False).fit().metrics_path)
    assert [row["task"] for row in rows] == [0.0, 0.0]
    assert json.loads((tmp_path / "off/model/config.json").read_text())["task_consistency"]["active"] is False


def test_task_loss_moves_the_generators_never_the_classifier(weights_hash):
    r = recipe(steps=6)
    before = {k: v.clone() for k, v in r.task.net.state_dict().items()}
    assert not any(p.requires_grad for p in r.task.net.parameters()) and not r.task.net.training
    # the gradient of the term reaches G_A2B through the frozen classifier
    a = r.A[:4]
    term = r.task.loss([(r.nets["G_A2B"](a), r.source_labels[:4])])
    term.backward()
    grads = [p.grad for p in r.nets["G_A2B"].parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in r.task.net.parameters())
    r.optimizers["G"].zero_grad(set_to_none=True)
    # one step with the term on differs from one with it off (same seed, same batches) in G only through the loss
    off = recipe(steps=6, task_start_step=100)
    r.train_step(0)
    off.train_step(0)
    assert weights_hash({"G": r.nets["G_A2B"]}) != weights_hash({"G": off.nets["G_A2B"]})
    for step in range(1, 3):
        r.train_step(step)
    after = r.task.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not r.task.net.training  # the recipe's train mode leaves it alone


def test_inactive_task_term_and_lambda_zero_train_bit_identically(tmp_path, weights_hash, strip):
    """lambda_task = 0 is today's training; a task recipe whose term never starts trains the same weights (building
    the classifier consumes no randomness of the run)."""
    def global_rngs_after(**kw):
        torch.manual_seed(123)
        random.seed(123)
        np.random.seed(123)
        built = recipe(steps=4, **kw)
        return built, (torch.random.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())

    plain, after_plain = global_rngs_after(lambda_task=0.0)
    res_plain = Trainer(plain, tmp_path / "plain", 4, log_every=1, progress=False).fit()
    idle, after_idle = global_rngs_after(task_start_step=10**6)
    # training the classifier left the global RNGs as the plain recipe leaves them
    assert torch.equal(after_idle[0], after_plain[0]) and after_idle[1] == after_plain[1]
    assert np.array_equal(after_idle[2], after_plain[2])
    torch.manual_seed(0)
    res_idle = Trainer(idle, tmp_path / "idle", 4, log_every=1, progress=False).fit()
    names = ["G_A2B", "G_B2A", "D_A", "D_B"]
    assert weights_hash({k: plain.nets[k] for k in names}) == weights_hash({k: idle.nets[k] for k in names})
    rows_plain = strip(read_metrics(res_plain.metrics_path))
    assert all("task" not in row for row in rows_plain)
    assert [{k: v for k, v in row.items() if k != "task"} for row in strip(read_metrics(res_idle.metrics_path))] \
        == rows_plain
    cfg = json.loads((res_plain.model_dir / "config.json").read_text())
    assert "task_consistency" not in cfg and not any(k.startswith(("lambda_task", "task_")) for k in cfg["train"])
    assert not (res_plain.model_dir / "task_classifier").exists()
    assert TranslatorModel.from_pretrained(res_plain.model_dir).task_classifier is None


def test_resume_with_the_task_loss_is_bit_exact(tmp_path, weights_hash, strip, kill_at):
    full_recipe = recipe(steps=6, task_start_step=2)
    full = Trainer(full_recipe, tmp_path / "full", 6, log_every=1, ckpt_every=3, progress=False).fit()
    # an interrupted run: the checkpoint of step 3 is the last one
    kill_at(Trainer(recipe(steps=6, task_start_step=2), tmp_path / "half", log_every=1, ckpt_every=3,
                    progress=False), 3)
    resumed_recipe = recipe(steps=6, task_start_step=2)
    with torch.no_grad():  # the checkpoint, not a re-trained classifier, decides what judges the translations
        for p in resumed_recipe.task.net.parameters():
            p.zero_()
    resumed_recipe.task.target_labels.zero_()
    resumed = Trainer(resumed_recipe, tmp_path / "half", 6, log_every=1, ckpt_every=3, progress=False).fit()
    assert weights_hash(resumed_recipe.nets) == weights_hash(full_recipe.nets)
    assert weights_hash({"f": resumed_recipe.task.net}) == weights_hash({"f": full_recipe.task.net})
    assert torch.equal(resumed_recipe.task.target_labels, full_recipe.task.target_labels)
    assert strip(read_metrics(resumed.metrics_path)) == strip(read_metrics(full.metrics_path))
    # a run with another target domain size refuses the checkpoint
    a, b = labelled_domains()
    other = CycleGANRecipe(a, b.subset(range(10)), config(6, task_start_step=2), device="cpu",
                           names=("dark", "light"))
    with pytest.raises(ValueError, match="over 10 images, found one over 16"):
        Trainer(other, tmp_path / "half", 6, progress=False).fit()
    with pytest.raises(ValueError, match="task pseudo-labels for 10 target images, found them for 16"):
        other.task.load_state_dict(full_recipe.task.state_dict())


def test_config_json_records_the_task_loss_and_the_model_carries_the_classifier(tmp_path, weights_hash):
    r = recipe(steps=2, task_start_step=1, task_min_accuracy=0.0)
    res = Trainer(r, tmp_path / "run", 2, progress=False).fit()
    cfg = json.loads((res.model_dir / "config.json").read_text())
    train = cfg["train"]
    assert train["lambda_task"] == 1.0 and train["task_start_step"] == 1 and train["task_min_accuracy"] == 0.0
    assert train["task_classifier"] == TINY_CLF
    task = cfg["task_consistency"]
    assert task["lambda_task"] == 1.0 and task["task_start_step"] == 1 and task["active"] is True
    assert task["source_domain"] == "dark" and task["class_names"] == ["left", "right"]
    clf = task["classifier"]
    assert clf["arch"] == "small_cnn" and clf["width"] == 4 and clf["max_steps"] == 20 and clf["source"] == "trained"
    assert clf["accuracy_on"] == "held_out" and clf["seed"] == 0
    assert sum(task["target_pseudo_labels_per_class"].values()) == 16
    model = load_model(res.model_dir)
    assert isinstance(model.task_classifier, ClassifierModel)
    assert model.task_classifier.class_names == ["left", "right"] and model.task_classifier.image_size == SIZE
    assert weights_hash({"f": model.task_classifier.net}) == weights_hash({"f": r.task.net})
    assert isinstance(load_model(res.model_dir / "task_classifier"), ClassifierModel)
    model.save_pretrained(tmp_path / "copy")  # the classifier travels with the translator
    again = TranslatorModel.from_pretrained(tmp_path / "copy")
    assert weights_hash({"f": again.task_classifier.net}) == weights_hash({"f": r.task.net})


def test_a_given_classifier_is_used_frozen_and_stored(tmp_path, weights_hash):
    from synthaug.eval.classifier import build_classifier

    torch.manual_seed(5)
    net = build_classifier("small_cnn", 1, 2, SIZE, width=4)
    original = {k: v.clone() for k, v in net.state_dict().items()}
    r = recipe(steps=2, given=net)
    assert r.task.settings["source"] == "given" and r.task.info["accuracy_on"] == "source"
    res = Trainer(r, tmp_path / "run", 2, progress=False).fit()
    assert all(torch.equal(original[k], v) for k, v in net.state_dict().items())
    assert all(p.requires_grad for p in net.parameters())  # the user's module is not frozen: a copy is
    stored = TranslatorModel.from_pretrained(res.model_dir).task_classifier
    assert weights_hash({"f": stored.net}) == weights_hash({"f": net})
    # a ClassifierModel works too
    r2 = recipe(steps=2, given=stored)
    assert weights_hash({"f": r2.task.net}) == weights_hash({"f": net})


def test_task_loss_bad_input():
    from synthaug.eval.classifier import build_classifier

    a, b = labelled_domains()
    with pytest.raises(ValueError, match="at least two classes.*class folders"):
        CycleGANRecipe(from_arrays(a.images.numpy(), value_range=(-1, 1), channels_last=False), b, config(),
                       device="cpu")

    class Unlabelled:
        images = a.images

    with pytest.raises(TypeError, match="labelled source domain"):
        CycleGANRecipe(Unlabelled(), b, config(), device="cpu")
    with pytest.raises(ValueError, match="images of at least two classes for the task loss, found only class 'left'"):
        CycleGANRecipe(a.subset(range(0, 16, 2)), b, config(), device="cpu")
    with pytest.raises(ValueError, match="expected 2 class outputs.*found 3"):
        CycleGANRecipe(a, b, config(task_classifier=None), device="cpu",
                       task_classifier=build_classifier("small_cnn", 1, 3, SIZE, width=4))
    with pytest.raises(ValueError, match="1-channel images.*found one of 3"):
        CycleGANRecipe(a, b, config(task_classifier=None), device="cpu",
                       task_classifier=build_classifier("small_cnn", 3, 2, SIZE, width=4))
    with pytest.raises(TypeError, match="classifier: expected a classifier of synthaug.nets.classifiers"):
        CycleGANRecipe(a, b, config(task_classifier=None), device="cpu", task_classifier=torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="settings are for the classifier trained here"):
        CycleGANRecipe(a, b, config(), device="cpu", task_classifier=build_classifier("small_cnn", 1, 2, SIZE, 4))
    with pytest.raises(ValueError, match="set lambda_task > 0"):
        CycleGANRecipe(a, b, config(lambda_task=0.0), device="cpu",
                       task_classifier=build_classifier("small_cnn", 1, 2, SIZE, 4))
    for bad, match in (({"lambda_task": -1.0}, "lambda_task: expected a weight >= 0"),
                       ({"task_start_step": -2}, "task_start_step: expected an int >= 0"),
                       ({"task_min_accuracy": 1.5}, "task_min_accuracy: expected None or an accuracy"),
                       ({"task_classifier": {"depth": 3}}, "unknown \\['depth'\\]"),
                       ({"task_classifier": {"arch": "vgg"}}, "expected arch in"),
                       ({"task_classifier": {"val_fraction": 1.0}}, "val_fraction in \\[0, 1\\)"),
                       ({"task_classifier": [1]}, "dict of classifier settings")):
        with pytest.raises((ValueError, TypeError), match=match):
            CycleGANRecipe(a, b, config(**bad), device="cpu")


# --------------------------------------------------------------------------------- the label check
class FirstRowLogits(torch.nn.Module):
    """A fixed fake classifier: the logits of image i are 10 x its first K pixels of row 0."""

    def __init__(self, k=3):
        super().__init__()
        self.k = k

    def forward(self, x):
        return 10.0 * x[:, 0, 0, : self.k]


def identity_translator():
    cfg = {"kind": "cyclegan", "image_size": 8, "channels_a": 1, "channels_b": 1}
    return TranslatorModel({"G_A2B": torch.nn.Identity(), "G_B2A": torch.nn.Identity()}, cfg, device="cpu")


def fake_set(n=60, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g) * 2 - 1
    y = torch.randint(0, k, (n,), generator=g)
    return x, y


def test_label_check_keeps_exactly_the_translations_whose_label_is_preserved():
    model, clf = identity_translator(), FirstRowLogits()
    x, y = fake_set()
    kept_x, kept_y, report = model.translate_labelled(x, y, "A2B", classifier=clf, class_names=["a", "b", "c"])
    expect = clf(x).argmax(1) == y
    assert 0 < int(expect.sum()) < len(y)
    assert torch.equal(kept_y, y[expect]) and torch.equal(kept_x, x[expect])
    assert report["checked"] == 60 and report["kept"] == int(expect.sum())
    assert report["rule"].startswith("label preserved")
    for c, name in enumerate(["a", "b", "c"]):
        sel = y == c
        row = report["per_class"][name]
        assert row == {"checked": int(sel.sum()), "kept": int(expect[sel].sum()),
                       "kept_fraction": float(expect[sel].sum()) / int(sel.sum())}
    # confidence rule (SampleFilter): the classifier's probability of the label >= p
    kept_x, kept_y, report = model.translate_labelled(x, y, "B2A", classifier=clf, min_confidence=0.7)
    p = torch.softmax(clf(x), 1)[torch.arange(60), y]
    assert torch.equal(kept_y, y[p >= 0.7]) and report["kept"] == int((p >= 0.7).sum())
    assert list(report["per_class"]) == ["0", "1", "2"] and report["min_confidence"] == 0.7
    # no classifier: everything kept, counted per class; a class without images has fraction None
    _, kept_y, report = model.translate_labelled(x[y != 2], y[y != 2], classifier=None, class_names=["a", "b", "c"])
    assert len(kept_y) == int((y != 2).sum()) and report["per_class"]["c"] == {"checked": 0, "kept": 0,
                                                                                "kept_fraction": None}


def test_label_checked_translations_feed_synthetic_and_mixed_datasets():
    from synthaug.augment import MixedDataset

    model, clf = identity_translator(), FirstRowLogits()
    x, y = fake_set()
    data = from_arrays(x, labels=y, class_names=["a", "b", "c"], value_range=(-1, 1), channels_last=False)
    pool = translated_dataset(model, data, "A2B", classifier=clf)
    expect = clf(x).argmax(1) == y
    assert len(pool) == int(expect.sum()) and torch.equal(pool.labels, y[expect])
    assert pool.filter_report["a"]["checked"] == int((y == 0).sum())
    assert pool.model_config["label_check"]["kept"] == len(pool)
    real = from_arrays(x[:12], labels=y[:12], class_names=["a", "b", "c"], value_range=(-1, 1), channels_last=False)
    mixed = MixedDataset(real, pool, ratio=0.5, allow_short=True)
    assert len(mixed) > len(real)


def test_label_check_bad_input():
    model, clf = identity_translator(), FirstRowLogits()
    x, y = fake_set(n=6)
    with pytest.raises(ValueError, match="has no task classifier"):
        model.translate_labelled(x, y)
    with pytest.raises(ValueError, match="one label per image \\(6\\), found 5"):
        model.translate_labelled(x, y[:5], classifier=clf)
    with pytest.raises(ValueError, match="class indices in \\[0, 2\\].*found range"):
        model.translate_labelled(x, torch.full((6,), 3), classifier=clf)
    with pytest.raises(TypeError, match="integer class indices"):
        model.translate_labelled(x, y.float(), classifier=clf)
    with pytest.raises(ValueError, match="expected 3 names"):
        model.translate_labelled(x, y, classifier=clf, class_names=["a", "b"])
    with pytest.raises(ValueError, match="min_confidence: needs a classifier"):
        model.translate_labelled(x, y, classifier=None, min_confidence=0.5)
    with pytest.raises(ValueError, match="min_confidence: expected a probability"):
        model.translate_labelled(x, y, classifier=clf, min_confidence=2.0)
    with pytest.raises(TypeError, match="classifier: expected 'task', a ClassifierModel"):
        model.translate_labelled(x, y, classifier=lambda t: t)
    with pytest.raises(ValueError, match="at least one image"):
        model.translate_labelled(x[:0], y[:0], classifier=clf)


# ------------------------------------------------------------------------------------------------ CLI
def _write(folder, arrays):
    folder.mkdir(parents=True)
    for i, arr in enumerate(arrays):
        Image.fromarray((np.clip(arr[..., 0], 0, 1) * 255).astype(np.uint8)).save(folder / f"{i:03d}.png")


def test_cli_task_loss_train_and_label_checked_translate(tmp_path, capsys):
    from synthaug.cli import main

    a, b = labelled_domains()
    a01, b01 = (a.images.numpy().transpose(0, 2, 3, 1) + 1) / 2, (b.images.numpy().transpose(0, 2, 3, 1) + 1) / 2
    labels = a.labels.numpy()
    _write(tmp_path / "A" / "left", a01[labels == 0])
    _write(tmp_path / "A" / "right", a01[labels == 1])
    _write(tmp_path / "B", b01)
    out = tmp_path / "run"
    common = ["--b", str(tmp_path / "B"), "--size", str(SIZE), "--channels", "1", "--steps", "2", "--no-progress",
              "--g-kwargs", json.dumps(TINY_G), "--d-kwargs", json.dumps(TINY_D)]
    rc = main(["train", "cyclegan", "--a", str(tmp_path / "A"), "--out", str(out), "--lambda-task", "1",
               "--task-start-step", "1", "--task-classifier", json.dumps(TINY_CLF), *common])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "task loss: domain A's labels {'left': 8, 'right': 8}" in printed and "task classifier: accuracy" in printed
    cfg = json.loads((out / "model" / "config.json").read_text())
    assert cfg["task_consistency"]["task_start_step"] == 1 and cfg["train"]["lambda_task"] == 1.0
    assert "task" in read_metrics(out / "metrics.jsonl")[-1]

    rc = main(["translate", str(out / "model"), "--in", str(tmp_path / "A"), "--labels", "--out", str(tmp_path / "T")])
    assert rc == 0
    report = json.loads((tmp_path / "T" / "report.json").read_text())
    assert report["checked"] == 16 and set(report["per_class"]) == {"left", "right"}
    written = {c: len(list((tmp_path / "T" / c).glob("*.png"))) if (tmp_path / "T" / c).is_dir() else 0
               for c in ("left", "right")}
    assert written == {c: report["per_class"][c]["kept"] for c in ("left", "right")}
    assert "kept" in capsys.readouterr().out
    rc = main(["translate", str(out / "model"), "--in", str(tmp_path / "A"), "--labels", "--min-confidence", "0.0",
               "--out", str(tmp_path / "T0")])
    assert rc == 0 and json.loads((tmp_path / "T0" / "report.json").read_text())["kept"] == 16
    # the saved task classifier can be named as a classifier directory too
    rc = main(["translate", str(out / "model"), "--in", str(tmp_path / "A"), "--labels", "--classifier",
               str(out / "model" / "task_classifier"), "--out", str(tmp_path / "T1")])
    assert rc == 0

    # errors: a flat (unlabelled) source folder; task settings without the loss; no classifier to check with
    capsys.readouterr()
    assert main(["train", "cyclegan", "--a", str(tmp_path / "B"), "--out", str(tmp_path / "x"),
                 "--lambda-task", "1", *common]) == 2
    assert "--a: expected labelled images" in capsys.readouterr().err
    assert main(["train", "cyclegan", "--a", str(tmp_path / "A"), "--out", str(tmp_path / "x"),
                 "--task-min-accuracy", "0.5", *common]) == 2
    assert "--lambda-task" in capsys.readouterr().err
    assert main(["train", "cyclegan", "--a", str(tmp_path / "A"), "--out", str(tmp_path / "y"), "--lambda-task", "1",
                 "--task-classifier", "[1]", *common]) == 2
    assert "--task-classifier: expected a JSON object" in capsys.readouterr().err
    plain = tmp_path / "plain"
    assert main(["train", "cyclegan", "--a", str(tmp_path / "A"), "--out", str(plain), *common]) == 0
    capsys.readouterr()
    assert main(["translate", str(plain / "model"), "--in", str(tmp_path / "A"), "--labels",
                 "--out", str(tmp_path / "T2")]) == 2
    assert "has no task classifier" in capsys.readouterr().err
    assert main(["translate", str(plain / "model"), "--in", str(tmp_path / "A"), "--labels", "--classifier", "none",
                 "--out", str(tmp_path / "T3")]) == 0
    assert main(["translate", str(plain / "model"), "--in", str(tmp_path / "A"), "--min-confidence", "0.5",
                 "--out", str(tmp_path / "T4")]) == 2
    assert "needs --labels" in capsys.readouterr().err


def test_task_classifier_can_train_on_colour_augmented_batches(weights_hash):
    """``task_classifier={"augment": "colour"}``: f_S trains on colour-jittered / inverted source images (an f_S
    that reads the class whatever the appearance); the setting is recorded, an unknown kind is refused."""
    plain = recipe()
    coloured = recipe(task_classifier={**TINY_CLF, "augment": "colour"})
    assert coloured.task.settings["augment"] == "colour" and "augment" not in plain.task.settings
    assert weights_hash({"f": coloured.task.net}) != weights_hash({"f": plain.task.net})
    assert weights_hash({"f": recipe(task_classifier={**TINY_CLF, "augment": "colour"}).task.net}) == \
        weights_hash({"f": coloured.task.net})  # still deterministic under the seed
    with pytest.raises(ValueError, match="task_classifier: expected augment None or one of"):
        recipe(task_classifier={**TINY_CLF, "augment": "sepia"})
