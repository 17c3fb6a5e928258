"""The one training loop shared by every recipe (cGAN, CycleGAN, Pix2Pix).

A recipe says which nets, losses and batches; the :class:`Trainer` owns everything around it:
steps, progress bar, metrics log (JSONL), periodic PNG sample grids, atomic checkpoints, exact resume
(nets, EMA, optimisers, scalers, samplers, RNG states, augmentation strength), a non-finite-loss guard
that rolls back once at a lower learning rate, and a clean stop on SIGINT/SIGTERM with a final checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..checks import check_int, check_number
from ..io import atomic_torch_save, atomic_write_bytes, lock_folder, safe_torch_load
from ..utils import keep_freed_memory, quick_steps, save_grid
from . import distributed
from .recipe import Recipe

CHECKPOINT_FORMAT = "synthaug-checkpoint"


class TrainingDivergedError(RuntimeError):
    """Raised when losses stay non-finite after the one allowed rollback."""


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` reports."""

    step: int
    out_dir: Path
    model_dir: Path | None
    metrics_path: Path
    last_metrics: dict = field(default_factory=dict)
    interrupted: bool = False
    rollbacks: int = 0
    seconds: float = 0.0


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": [list(random.getstate()[1]), random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    keys, gauss = state["python"]
    random.setstate((3, tuple(int(k) for k in keys), gauss))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """Path of the newest checkpoint of a run folder (``checkpoints/latest.json`` points at it), or None."""
    pointer = Path(out_dir) / "checkpoints" / "latest.json"
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text())["file"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"checkpoint pointer {str(pointer)!r} is unreadable ({e})") from None
    return pointer.parent / name


def _read_checkpoint(path: str | Path) -> dict:
    ckpt = safe_torch_load(path, what="checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint: {str(path)!r} is not a synthaug training checkpoint")
    missing = [k for k in ("recipe", "recipe_config", "step", "lr_scale", "rollbacks", "state", "rng")
               if k not in ckpt]
    if missing:
        raise ValueError(f"checkpoint: {str(path)!r} is incomplete: missing field(s) {missing}")
    return ckpt


def _check_same_run(path, ckpt: dict, recipe_name: str, config: dict) -> None:
    if ckpt["recipe"] != recipe_name:
        raise ValueError(f"checkpoint: expected a {recipe_name!r} checkpoint, found one of recipe "
                         f"{ckpt['recipe']!r} in {str(path)!r}")
    mine = json.loads(json.dumps(config, sort_keys=True))
    theirs = json.loads(ckpt["recipe_config"])
    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if diff:
        details = ", ".join(f"{k}: run has {mine.get(k)!r}, checkpoint has {theirs.get(k)!r}" for k in diff[:5])
        raise ValueError(f"checkpoint: {str(path)!r} was written with a different configuration ({details}); "
                         "use a new output folder or the same settings")


def check_out_dir(out_dir: str | Path, recipe_name: str, config: dict) -> Path | None:
    """Refuse (``ValueError``) a run folder whose newest checkpoint belongs to another recipe or to other settings
    than ``config`` (a recipe's ``config_dict()``, or :meth:`Recipe.planned_config_dict` before the recipe is
    built): what :meth:`Trainer.fit` would refuse when it resumes, asked before anything expensive is built (the
    command line asks before a task classifier, a pseudo-labeller or a content encoder trains). Returns the
    checkpoint it compared with, or None for a folder without one."""
    path = latest_checkpoint(out_dir)
    if path is None:
        return None
    _check_same_run(path, _read_checkpoint(path), recipe_name, config)
    return path


class Trainer:
    """Run a :class:`Recipe` for ``steps`` steps, writing everything under ``out_dir``.

    A recipe whose config has ``steps`` (every recipe's config: CycleGAN, CUT, Pix2Pix and SRGAN plan their
    learning-rate schedules for them; the cGAN's may be None) sets the run length itself: leave ``steps`` out, or
    pass the same number. A cGAN config without ``steps`` needs the Trainer's.

    Layout of ``out_dir``: ``metrics.jsonl``, ``samples/step_NNNNNNN.png``, ``checkpoints/`` (atomic,
    the newest ``keep_checkpoints`` kept, ``latest.json`` pointing at the newest) and ``model/`` (the
    exported model directory, written at the end).
    """

    def __init__(self, recipe: Recipe, out_dir: str | Path, steps: int | None = None, *, log_every: int = 50,
                 sample_every: int = 500, ckpt_every: int = 500, keep_checkpoints: int = 2,
                 progress: bool = True, nan_lr_factor: float = 0.1):
        planned = recipe.run_length
        if steps is None and planned is None:
            raise ValueError(f"steps: expected a positive int (the {recipe.name!r} recipe's config sets no run "
                             "length), found None")
        if steps is not None and planned is not None and steps != planned:
            raise ValueError(f"steps: expected {planned}, the run length in the {recipe.name!r} recipe's config "
                             f"(config.steps, which its schedules are planned for), found {steps}; set config.steps "
                             "and leave the Trainer's steps out")
        self.recipe = recipe
        self.out_dir = Path(out_dir)
        self.steps = check_int("steps", planned if steps is None else steps)
        self.steps = quick_steps(self.steps, minimum=recipe.min_steps())  # SYNTHAUG_QUICK: a smoke test's cap
        recipe.check_steps(self.steps)
        self.log_every = check_int("log_every", log_every)
        self.sample_every = check_int("sample_every", sample_every)
        self.ckpt_every = check_int("ckpt_every", ckpt_every)
        self.keep_checkpoints = check_int("keep_checkpoints", keep_checkpoints)
        self.progress = progress
        self.nan_lr_factor = check_number("nan_lr_factor", nan_lr_factor, 0.0, 1.0, low_open=True, high_open=True)
        self.is_main = distributed.current().is_main  # under torchrun only rank 0 writes files
        self.step = 0
        self.rollbacks = 0
        self.lr_scale = 1.0
        self._stop_signal: int | None = None

    # ------------------------------------------------------------------ paths
    @property
    def ckpt_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.jsonl"

    def latest_checkpoint(self) -> Path | None:
        """Path of the newest checkpoint in ``out_dir``, or None."""
        return latest_checkpoint(self.out_dir)

    # ------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        """Write a checkpoint for the current step atomically and move ``latest.json`` to it.

        Under torchrun rank 0 writes and the other ranks wait for it."""
        path = self.ckpt_dir / f"ckpt-{self.step:07d}.pt"
        if self.is_main:
            self._write_checkpoint(path)
        distributed.barrier()
        return path

    def _write_checkpoint(self, path: Path) -> None:
        state = {
            "format": CHECKPOINT_FORMAT,
            "recipe": self.recipe.name,
            "recipe_config": json.dumps(self.recipe.config_dict(), sort_keys=True),
            "step": self.step,
            "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks,
            "state": self.recipe.state_dict(),
            "rng": _rng_state(),
        }
        previous = self.latest_checkpoint() if (self.ckpt_dir / "latest.json").exists() else None
        try:
            atomic_torch_save(state, path)
            atomic_write_bytes(self.ckpt_dir / "latest.json",
                               json.dumps({"file": path.name, "step": self.step}).encode())
        except OSError as e:
            kept = f"; the previous checkpoint {str(previous)!r} is untouched" if previous else ""
            raise OSError(e.errno, f"cannot write checkpoint {str(path)!r} ({e.strerror or e}){kept}") from e
        old = sorted(self.ckpt_dir.glob("ckpt-*.pt"))[:-self.keep_checkpoints]
        for p in old:
            if p != path:
                p.unlink(missing_ok=True)

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore recipe state, step, RNG states and LR scale from ``path`` (safe: tensors only)."""
        ckpt = _read_checkpoint(path)
        _check_same_run(path, ckpt, self.recipe.name, self.recipe.config_dict())
        self.recipe.load_state_dict(ckpt["state"])
        _set_rng_state(ckpt["rng"])
        self.step = int(ckpt["step"])
        self.lr_scale = float(ckpt["lr_scale"])
        self.rollbacks = int(ckpt["rollbacks"])

    def _lock_out_dir(self) -> int | None:
        """An exclusive, non-blocking flock on ``out_dir/.lock``; returns its descriptor (None without fcntl)."""
        return lock_folder(self.out_dir, f"out_dir: {str(self.out_dir)!r} is in use by another training process; "
                                         "wait for it to finish (or stop it) before resuming, or use another folder")

    def _remove_orphaned_temp_files(self) -> None:
        """Delete the temp files of atomic writes that a killed run left half-way."""
        for folder in (self.ckpt_dir, self.out_dir):
            if folder.is_dir():
                for p in folder.glob(".*.tmp"):
                    p.unlink(missing_ok=True)

    # ---------------------------------------------------------------- metrics
    def _truncate_metrics(self) -> None:
        """Drop log lines after the current step (after a resume or a rollback)."""
        if not self.metrics_path.is_file():
            return
        keep = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= self.step:
                    keep.append(line)
            except (json.JSONDecodeError, KeyError):
                continue  # a line cut by a kill mid-write
        atomic_write_bytes(self.metrics_path, ("\n".join(keep) + "\n" if keep else "").encode())

    def _log(self, record: dict) -> None:
        try:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:
            raise OSError(f"cannot append to the metrics log {str(self.metrics_path)!r}: {e}; checkpoints in "
                          f"{str(self.ckpt_dir)!r} are untouched") from e

    def save_samples(self) -> Path:
        images, nrow, row_labels = self.recipe.sample_grid()
        return save_grid(images, self.out_dir / "samples" / f"step_{self.step:07d}.png", nrow=nrow,
                         row_labels=row_labels, title=f"{self.recipe.name} step {self.step}")

    # ------------------------------------------------------------------- loop
    def _handle_signal(self, signum, frame):  # noqa: ARG002
        self._stop_signal = signum

    def _rollback(self, losses: dict) -> None:
        if self.rollbacks >= 1:
            raise TrainingDivergedError(
                f"non-finite loss at step {self.step + 1} ({losses}) again after rolling back once at "
                f"learning-rate scale {self.lr_scale:g}; stopping. The latest good checkpoint is "
                f"{str(self.latest_checkpoint())!r}; try a lower learning rate, another loss or gradient clipping")
        ckpt = self.latest_checkpoint()
        self.load_checkpoint(ckpt)
        self.rollbacks = 1
        self.lr_scale *= self.nan_lr_factor
        self.recipe.scale_lr(self.nan_lr_factor)
        if not self.is_main:
            return
        self._truncate_metrics()
        print(f"[synthaug] non-finite loss {losses}; rolled back to step {self.step} ({ckpt.name}) with the "
              f"learning rate scaled by {self.nan_lr_factor:g}", flush=True)

    def fit(self, resume: bool = True) -> TrainResult:
        """Train to ``steps``; with ``resume`` continue from the newest checkpoint in ``out_dir`` if any.

        ``out_dir`` is locked while this runs: a second process on the same folder raises ``RuntimeError``."""
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OSError(f"out_dir: cannot create {str(self.out_dir)!r}: {e}") from e
        lock = self._lock_out_dir() if self.is_main else None
        try:
            return self._fit(resume)
        finally:
            if lock is not None:
                os.close(lock)  # releases the flock

    def _fit(self, resume: bool) -> TrainResult:
        from tqdm.auto import tqdm

        t0 = time.time()
        if self.recipe.device.type == "cpu":
            keep_freed_memory()
        if self.is_main:
            self._remove_orphaned_temp_files()
        # rank 0 decides: a rank that looked for checkpoints after rank 0 wrote this run's step-0 checkpoint
        # would resume from it, skip that save's barrier and wait forever in a different collective
        latest = distributed.from_main_rank(self.latest_checkpoint() if resume and self.is_main else None)
        if latest is not None:
            self.load_checkpoint(latest)
            if self.is_main:
                self._truncate_metrics()
        else:
            if self.is_main:  # a fresh start: nothing of an older run in this folder may be taken for ours
                self.metrics_path.unlink(missing_ok=True)
                for p in self.ckpt_dir.glob("ckpt-*.pt"):
                    p.unlink()
            self.save_checkpoint()  # step 0: the rollback target before the first periodic checkpoint

        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.signal(sig, self._handle_signal)
        last: dict = {}
        dev = self.recipe.device if distributed.current().enabled else None
        bar = tqdm(total=self.steps, initial=self.step, disable=not (self.progress and self.is_main),
                   desc=f"train {self.recipe.name}", dynamic_ncols=True)
        try:
            while self.step < self.steps and not distributed.any_rank(self._stop_signal is not None, dev):
                losses = distributed.mean_over_ranks(self.recipe.train_step(self.step), dev)
                will_save = (self.step + 1) % self.ckpt_every == 0 or self.step + 1 == self.steps
                if will_save and not self.recipe.weights_finite():
                    losses = {**losses, "weights": float("nan")}  # never checkpoint NaN weights
                if not all(math.isfinite(v) for v in losses.values()):
                    self._rollback(losses)
                    bar.n = self.step
                    bar.refresh()
                    continue
                self.step += 1
                bar.update(1)
                last = losses
                if self.step % self.log_every == 0 or self.step == self.steps:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()})
                    if self.is_main:
                        self._log({"step": self.step, **losses, "time": round(time.time() - t0, 3)})
                if self.is_main and (self.step % self.sample_every == 0 or self.step == self.steps):
                    self.save_samples()
                if self.step % self.ckpt_every == 0 and self.step != self.steps:
                    self.save_checkpoint()
            self.save_checkpoint()
        finally:
            bar.close()
            for sig, h in handlers.items():
                signal.signal(sig, h)
        interrupted = self.step < self.steps
        model_dir = None
        if self.is_main and not interrupted:
            model_dir = self.out_dir / "model"
            self.recipe.save_pretrained(model_dir)
        if interrupted and self.is_main:
            print(f"[synthaug] stopped by signal {self._stop_signal} at step {self.step}; checkpoint saved, "
                  "run the same command again to resume", flush=True)
        return TrainResult(step=self.step, out_dir=self.out_dir, model_dir=model_dir,
                           metrics_path=self.metrics_path, last_metrics=last, interrupted=interrupted,
                           rollbacks=self.rollbacks, seconds=time.time() - t0)


def read_metrics(path: str | Path) -> list[dict]:
    """Read a ``metrics.jsonl`` file into a list of dicts."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
