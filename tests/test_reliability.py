"""Reliability and safety: full disk, divergence, hostile model files, the bad-input matrix, the memorisation
guard, and (``slow``) real processes killed with SIGKILL or stopped by SIGINT/SIGTERM.

The cases (tiny recipes, fault injectors, the tables ``MODEL_FILE_ROWS`` and ``BAD_INPUT_ROWS``, the planted-copy
bank, the ``train_tiny.py`` launcher) live in ``benchmarks/reliability_cases.py``, which
``benchmarks/reliability.py`` walks too (through :func:`make_assets` and :func:`check_row`), so the benchmark's
counts are these tests' rows. Each row is an input the library must refuse clearly (or, for the positive cases,
load as documented).
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import synthaug.io as sio
from synthaug.augment import SyntheticDataset
from synthaug.data import load_breastmnist
from synthaug.eval.memorization import memorization_audit
from synthaug.io import safe_torch_load
from synthaug.models import GeneratorModel, load_model
from synthaug.train import Trainer, TrainingDivergedError, read_metrics
from synthaug.train import engine

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.reliability_cases import (BAD_INPUT_ROWS, MODEL_FILE_ROWS, FullDiskOS, Row,  # noqa: E402
                                          all_finite, arm_after, check_row, gen_model, guarded_dataset, inject,
                                          last_step, latest_pointer, launch, load_train_tiny, make_assets,
                                          marker_path, novel_images, planted_set, same_weights, strip, toy_cgan,
                                          toy_cyclegan, toy_data, trainer)


# ============================================================================ 1. full disk / unwritable output
@pytest.mark.parametrize("pointer_only", [False, True], ids=["checkpoint-write", "pointer-rename"])
def test_full_disk_names_the_path_keeps_previous_checkpoint_and_resumes_exactly(tmp_path, monkeypatch, pointer_only):
    reference = strip(read_metrics(trainer(toy_cgan(), tmp_path / "ref", 12).fit().metrics_path))
    fake = FullDiskOS(pointer_only=pointer_only)
    monkeypatch.setattr(sio, "os", fake)
    recipe = toy_cgan()
    arm_after(recipe, fake, 7)  # the disk fills during step 8; the next checkpoint (step 10) cannot be written
    t = trainer(recipe, tmp_path / "run", 12)
    ckpt_dir = t.ckpt_dir
    with pytest.raises(OSError, match=r"cannot write checkpoint '.*ckpt-0000010\.pt'.*No space left on device.*"
                                      r"previous checkpoint '.*ckpt-0000005\.pt' is untouched") as err:
        t.fit()
    assert fake.failures >= 1 and isinstance(err.value.__cause__, OSError)
    assert json.loads((ckpt_dir / "latest.json").read_text()) == {"file": "ckpt-0000005.pt", "step": 5}
    assert not list(ckpt_dir.glob(".*.tmp")), "a failed atomic write left its temp file behind"
    fresh = trainer(toy_cgan(), tmp_path / "run", 12)
    fresh.load_checkpoint(fresh.latest_checkpoint())
    assert fresh.step == 5
    monkeypatch.setattr(sio, "os", os)  # space freed: the same run resumes and ends as if nothing happened
    result = trainer(toy_cgan(), tmp_path / "run", 12).fit()
    assert result.step == 12 and strip(read_metrics(result.metrics_path)) == reference


def test_full_disk_on_metrics_log_names_the_file(tmp_path, monkeypatch):
    real_open = open

    class _Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, s):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def full_open(path, mode="r", *a, **kw):
        f = real_open(path, mode, *a, **kw)
        return _Full(f) if "a" in mode else f

    monkeypatch.setattr(engine, "open", full_open, raising=False)
    with pytest.raises(OSError, match=r"cannot append to the metrics log '.*metrics\.jsonl': .*No space left"):
        trainer(toy_cgan(), tmp_path / "m", 4).fit()


def _recipe_whose_export_hits_a_full_disk(monkeypatch):
    """A toy cGAN recipe; the disk fills up (for synthaug.io writes) when its model export starts."""
    recipe = toy_cgan()
    fake = FullDiskOS()
    export = recipe.save_pretrained

    def full_then_export(path):
        fake.armed = True
        return export(path)

    recipe.save_pretrained = full_then_export
    monkeypatch.setattr(sio, "os", fake)
    return recipe


def test_full_disk_during_model_export_names_the_file(tmp_path, monkeypatch):
    recipe = _recipe_whose_export_hits_a_full_disk(monkeypatch)
    with pytest.raises(OSError, match=r"model.*\.safetensors|config\.json"):
        trainer(recipe, tmp_path / "e", 6).fit()


def test_full_disk_during_model_export_leaves_a_resumable_run(tmp_path, monkeypatch):
    recipe = _recipe_whose_export_hits_a_full_disk(monkeypatch)
    with pytest.raises(OSError, match="No space left on device"):
        trainer(recipe, tmp_path / "e", 6).fit()
    monkeypatch.setattr(sio, "os", os)
    assert json.loads((tmp_path / "e/checkpoints/latest.json").read_text())["step"] == 6
    result = trainer(toy_cgan(), tmp_path / "e", 6).fit()  # rerun: nothing to train, the model is exported
    assert result.step == 6 and GeneratorModel.from_pretrained(result.model_dir).num_classes == 2


def test_resume_removes_temp_files_orphaned_by_a_kill(tmp_path):
    trainer(toy_cgan(), tmp_path / "o", 5).fit()
    orphan = tmp_path / "o" / "checkpoints" / ".ckpt-0000010.pt.k1ll3d.tmp"
    orphan.write_bytes(b"\0" * 4096)  # what a kill mid-write leaves
    trainer(toy_cgan(), tmp_path / "o", 12).fit()
    assert not orphan.exists()


def test_unwritable_output_folder_is_named(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=r"out_dir: cannot create '.*a_file/run'"):
        trainer(toy_cgan(), blocker / "run", 4).fit()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_checkpoint_folder_keeps_previous_checkpoint(tmp_path):
    recipe = toy_cgan()
    t = trainer(recipe, tmp_path / "ro", 12)
    original = recipe.train_step

    def step(i):
        out = original(i)
        if i == 6:
            t.ckpt_dir.chmod(0o500)
        return out

    recipe.train_step = step
    try:
        with pytest.raises(OSError, match=r"checkpoint '.*ckpt-0000010\.pt'.*not writable.*ckpt-0000005\.pt"):
            t.fit()
    finally:
        t.ckpt_dir.chmod(0o700)
    trainer(toy_cgan(), tmp_path / "ro", 12).load_checkpoint(t.latest_checkpoint())


# ============================================================================ 2. divergence
def test_cyclegan_transient_nan_rolls_back_once_at_lower_lr_and_finishes(tmp_path, capsys):
    recipe = toy_cyclegan(12)
    lr0 = recipe.optimizers["G"].param_groups[0]["lr"]
    inject(recipe, 7, key="cycle")
    result = trainer(recipe, tmp_path / "cg", 12).fit()
    assert result.step == 12 and result.rollbacks == 1 and not result.interrupted
    assert "rolled back to step 5" in capsys.readouterr().out
    rows = read_metrics(result.metrics_path)
    assert [r["step"] for r in rows] == list(range(1, 13))  # steps 6-8 replayed once, logged once
    assert all(math.isfinite(v) for r in rows for v in r.values())
    # before the rollback: full rate; after it (steps 6..): 0.1x, times the linear decay that starts at step 6
    assert rows[4]["lr"] == pytest.approx(lr0)
    assert rows[5]["lr"] == pytest.approx(0.1 * lr0) and rows[7]["lr"] == pytest.approx(0.1 * lr0 * (1 - 2 / 6))
    assert load_model(result.model_dir).directions() == ["A2B", "B2A"]


def test_cyclegan_persistent_nan_stops_and_latest_is_a_good_checkpoint_before_it(tmp_path):
    recipe = toy_cyclegan(20)
    inject(recipe, 11, once=False, key="d_loss")  # step 12 onwards
    t = trainer(recipe, tmp_path / "cg", 20)
    with pytest.raises(TrainingDivergedError, match=r"non-finite loss at step 12 .*again after rolling back once.*"
                                                    r"latest good checkpoint is '.*ckpt-0000010\.pt'"):
        t.fit()
    pointer = json.loads((t.ckpt_dir / "latest.json").read_text())
    assert pointer == {"file": "ckpt-0000010.pt", "step": 10}
    assert not list(t.ckpt_dir.glob(".*.tmp"))
    ckpt = safe_torch_load(t.ckpt_dir / pointer["file"])
    assert ckpt["step"] == 10 and all_finite(ckpt["state"])
    fresh = trainer(toy_cyclegan(20), tmp_path / "cg", 20)
    fresh.load_checkpoint(t.latest_checkpoint())
    assert fresh.step == 10
    assert all(math.isfinite(r["d_loss"]) for r in read_metrics(t.metrics_path))


def test_poisoned_weights_between_checkpoints_are_rolled_back(tmp_path):
    """A real blow-up: a weight turns NaN during step 7 (losses of step 7 still finite); step 8 is NaN, the
    run rolls back to the checkpoint of step 5, whose weights are clean, and finishes."""
    recipe = toy_cgan()
    inject(recipe, 6, weights=True)
    result = trainer(recipe, tmp_path / "w", 12).fit()
    assert result.step == 12 and result.rollbacks == 1
    assert all_finite(GeneratorModel.from_pretrained(result.model_dir).generator.state_dict())


def test_poisoned_weights_at_a_checkpoint_step_never_become_latest(tmp_path):
    """The update of a checkpoint step makes a weight NaN while that step's losses are still finite: the weights
    must be checked before they are saved, or the rollback target itself is poisoned."""
    recipe = toy_cgan()
    inject(recipe, 4, weights=True)  # the update of step 5 poisons G; step 5 is a checkpoint step
    t = trainer(recipe, tmp_path / "p", 12)
    try:
        t.fit()
    except TrainingDivergedError:
        assert safe_torch_load(t.latest_checkpoint())["step"] < 5
    for path in sorted(t.ckpt_dir.glob("ckpt-*.pt")):
        assert all_finite(safe_torch_load(path)["state"]), f"{path.name} holds NaN weights"


# ============================================================================ 3 + 4. tables of hostile / bad inputs
def _params(rows: list[Row]):
    return [pytest.param(r, id=r.id, marks=[pytest.mark.xfail(strict=True, reason=r.xfail)] if r.xfail else [])
            for r in rows]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_assets(tmp_path_factory.mktemp("assets"))


def test_model_files_are_shareable_under_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        GeneratorModel.from_pretrained(gen_model(tmp_path / "g")).save_pretrained(tmp_path / "shared")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "shared").iterdir()}
    assert all(m == 0o644 for m in modes.values()), modes


@pytest.mark.parametrize("row", _params(MODEL_FILE_ROWS))
def test_model_file_is_refused_and_never_executed(row, tmp_path, assets):
    ok, detail = check_row(row, tmp_path, assets)
    assert not marker_path(tmp_path).exists(), f"PAYLOAD EXECUTED by {row.api} ({row.fed})"
    assert ok, detail


@pytest.mark.parametrize("row", _params(BAD_INPUT_ROWS))
def test_bad_input_matrix(row, tmp_path, assets):
    ok, detail = check_row(row, tmp_path, assets)
    assert ok, detail


def test_tables_are_well_formed():
    for rows in (MODEL_FILE_ROWS, BAD_INPUT_ROWS):
        ids = [r.id for r in rows]
        assert len(ids) == len(set(ids))
        for r in rows:
            assert (r.exc is None) == (r.check is not None), r.id
            assert r.exc is None or r.match, r.id
    assert sum(r.payload for r in MODEL_FILE_ROWS) >= 5


# ============================================================================ 5. memorisation guard
def test_memorization_guard_drops_planted_copies_keeps_novel_images_and_labels():
    real = load_breastmnist(n_per_class=40, seed=0)
    novel = novel_images()
    bank, planted = planted_set(real.images, novel)
    audit = memorization_audit(bank, real)
    assert set(np.flatnonzero(audit["flagged"]).tolist()) == planted  # the audit flags all 12 and only them
    ds, gen, caught = guarded_dataset(real, bank)
    assert ds.n_dropped == len(planted) == 12
    assert any(f"dropped {len(planted)} of {len(bank)}" in w for w in caught)
    keep = [i for i in range(len(bank)) if i not in planted]
    assert len(ds) == len(keep) == len(novel)
    assert torch.equal(ds.images, bank[keep])  # every novel image kept, in order
    asked = torch.cat(gen.asked)
    assert torch.equal(ds.labels, asked[keep])  # labels stay with their images
    img, y = ds[3]
    assert torch.equal(img, bank[keep[3]]) and int(y) == int(asked[keep[3]])


def test_near_copy_of_a_training_image_with_a_duplicate_is_caught():
    real = load_breastmnist(n_per_class=40, seed=0)
    d = torch.cdist(real.images.flatten(1).double(), real.images.flatten(1).double()).fill_diagonal_(float("inf"))
    dup = int(d.min(1).values.argmin())  # a training image with a near-duplicate in the training set
    assert float(d[dup].min()) < 1.0
    g = torch.Generator().manual_seed(0)
    near = (real.images[dup] + 0.02 * torch.randn(real.images[dup].shape, generator=g)).clamp(-1, 1)
    bank = torch.cat([novel_images()[:8], near[None]])
    ds, _, _ = guarded_dataset(real, bank)
    assert ds.n_dropped == 1


def test_memorization_guard_off_by_default_and_silent_when_nothing_is_dropped(assets):
    plain = SyntheticDataset(assets["gen"], n=8)
    assert plain.n_dropped == 0 and plain.drop_near_copies is None and len(plain) == 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        guarded = SyntheticDataset(assets["gen"], n=8, drop_near_copies=1 / 3, reference=toy_data(channels=1).images)
    assert guarded.n_dropped == 0 and torch.equal(guarded.images, plain.images)
    with pytest.raises(ValueError, match="reference: only used by the memorisation guard"):
        SyntheticDataset(assets["gen"], n=8, reference=toy_data())


# ============================================================================ slow: real processes, real signals
def _wait_for(pred, proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    proc.kill()
    raise TimeoutError("the training process made no progress in time")


def _check_every_checkpoint(make_trainer, out: Path) -> int:
    """Open every checkpoint file present with Trainer.load_checkpoint; return how many are corrupt."""
    bad = 0
    for path in sorted((out / "checkpoints").glob("ckpt-*.pt")):
        try:
            make_trainer().load_checkpoint(path)
        except Exception:  # noqa: BLE001
            bad += 1
    pointer = latest_pointer(out)
    if pointer is not None:
        make_trainer().load_checkpoint(out / "checkpoints" / pointer["file"])
    return bad


@pytest.mark.slow
def test_sigkill_twice_even_mid_checkpoint_write_then_resume_is_bit_exact(tmp_path):
    tt = load_train_tiny()
    steps, every = 16, 5
    args = ["cgan", str(tmp_path / "killed"), str(steps), str(every)]
    ns = tt.parse_args([*args[:1], str(tmp_path / "ref"), *args[2:]])
    ref = Trainer(tt.build(ns), tmp_path / "ref", steps, log_every=1, sample_every=10_000, ckpt_every=every,
                  progress=False).fit()
    out = tmp_path / "killed"

    def fresh():
        return trainer(tt.build(tt.parse_args(args)), out, steps, ckpt_every=every)

    # kill 1: at a step between checkpoints
    p = launch(args, tmp_path / "log1.txt")
    _wait_for(lambda: last_step(out) >= 7, p)
    p.send_signal(signal.SIGKILL)
    assert p.wait(30) == -signal.SIGKILL
    assert _check_every_checkpoint(fresh, out) == 0
    before = latest_pointer(out)
    assert before["step"] in (5, 10) and before["step"] <= last_step(out)
    # kill 2: while a checkpoint's temp file is written but not yet renamed into place
    p = launch([*args, "--replace-delay", "2"], tmp_path / "log2.txt")
    _wait_for(lambda: any((out / "checkpoints").glob(".ckpt-*.tmp")), p)
    p.send_signal(signal.SIGKILL)
    assert p.wait(30) == -signal.SIGKILL
    assert _check_every_checkpoint(fresh, out) == 0
    assert latest_pointer(out) == before  # the half-written checkpoint never became latest
    assert list((out / "checkpoints").glob(".ckpt-*.tmp"))  # (its orphaned temp file is left behind)
    # resume: the same command, to the end
    p = launch(args, tmp_path / "log3.txt")
    assert p.wait(300) == 0, (tmp_path / "log3.txt").read_text()
    lines = [json.loads(x) for x in (tmp_path / "log3.txt").read_text().splitlines() if x.startswith("{")]
    assert lines[0]["resume_from"] == before["step"] and lines[-1]["status"] == "done"
    assert strip(read_metrics(out / "metrics.jsonl")) == strip(read_metrics(ref.metrics_path))
    assert same_weights(out / "model" / "generator.safetensors", ref.model_dir / "generator.safetensors")
    assert (out / "model" / "config.json").read_bytes() == (ref.model_dir / "config.json").read_bytes()


@pytest.mark.slow
def test_sigint_then_sigterm_stop_with_a_final_checkpoint_and_resume_to_the_same_result(tmp_path):
    tt = load_train_tiny()
    steps, every = 14, 5
    out = tmp_path / "sig"
    args = ["cyclegan", str(out), str(steps), str(every)]
    ns = tt.parse_args(["cyclegan", str(tmp_path / "ref"), str(steps), str(every)])
    ref = Trainer(tt.build(ns), tmp_path / "ref", steps, log_every=1, sample_every=10_000, ckpt_every=every,
                  progress=False).fit()

    def fresh():
        return trainer(tt.build(tt.parse_args(args)), out, steps, ckpt_every=every)

    for n, (sig, at) in enumerate([(signal.SIGINT, 3), (signal.SIGTERM, 7)]):
        log = tmp_path / f"log{n}.txt"
        p = launch(args, log)
        _wait_for(lambda at=at: last_step(out) >= at, p)
        p.send_signal(sig)
        assert p.wait(120) == 0, log.read_text()  # a clean exit, like `synthaug train`
        end = json.loads(log.read_text().splitlines()[-1])
        assert end["status"] == "interrupted" and end["step"] < steps
        assert latest_pointer(out)["step"] == end["step"] == last_step(out)  # final checkpoint at the stop step
        assert _check_every_checkpoint(fresh, out) == 0
    result = fresh().fit()  # resume in this process
    assert result.step == steps and not result.interrupted
    assert strip(read_metrics(result.metrics_path)) == strip(read_metrics(ref.metrics_path))


@pytest.mark.slow
def test_second_process_on_the_same_output_folder_is_refused(tmp_path):
    tt = load_train_tiny()
    out = tmp_path / "busy"
    args = ["cgan", str(out), "400", "5"]
    p = launch(args, tmp_path / "first.txt")
    try:
        _wait_for(lambda: last_step(out) >= 6, p)
        with pytest.raises((RuntimeError, OSError, ValueError), match=r"in use|another|locked"):
            trainer(tt.build(tt.parse_args(args)), out, 12).fit()
    finally:
        p.kill()
        p.wait(30)

