"""Reliability and safety benchmark: do training runs survive faults, and do model files stay inert?

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/reliability.py [--quick]

1. Crash safety. Real training processes (``benchmarks/train_tiny.py``: cGAN at 28 px on the shipped
   BreastMNIST, 32 per class; CycleGAN at 32 px on weather/mwd shine vs rain, 16 images each) are killed with
   SIGKILL at seeded random moments: after a random number of steps, after a random time (start-up included),
   while a checkpoint's temp file is written but not renamed, and between a checkpoint's rename and the
   ``latest.json`` update (the last two widened with the script's ``--replace-delay``). After every kill each
   checkpoint file present is opened with ``Trainer.load_checkpoint``; then the same command is rerun until
   the run completes, and its metrics.jsonl (all values except ``time``) and exported weights are compared
   with an uninterrupted run's, bit for bit. SIGINT and SIGTERM must stop a run with exit code 0 and a final
   checkpoint at the stop step, and resuming must reach the same result. Full disk: ENOSPC injected into the
   library's atomic writes in process, and a real kernel limit (``RLIMIT_FSIZE``, EFBIG) in a subprocess.
2. Divergence: non-finite losses / weights injected at chosen steps.
3. Model files and 4. bad inputs: the tables of ``benchmarks/reliability_cases.py`` (the rows
   ``tests/test_reliability.py`` runs), with payloads that would write a marker file if anything were unpickled.
5. The memorisation guard of ``SyntheticDataset`` on planted exact and near copies of real training images.

Writes benchmarks/results/reliability.{md,json,png}. ``--quick`` (< 5 min): 10 kills; default (< 15 min): 20.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
torch.set_num_threads(1)

import synthaug.io as sio  # noqa: E402
from benchmarks import harness as H  # noqa: E402
from benchmarks import reliability_cases as C  # noqa: E402  (the cases tests/test_reliability.py runs)
from synthaug.io import safe_torch_load  # noqa: E402
from synthaug.train import TrainingDivergedError, read_metrics  # noqa: E402

TT = C.load_train_tiny()

PLAN = {  # recipe -> (steps, ckpt_every, kills) for quick / full
    "quick": {"cgan": (50, 5, 5), "cyclegan": (40, 5, 5)},
    "full": {"cgan": (100, 5, 10), "cyclegan": (80, 5, 10)},
}
KILL_KINDS = ("step", "time", "ckpt_write", "pointer_write")
REPLACE_DELAY = 1.0


FINDINGS = [
    "Found by this suite and fixed in the library: model export on a full disk named no file; files were "
    "created with mode 0600; temp files orphaned by a kill were never removed (now removed on resume); no lock "
    "on `out_dir` (now a second process on the same folder is refused); model paths given to "
    "`SyntheticDataset` / `MixedDataset` skipped the config.json field checks; `MixedDataset` let NaN real "
    "images through; the memorization audit missed noisy copies of training images that have a near-duplicate "
    "in the training set (its denominator is now floored at half the median real-real distance).",
    "Still true: safetensors writes its metadata map in a per-process hash order, so exported files are "
    "tensor-identical but not byte-identical across processes (compare tensors, not bytes).",
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ============================================================================ processes
def launch(args: list[str], logfile: Path) -> tuple[subprocess.Popen, float]:
    return C.launch(args, logfile), time.time()


def events(logfile: Path) -> list[dict]:
    out = []
    for line in logfile.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
    return out


def tmp_files(out: Path, prefix: str) -> set[str]:
    folder = out / "checkpoints"
    return {p.name for p in folder.glob(f".{prefix}*.tmp")} if folder.is_dir() else set()


def wait_until(pred, proc, timeout=300.0) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


class Checker:
    """Opens checkpoint files with ``Trainer.load_checkpoint`` of a trainer configured like the run."""

    def __init__(self, args: list[str], steps: int, every: int):
        self.trainer = C.trainer(TT.build(TT.parse_args(args)), Path(args[1]), steps, ckpt_every=every)

    def check(self, out: Path) -> dict:
        files = sorted((out / "checkpoints").glob("ckpt-*.pt"))
        corrupt = []
        for p in files:
            try:
                self.trainer.load_checkpoint(p)
                if self.trainer.step != int(p.stem.split("-")[1]):
                    corrupt.append(f"{p.name}: holds step {self.trainer.step}")
            except Exception as e:  # noqa: BLE001
                corrupt.append(f"{p.name}: {type(e).__name__}: {e}")
        pointer = C.latest_pointer(out)
        pointer_ok = None
        if pointer is not None:
            pointer_ok = (out / "checkpoints" / pointer["file"]).name in {p.name for p in files}
            if not pointer_ok:
                corrupt.append(f"latest.json points at missing {pointer['file']}")
        return {"files": [p.name for p in files], "corrupt": corrupt, "latest": pointer and pointer["step"],
                "orphan_tmp": sorted(tmp_files(out, "")), "last_logged": C.last_step(out)}


def reference_run(recipe: str, steps: int, every: int, work: Path) -> dict:
    out = work / f"{recipe}_reference"
    args = [recipe, str(out), str(steps), str(every)]
    proc, t0 = launch(args, work / f"{recipe}_reference.log")
    first = None
    while proc.poll() is None:
        if first is None and C.last_step(out) >= 1:
            first = time.time() - t0
        time.sleep(0.01)
    total = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"reference run failed: {(work / f'{recipe}_reference.log').read_text()[-2000:]}")
    first = first or total
    return {"out": out, "metrics": read_metrics(out / "metrics.jsonl"), "startup_s": first, "wall_s": total,
            "step_s": max(1e-3, (total - first) / steps)}


# ============================================================================ 1a. SIGKILL campaign
def kill_campaign(recipe: str, steps: int, every: int, n_kills: int, work: Path, seed: int) -> dict:
    t_start = time.time()
    rng = np.random.default_rng([seed, 1 if recipe == "cgan" else 2])
    ref = reference_run(recipe, steps, every, work)
    log(f"{recipe}: reference {steps} steps in {ref['wall_s']:.1f} s (start-up {ref['startup_s']:.1f} s)")
    out = work / f"{recipe}_killed"
    args = [recipe, str(out), str(steps), str(every)]
    checker = Checker(args, steps, every)
    kinds = [KILL_KINDS[i % len(KILL_KINDS)] for i in range(n_kills)]
    rng.shuffle(kinds)
    # one target step per kill, spread over the run (sorted): each kill lands at or after its target
    targets = np.sort(rng.choice(np.arange(1, steps - 1), size=n_kills, replace=False)).tolist()
    kills, launches, resumes, failed_resumes = [], 0, [], []
    for k, (kind, target) in enumerate(zip(kinds, targets)):
        expected = C.latest_pointer(out)
        resume_step = expected["step"] if expected else 0
        target = max(int(target), C.last_step(out) + 1)  # only new lines count (old ones get truncated)
        if target >= steps:
            break
        before_tmp = tmp_files(out, "")
        extra = ["--replace-delay", str(REPLACE_DELAY)] if kind in ("ckpt_write", "pointer_write") else []
        logfile = work / f"{recipe}_kill{k}.log"
        proc, t0 = launch(args + extra, logfile)
        launches += 1
        if kind == "step":
            hit = wait_until(lambda target=target: C.last_step(out) >= target, proc)
            detail = f"after step {target}"
        elif kind == "time":  # a random moment: start-up jitter included, so some land before training starts
            delay = ref["startup_s"] * float(rng.uniform(0.5, 1.3)) + (target - resume_step) * ref["step_s"]
            hit = wait_until(lambda t0=t0, delay=delay: time.time() - t0 >= delay, proc)
            detail = f"{delay:.2f} s after launch"
        else:
            prefix = "ckpt-" if kind == "ckpt_write" else "latest.json"
            hit = wait_until(lambda target=target: C.last_step(out) >= target, proc) and wait_until(
                lambda p=prefix, b=before_tmp: bool(tmp_files(out, p) - b), proc)
            detail = (f"first checkpoint after step {target}: temp file written, not renamed" if kind == "ckpt_write"
                      else f"first checkpoint after step {target}: renamed, latest.json not yet updated")
        if not hit:  # finished (or died) before the kill could land
            rc = proc.wait()
            kills.append({"kind": kind, "landed": False, "rc": rc, "detail": "process ended first"})
            if rc != 0:
                failed_resumes.append(logfile.read_text()[-1500:])
            break
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait(60)
        state = checker.check(out)
        ev = events(logfile)
        start = next((e for e in ev if e.get("event") == "start"), None)
        if expected is not None:
            if start is None:
                resumes.append({"kill": k, "outcome": "killed during start-up (before the trainer opened)"})
            elif start["resume_from"] != expected["step"]:
                resumes.append({"kill": k, "outcome": f"WRONG resume point {start['resume_from']} "
                                                      f"(latest.json said {expected['step']})"})
            else:
                progressed = state["last_logged"] > expected["step"] or kind in ("ckpt_write", "pointer_write")
                resumes.append({"kill": k, "outcome": "resumed and trained on" if progressed else
                                "resumed (killed before its first new step)", "from": start["resume_from"]})
        kills.append({"kind": kind, "landed": True, "rc": rc, "detail": detail, "step_at_kill": state["last_logged"],
                      "latest_after": state["latest"], "checkpoint_files": state["files"],
                      "corrupt": state["corrupt"], "orphan_tmp": state["orphan_tmp"]})
        log(f"{recipe}: kill {k + 1}/{n_kills} ({kind}, {detail}) at step {state['last_logged']}; latest -> "
            f"{state['latest']}; {len(state['files'])} checkpoint files, {len(state['corrupt'])} corrupt")
    # rerun the same command until the run completes
    final_runs = 0
    while final_runs < 3:
        expected = C.latest_pointer(out)
        logfile = work / f"{recipe}_final{final_runs}.log"
        proc, _ = launch(args, logfile)
        launches += 1
        final_runs += 1
        rc = proc.wait(900)
        ev = events(logfile)
        start = next((e for e in ev if e.get("event") == "start"), None)
        end = next((e for e in ev if e.get("event") == "end"), None)
        if expected is not None:
            ok = rc == 0 and start is not None and start["resume_from"] == expected["step"]
            resumes.append({"kill": None, "outcome": "resumed and completed" if ok else f"FAILED rc={rc}",
                            "from": start and start["resume_from"]})
            if not ok:
                failed_resumes.append(logfile.read_text()[-1500:])
        if rc == 0 and end and end["status"] == "done":
            break
    final_state = checker.check(out)
    got = read_metrics(out / "metrics.jsonl")
    exact = C.strip(got) == C.strip(ref["metrics"])
    first_diff = next((i for i, (a, b) in enumerate(zip(C.strip(got), C.strip(ref["metrics"]))) if a != b), None)
    weights = sorted(p.name for p in (ref["out"] / "model").glob("*.safetensors"))
    same_w = all(C.same_weights(out / "model" / n, ref["out"] / "model" / n) for n in weights) and bool(weights)
    same_cfg = (out / "model" / "config.json").read_bytes() == (ref["out"] / "model" / "config.json").read_bytes()
    landed = [k for k in kills if k["landed"]]
    return {
        "recipe": recipe, "steps": steps, "ckpt_every": every, "data": _data_note(recipe),
        "kills_planned": n_kills, "kills_landed": len(landed),
        "kills_by_kind": {kind: sum(1 for k in landed if k["kind"] == kind) for kind in KILL_KINDS},
        "kills": kills, "launches": launches,
        "resumes_attempted": len(resumes),
        "resumes_failed": sum(1 for r in resumes if r["outcome"].startswith(("FAILED", "WRONG"))),
        "resumes_succeeded": sum(1 for r in resumes if r["outcome"].startswith("resumed")),
        "resumes_cut_in_startup": sum(1 for r in resumes if r["outcome"].startswith("killed during")),
        "resumes": resumes, "failed_resume_logs": failed_resumes,
        "checkpoint_files_checked": sum(len(k["checkpoint_files"]) for k in landed) + len(final_state["files"]),
        "corrupt_checkpoints": sum(len(k["corrupt"]) for k in landed) + len(final_state["corrupt"]),
        "completed": (C.latest_pointer(out) or {}).get("step") == steps and (out / "model").is_dir(),
        "bit_exact_metrics": exact, "first_differing_row": first_diff, "rows": len(got),
        "bit_exact_weights": same_w, "config_identical": same_cfg,
        "orphan_temp_files_left": final_state["orphan_tmp"],
        "reference_wall_s": round(ref["wall_s"], 2), "wall_s": round(time.time() - t_start, 1),
        "_curves": {"reference": ref["metrics"], "resumed": got,
                    "kill_steps": [k["step_at_kill"] for k in landed]},
    }


def _data_note(recipe: str) -> str:
    if recipe == "cgan":
        return "BreastMNIST (shipped) train, 32 per class, 28 px gray"
    return TT.cyclegan_domains(TT.parse_args(["cyclegan", "x", "1", "1"]))[3]


# ============================================================================ 1b. signals
def signal_campaign(recipe: str, steps: int, every: int, work: Path, ref_metrics: list[dict], rng) -> dict:
    out = work / f"{recipe}_signals"
    args = [recipe, str(out), str(steps), str(every)]
    checker = Checker(args, steps, every)
    results = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        logfile = work / f"{recipe}_{sig.name}.log"
        proc, _ = launch(args, logfile)
        target = C.last_step(out) + int(rng.integers(2, every + 3))
        wait_until(lambda target=target: C.last_step(out) >= target, proc)
        t_sig = time.time()
        proc.send_signal(sig)
        rc = proc.wait(120)
        ev = events(logfile)
        end = next((e for e in ev if e.get("event") == "end"), {})
        state = checker.check(out)
        results.append({"signal": sig.name, "sent_after_step": target, "exit_code": rc,
                        "stop_s": round(time.time() - t_sig, 2), "status": end.get("status"),
                        "stopped_at": end.get("step"), "latest_checkpoint": state["latest"],
                        "final_checkpoint_at_stop_step": state["latest"] == end.get("step") == state["last_logged"],
                        "corrupt": state["corrupt"],
                        "message": next((ln for ln in logfile.read_text().splitlines() if "stopped by signal" in ln),
                                        "")})
    proc, _ = launch(args, work / f"{recipe}_signals_final.log")
    rc = proc.wait(900)
    got = read_metrics(out / "metrics.jsonl") if (out / "metrics.jsonl").is_file() else []
    ok = all(r["exit_code"] == 0 and r["status"] == "interrupted" and r["final_checkpoint_at_stop_step"]
             and not r["corrupt"] for r in results)
    return {"recipe": recipe, "stops": results, "resume_exit_code": rc,
            "bit_exact_after_resume": C.strip(got) == C.strip(ref_metrics), "all_handled": ok and rc == 0}


# ============================================================================ 1c. full disk
def fsize_campaign(recipe: str, steps: int, every: int, work: Path, ref_metrics: list[dict]) -> dict:
    """A real kernel refusal: RLIMIT_FSIZE (EFBIG) set after step 7, so the checkpoint of step 10 cannot be
    written; then the limit is gone (space freed) and the same command resumes."""
    out = work / f"{recipe}_fsize"
    args = [recipe, str(out), str(steps), str(every)]
    logfile = work / f"{recipe}_fsize.log"
    proc, _ = launch(args + ["--fsize-limit-after-step", "7", "--fsize-limit", "150000"], logfile)
    rc = proc.wait(600)
    text = logfile.read_text()
    err = next((ln for ln in text.splitlines() if "error:" in ln), "")
    pointer = C.latest_pointer(out)
    state = Checker(args, steps, every).check(out)
    proc, _ = launch(args, work / f"{recipe}_fsize_resume.log")
    rc2 = proc.wait(900)
    got = read_metrics(out / "metrics.jsonl")
    return {"recipe": recipe, "how": "setrlimit(RLIMIT_FSIZE, 150 kB) after step 7 in the training process",
            "exit_code": rc, "error": err, "names_path": "ckpt-0000010.pt" in err,
            "latest_after": pointer, "previous_checkpoint_loadable": not state["corrupt"] and pointer is not None
            and pointer["step"] == 5, "temp_files_left": state["orphan_tmp"], "resume_exit_code": rc2,
            "bit_exact_after_resume": C.strip(got) == C.strip(ref_metrics)}


def disk_full_in_process(work: Path) -> list[dict]:
    """ENOSPC injected into synthaug.io's writes (checkpoint data, or the latest.json rename) after step 8."""
    results = []
    reference = C.strip(read_metrics(C.trainer(C.toy_cgan(), work / "df_ref", 12).fit().metrics_path))
    for pointer_only in (False, True):
        out = work / ("df_pointer" if pointer_only else "df_ckpt")
        fake = C.FullDiskOS(pointer_only=pointer_only)
        recipe = C.toy_cgan()
        C.arm_after(recipe, fake, 7)
        sio.os = fake
        try:
            tr = C.trainer(recipe, out, 12)
            try:
                tr.fit()
                err = None
            except OSError as e:
                err = e
        finally:
            sio.os = os
        before = (out / "checkpoints" / "latest.json").read_text()
        try:
            chk = C.trainer(C.toy_cgan(), out, 12)
            chk.load_checkpoint(chk.latest_checkpoint())
            loadable = chk.step
        except Exception as e:  # noqa: BLE001
            loadable = f"{type(e).__name__}: {e}"
        resumed = C.trainer(C.toy_cgan(), out, 12).fit()
        results.append({
            "case": "rename of latest.json fails (ENOSPC)" if pointer_only else "checkpoint data write fails (ENOSPC)",
            "raised": f"{type(err).__name__}: {err}" if err else "nothing raised",
            "names_path": bool(err) and "ckpt-0000010.pt" in str(err),
            "errno_kept": getattr(err, "errno", None),
            "latest_after": json.loads(before), "previous_checkpoint_loadable_at_step": loadable,
            "temp_files_left": sorted(p.name for p in (out / "checkpoints").glob(".*.tmp")),
            "resume_bit_exact": C.strip(read_metrics(resumed.metrics_path)) == reference,
        })
    # the model export at the end of fit on a full disk, then a rerun
    out = work / "df_export"
    fake = C.FullDiskOS()
    recipe = C.toy_cgan()
    export = recipe.save_pretrained

    def full_then_export(path):
        fake.armed = True
        return export(path)

    recipe.save_pretrained = full_then_export
    sio.os = fake
    try:
        C.trainer(recipe, out, 6).fit()
        msg = "nothing raised"
    except OSError as e:
        msg = f"{type(e).__name__}: {e}"
    finally:
        sio.os = os
    rerun = C.trainer(C.toy_cgan(), out, 6).fit()
    results.append({"case": "model export at the end of fit fails (ENOSPC)", "raised": msg,
                    "names_path": "model" in msg and (".safetensors" in msg or "config.json" in msg),
                    "rerun_exports_model": (rerun.model_dir / "config.json").is_file()})
    # the metrics log on a full disk
    from synthaug.train import engine

    real_open = open

    class _Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, s):
            raise OSError(28, os.strerror(28))

    engine.open = lambda p, mode="r", *a, **k: _Full(real_open(p, mode, *a, **k)) if "a" in mode else \
        real_open(p, mode, *a, **k)
    try:
        C.trainer(C.toy_cgan(), work / "df_metrics", 4).fit()
        msg = "nothing raised"
    except OSError as e:
        msg = f"{type(e).__name__}: {e}"
    finally:
        del engine.open
    results.append({"case": "metrics.jsonl append fails (ENOSPC)", "raised": msg, "names_path": "metrics.jsonl" in msg})
    blocker = work / "a_file"
    blocker.write_text("x")
    try:
        C.trainer(C.toy_cgan(), blocker / "run", 4).fit()
        msg = "nothing raised"
    except OSError as e:
        msg = f"{type(e).__name__}: {e}"
    results.append({"case": "output folder cannot be created (a file is in the way)", "raised": msg,
                    "names_path": "a_file/run" in msg})
    return results


# ============================================================================ 2. divergence
def divergence(work: Path) -> list[dict]:
    out = []

    def case(name, recipe, steps, inject_kw, expect):
        fired = C.inject(recipe, **inject_kw)
        tr = C.trainer(recipe, work / name, steps)
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                res = tr.fit()
            outcome = f"finished step {res.step}, rollbacks {res.rollbacks}"
            finished = True
        except TrainingDivergedError as e:
            outcome = f"TrainingDivergedError: {str(e)[:220]}"
            finished = False
        latest = tr.latest_checkpoint()
        ck = safe_torch_load(latest)
        files = sorted(tr.ckpt_dir.glob("ckpt-*.pt"))
        poisoned = [p.name for p in files if not C.all_finite(safe_torch_load(p)["state"])]
        inj_step = inject_kw["at"] + 1
        good = (not poisoned) and (finished or ck["step"] < inj_step)
        out.append({"case": name, "injected": expect, "at_step": inj_step, "fired": fired["n"], "outcome": outcome,
                    "rollback_message": buf.getvalue().strip()[:200], "latest_step": ck["step"],
                    "latest_finite": C.all_finite(ck["state"]), "checkpoints_with_nan": poisoned, "ok": good})

    case("cgan_transient_nan_loss", C.toy_cgan(), 12, {"at": 7, "key": "d_loss"}, "NaN d_loss once")
    case("cyclegan_transient_nan_loss", C.toy_cyclegan(12), 12, {"at": 7, "key": "cycle"}, "NaN cycle loss once")
    case("cyclegan_persistent_nan_loss", C.toy_cyclegan(20), 20, {"at": 11, "once": False, "key": "d_loss"},
         "NaN/Inf d_loss at every step from 12")
    case("cgan_nan_weight_between_checkpoints", C.toy_cgan(), 12, {"at": 6, "weights": True},
         "a G weight set to NaN after the update of step 7")
    case("cgan_nan_weight_at_checkpoint_step", C.toy_cgan(), 12, {"at": 4, "weights": True},
         "a G weight set to NaN after the update of step 5 (a checkpoint step)")
    return out


# ============================================================================ 3-4. tables, 5. guard
def tables(work: Path) -> dict:
    assets = C.make_assets(work / "assets")
    res = {}
    for name, rows in (("model_files", C.MODEL_FILE_ROWS), ("bad_inputs", C.BAD_INPUT_ROWS)):
        entries = []
        for row in rows:
            tmp = work / name / row.id
            ok, detail = C.check_row(row, tmp, assets)
            entries.append({"id": row.id, "api": row.api, "fed": row.fed, "ok": ok, "detail": detail[:300],
                            "payload": row.payload, "payload_executed": C.marker_path(tmp).exists(),
                            "known_gap": row.xfail})
        res[name] = entries
    return res


def file_modes(work: Path) -> dict:
    """Permissions of what a run writes, under umask 022 (a model directory is meant to be shared)."""
    old = os.umask(0o022)
    try:
        res = C.trainer(C.toy_cgan(), work / "modes", 2).fit()
    finally:
        os.umask(old)
    modes = {str(p.relative_to(res.out_dir)): oct(p.stat().st_mode & 0o777)
             for p in sorted(res.out_dir.rglob("*")) if p.is_file()}
    return {"umask": "0o022", "modes": modes,
            "model_files_readable_by_others": all(int(m, 8) & 0o004 for k, m in modes.items()
                                                  if k.startswith("model/"))}


def memorization() -> dict:
    from synthaug.data import load_breastmnist
    from synthaug.eval.memorization import memorization_audit

    real = load_breastmnist(n_per_class=40, seed=0)
    novel = C.novel_images()
    bank, planted = C.planted_set(real.images, novel)
    audit = memorization_audit(bank, real)
    flagged = set(np.flatnonzero(audit["flagged"]).tolist())
    ds, gen, caught = C.guarded_dataset(real, bank)
    kept_positions = [i for i in range(len(bank)) if i not in planted]
    asked = torch.cat(gen.asked)
    aligned = torch.equal(ds.labels, asked[kept_positions]) if len(ds) == len(kept_positions) else False
    # the known gap: a near-copy of a training image that has a near-duplicate inside the training set
    d = torch.cdist(real.images.flatten(1).double(), real.images.flatten(1).double()).fill_diagonal_(float("inf"))
    dup = int(d.min(1).values.argmin())
    g = torch.Generator().manual_seed(0)
    near = (real.images[dup] + 0.02 * torch.randn(real.images[dup].shape, generator=g)).clamp(-1, 1)
    a2 = memorization_audit(near[None], real)
    # BreastMNIST's own splits: how many held-out images sit next to a training image
    full = load_breastmnist()
    split_dups = {}
    for split in ("val", "test"):
        x = load_breastmnist(split=split).images
        a3 = memorization_audit(x, full)
        split_dups[split] = {"n": len(x), "flagged_by_audit": int(a3["summary"]["n_flagged"]),
                             "pixel_l2_below_1": int((a3["d_sf"] < 1.0).sum()),
                             "median_nn_l2": round(float(np.median(a3["d_sf"])), 2)}
    return {"reference": "BreastMNIST train, 40 per class (80 images)",
            "novel": f"{len(novel)} held-out val images, mirrored", "planted_exact": 6, "planted_near": 6,
            "near_copy_noise": "N(0, 0.02) in [-1, 1] units", "audit_flagged_planted": len(flagged & planted),
            "audit_flagged_novel": len(flagged - planted), "guard_dropped": ds.n_dropped,
            "guard_dropped_exactly_the_planted": len(ds) == len(kept_positions)
            and torch.equal(ds.images, bank[kept_positions]),
            "novel_kept": len(ds), "labels_aligned": bool(aligned), "warning": next(iter(caught), None),
            "duplicate_source_case": {"train_nn_distance": round(float(d[dup].min()), 3),
                                      "ratio": round(float(a2["ratio"][0]), 3), "flagged": bool(a2["flagged"][0])},
            "breastmnist_split_near_duplicates": split_dups}


# ============================================================================ figure + report
def plot(camps: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = {"cgan": ("d_loss", "g_loss"), "cyclegan": ("cycle", "d_loss")}
    fig, axes = plt.subplots(len(camps), 2, figsize=(11, 3.4 * len(camps)), squeeze=False)
    for row, c in zip(axes, camps):
        cur = c["_curves"]
        for ax, key in zip(row, keys[c["recipe"]]):
            rs = [r["step"] for r in cur["reference"]]
            ax.plot(rs, [r[key] for r in cur["reference"]], "-", color="tab:blue", lw=2.2, label="uninterrupted")
            ks = [r["step"] for r in cur["resumed"]]
            ax.plot(ks, [r[key] for r in cur["resumed"]], "--", color="tab:orange", lw=1.4, marker=".", ms=4,
                    label=f"killed {c['kills_landed']}x + resumed")
            for i, s in enumerate(cur["kill_steps"]):
                ax.axvline(s, color="tab:red", lw=0.8, ls=":", label="SIGKILL" if i == 0 else None)
            ax.set_title(f"{c['recipe']}: {key} ({'bit-exact' if c['bit_exact_metrics'] else 'DIFFERS'})")
            ax.set_xlabel("step")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine() -> dict:
    """``harness.machine()`` plus what this report adds: uncommitted changes in the tree, and root or not."""
    try:
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True,
                               timeout=10).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return {**H.machine(), "git_dirty": dirty, "user_is_root": hasattr(os, "geteuid") and os.geteuid() == 0}


def machine_line(m: dict) -> list[str]:
    """The report's machine lines; reads ``harness.machine()`` keys, or the keys of reports written before it."""
    git = m.get("git") or ((m.get("git_commit") or "unknown")[:10]
                           + (" (working tree with uncommitted changes)" if m.get("git_dirty") else ""))
    return [H.machine_line({**m, "git_commit": None}, m.get("platform", "")) + "  ", f"synthaug at {git}  "]


def report(res: dict, md_path: Path) -> None:
    """Write the markdown report from the result dict (also what ``reliability.json`` holds)."""
    camps, sigs, fs = res["kills"], res["signals"], res["disk_full"]
    mf, bi = res["tables"]["model_files"], res["tables"]["bad_inputs"]
    payload_rows = [r for r in mf if r["payload"]]
    mem, s = res["memorization"], res["summary"]
    yn = lambda b: "yes" if b else "**no**"  # noqa: E731
    lines = [
        "# Reliability and safety",
        "",
        f"Command: `{res['command']}`  ",
        *machine_line(res["machine"]),
        f"Wall time: {res['wall_s']:.0f} s ({res['mode']} mode, seed {res['seed']})",
        "",
        "## Summary",
        "",
        "| figure | value |",
        "|---|---|",
        f"| SIGKILLs survived / total | {s['kills_survived']} / {s['kills_total']} "
        f"({', '.join(f'{k} {v}' for k, v in s['kills_by_kind'].items())}) |",
        f"| resumes succeeded / attempted | {s['resumes_succeeded']} / {s['resumes_attempted']} "
        f"({s['resumes_cut_in_startup']} more relaunches were killed during start-up, before the trainer "
        f"opened; {s['resumes_failed']} failed) |",
        f"| corrupt checkpoints (every file opened after every kill) | {s['corrupt_checkpoints']} of "
        f"{s['checkpoint_files_checked']} opened |",
        *[f"| bit-exact after kills + resumes, {c['recipe']} | metrics {yn(c['bit_exact_metrics'])}, "
          f"exported weights {yn(c['bit_exact_weights'])} |" for c in camps],
        f"| signals handled (exit 0, final checkpoint at the stop step, resume bit-exact) | "
        f"{s['signals_handled']} / {s['signals_total']} |",
        f"| disk full | {s['disk_full']} |",
        f"| divergence cases handled | {s['divergence_ok']} / {s['divergence_total']} |",
        f"| payloads executed | {s['payloads_executed']} (of {len(payload_rows)} crafted pickles) |",
        f"| bad model files refused clearly | {s['model_files_refused']} / {s['model_files_total']} |",
        f"| bad inputs refused clearly (or loaded as documented) | {s['bad_inputs_ok']} / {s['bad_inputs_total']} |",
        f"| near-copies caught | audit {mem['audit_flagged_planted']} / 12, guard dropped {mem['guard_dropped']} / "
        f"12; novel images dropped {mem['audit_flagged_novel']} / {mem['novel_kept'] + mem['audit_flagged_novel']} |",
        "",
        "## 1. Crash safety: SIGKILL",
        "",
        "Each recipe: an uninterrupted reference run, then the same command killed with SIGKILL at seeded random "
        "moments and rerun until it completes. Kill kinds: `step` (after a random number of new steps), `time` "
        "(a random time after launch, start-up included), `ckpt_write` (a checkpoint's temp file complete, not "
        f"yet renamed; renames delayed {REPLACE_DELAY} s by `--replace-delay`), `pointer_write` (checkpoint "
        "renamed, `latest.json` not yet updated). After each kill every `ckpt-*.pt` present was opened with "
        "`Trainer.load_checkpoint`.",
        "",
        "| recipe | data | steps / ckpt_every | kills | launches | resumes ok / attempted (+ cut in start-up) | "
        "corrupt | "
        "metrics bit-exact | weights bit-exact | orphan temp files left | wall |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in camps:
        lines.append(f"| {c['recipe']} | {c['data']} | {c['steps']} / {c['ckpt_every']} | {c['kills_landed']} | "
                     f"{c['launches']} | {c['resumes_succeeded']} / "
                     f"{c['resumes_attempted'] - c['resumes_cut_in_startup']} (+{c['resumes_cut_in_startup']}) | "
                     f"{c['corrupt_checkpoints']} / {c['checkpoint_files_checked']} | {yn(c['bit_exact_metrics'])} | "
                     f"{yn(c['bit_exact_weights'])} | {len(c['orphan_temp_files_left'])} | {c['wall_s']:.0f} s |")
    lines += ["", "Kills in order (step = last step logged when the kill landed; latest = `latest.json` after it):", ""]
    for c in camps:
        seq = "; ".join(f"{k['kind']} @ {k.get('step_at_kill', '-')} -> latest {k.get('latest_after', '-')}"
                        for k in c["kills"])
        lines.append(f"- {c['recipe']}: {seq}")
    orphans = sum(len(c["orphan_temp_files_left"]) for c in camps)
    lines += ["", f"Orphaned temp files: every kill that landed between a temp file's write and its rename left "
              f"that temp file (`.ckpt-*.tmp`, a full checkpoint, or `.latest.json.*.tmp`) behind; {orphans} "
              "remained in the finished runs' checkpoint folders (a resume removes them).",
              "", "![loss curves](reliability.png)", "",
              "The dashed curve (killed and resumed) lies exactly on the solid one (uninterrupted); dotted red "
              "lines mark where kills landed.", "", "## 1b. SIGINT / SIGTERM", "",
              "| recipe | signal | sent after step | exit code | status | stopped at | latest checkpoint | "
              "signal to exit (interpreter shutdown included) |", "|---|---|---|---|---|---|---|---|"]
    for sg in sigs:
        for r in sg["stops"]:
            lines.append(f"| {sg['recipe']} | {r['signal']} | {r['sent_after_step']} | {r['exit_code']} | "
                         f"{r['status']} | {r['stopped_at']} | {r['latest_checkpoint']} | {r['stop_s']} s |")
    for sg in sigs:
        lines.append(f"\n{sg['recipe']}: resumed after both signals, exit code {sg['resume_exit_code']}, "
                     f"metrics bit-exact with the uninterrupted run: {yn(sg['bit_exact_after_resume'])}.")
    lines += ["", "## 1c. Full disk / unwritable output", "", "| case | error raised | names the path | "
              "previous checkpoint | resume |", "|---|---|---|---|---|"]
    for r in fs["in_process"]:
        prev = (f"latest.json -> {r['latest_after']['file']}, loads (step "
                f"{r['previous_checkpoint_loadable_at_step']}); temp files left: {len(r['temp_files_left'])}"
                if "latest_after" in r else "-")
        resume = ("bit-exact" if r.get("resume_bit_exact") else "**differs**") if "resume_bit_exact" in r else "-"
        if "rerun_exports_model" in r:
            resume = "rerun exports the model" if r["rerun_exports_model"] else "**rerun fails**"
        lines.append(f"| {r['case']} | `{r['raised'][:230]}` | {yn(r['names_path'])} | {prev} | {resume} |")
    for r in fs["subprocess"]:
        lines.append(f"| {r['recipe']}: {r['how']} (exit code {r['exit_code']}) | `{r['error'][:230]}` | "
                     f"{yn(r['names_path'])} | latest.json -> {r['latest_after'] and r['latest_after']['file']}, "
                     f"loads: {yn(r['previous_checkpoint_loadable'])}; temp files left: {len(r['temp_files_left'])} "
                     f"| rerun: exit {r['resume_exit_code']}, "
                     f"{'bit-exact' if r['bit_exact_after_resume'] else '**differs**'} |")
    lines += ["", "## 2. Divergence (in process, tiny 16 px nets, checkpoints every 5 steps)", "",
              "| case | injected | outcome | latest checkpoint | checkpoints holding NaN | ok |",
              "|---|---|---|---|---|---|"]
    for r in res["divergence"]:
        lines.append(f"| {r['case']} | {r['injected']} | {r['outcome'][:160]} | step {r['latest_step']} "
                     f"(finite: {yn(r['latest_finite'])}) | {r['checkpoints_with_nan'] or 'none'} | {yn(r['ok'])} |")
    for title, rows in (("## 3. Model files (payloads would create a marker file)", mf),
                        ("## 4. Bad-input matrix", bi)):
        lines += ["", title, "", "| row | API | fed | result | |", "|---|---|---|---|---|"]
        for r in rows:
            mark = "ok" if r["ok"] else "**GAP**"
            if r["payload_executed"]:
                mark = "**PAYLOAD EXECUTED**"
            lines.append(f"| {r['id']} | {r['api']} | {r['fed']} | `{r['detail'][:200]}` | {mark} |")
    fm = res["file_modes"]
    lines += ["", f"File permissions under umask {fm['umask']}: " + ", ".join(
        f"`{k}` {v}" for k, v in fm["modes"].items() if k.startswith(("model/", "checkpoints/latest", "metrics"))) +
        f". Model files readable by other users: {yn(fm['model_files_readable_by_others'])}."]
    dup = mem["duplicate_source_case"]
    lines += ["", "## 5. Memorisation guard", "",
              f"Reference: {mem['reference']}. Synthetic bank: {mem['novel']} plus {mem['planted_exact']} exact and "
              f"{mem['planted_near']} near copies ({mem['near_copy_noise']}) of training images without a "
              f"near-duplicate in the training set, shuffled. `memorization_audit` flagged "
              f"{mem['audit_flagged_planted']} / 12 planted and {mem['audit_flagged_novel']} novel; "
              f"`SyntheticDataset(drop_near_copies=1/3, reference=...)` dropped {mem['guard_dropped']}, kept "
              f"{mem['novel_kept']} novel images, labels aligned: {yn(mem['labels_aligned'])}. Warning: "
              f"\"{mem['warning']}\".", "",
              f"Known gap: a near-copy of a training image that has a near-duplicate inside the training set "
              f"(nearest other training image {dup['train_nn_distance']} away) scores ratio {dup['ratio']} and is "
              f"{'flagged' if dup['flagged'] else '**not flagged**'}.", "",
              "BreastMNIST's own splits hold near-duplicates of training images (pixel L2 < 1 in [-1, 1] units, "
              "about 4.5 grey levels RMS; median nearest-neighbour distance ~5.6): " + "; ".join(
                  f"{k}: {v['pixel_l2_below_1']} of {v['n']} (audit flags {v['flagged_by_audit']})"
                  for k, v in mem["breastmnist_split_near_duplicates"].items()) + ".", ""]
    lines += ["## Findings for the library (details and patches in the reliability report to the lead)", ""]
    lines += [f"- {f}" for f in FINDINGS]
    text = "\n".join(lines) + "\n"
    if res.get("scratch"):
        text = text.replace(res["scratch"], "$WORK")
    md_path.write_text(text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="10 kills, shorter runs (< 5 min)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    p.add_argument("--work", default=None, help="scratch folder (default: a temp folder, removed at the end)")
    p.add_argument("--render", action="store_true", help="only rewrite reliability.md from reliability.json")
    args = p.parse_args(argv)
    if args.render:
        res = json.loads((Path(args.out) / "reliability.json").read_text())
        report(res, Path(args.out) / "reliability.md")
        return 0
    t0 = time.time()
    mode = "quick" if args.quick else "full"
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="synthaug_reliability_"))
    work.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", category=UserWarning)
    res = {"command": "OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/reliability.py"
                      + (" --quick" if args.quick else "") + (f" --seed {args.seed}" if args.seed else ""),
           "mode": mode, "seed": args.seed, "machine": machine(), "scratch": str(work)}
    log(f"reliability benchmark ({mode}), scratch {work}")
    # in-process sections first: the subprocess campaigns' checkers change torch's global RNG state
    res["disk_full"] = {"in_process": disk_full_in_process(work)}
    log("disk-full (in process) done")
    res["divergence"] = divergence(work)
    log("divergence done")
    res["tables"] = tables(work)
    res["file_modes"] = file_modes(work)
    log("model-file and bad-input tables done")
    res["memorization"] = memorization()
    log("memorisation guard done")
    plan = PLAN[mode]

    def recipe_campaign(recipe: str) -> tuple[dict, dict, list]:
        steps, every, n_kills = plan[recipe]
        camp = kill_campaign(recipe, steps, every, n_kills, work, args.seed)
        ref_metrics = camp["_curves"]["reference"]
        rng = np.random.default_rng([args.seed, 3 if recipe == "cgan" else 4])
        sig = signal_campaign(recipe, steps, every, work, ref_metrics, rng)
        log(f"{recipe}: signals done")
        fsz = [fsize_campaign(recipe, steps, every, work, ref_metrics)] if recipe == "cgan" or mode == "full" else []
        log(f"{recipe}: campaign done in {camp['wall_s']:.0f} s + signals/full disk")
        return camp, sig, fsz

    with ThreadPoolExecutor(max_workers=2) as pool:  # two single-threaded trainings at a time (2 CPUs)
        outs = list(pool.map(recipe_campaign, ["cgan", "cyclegan"]))
    res["kills"] = [o[0] for o in outs]
    res["signals"] = [o[1] for o in outs]
    res["disk_full"]["subprocess"] = [f for o in outs for f in o[2]]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot(res["kills"], out_dir / "reliability.png")

    camps = res["kills"]
    mf, bi = res["tables"]["model_files"], res["tables"]["bad_inputs"]
    fs_all = res["disk_full"]["in_process"][:2] + res["disk_full"]["subprocess"]
    disk_ok = all(r["names_path"] for r in fs_all) and all(
        r.get("resume_bit_exact", r.get("bit_exact_after_resume")) for r in fs_all)
    by_case = {r["case"].split(" ")[0]: r for r in res["disk_full"]["in_process"]}
    extra = [f"metrics.jsonl append error names the file: {'yes' if by_case['metrics.jsonl']['names_path'] else 'NO'}",
             f"model-export error names the file: {'yes' if by_case['model']['names_path'] else 'NO'} (a rerun "
             f"{'exports it' if by_case['model']['rerun_exports_model'] else 'FAILS'})"]
    res["summary"] = {
        "kills_total": sum(c["kills_landed"] for c in camps),
        "kills_survived": sum(c["kills_landed"] for c in camps if c["completed"] and c["corrupt_checkpoints"] == 0
                              and c["bit_exact_metrics"]),
        "kills_by_kind": {k: sum(c["kills_by_kind"][k] for c in camps) for k in KILL_KINDS},
        "resumes_attempted": sum(c["resumes_attempted"] - c["resumes_cut_in_startup"] for c in camps),
        "resumes_succeeded": sum(c["resumes_succeeded"] for c in camps),
        "resumes_failed": sum(c["resumes_failed"] for c in camps),
        "resumes_cut_in_startup": sum(c["resumes_cut_in_startup"] for c in camps),
        "corrupt_checkpoints": sum(c["corrupt_checkpoints"] for c in camps),
        "checkpoint_files_checked": sum(c["checkpoint_files_checked"] for c in camps),
        "bit_exact": {c["recipe"]: {"metrics": c["bit_exact_metrics"], "weights": c["bit_exact_weights"]}
                      for c in camps},
        "signals_total": sum(len(sg["stops"]) for sg in res["signals"]),
        "signals_handled": sum(len(sg["stops"]) for sg in res["signals"] if sg["all_handled"]
                               and sg["bit_exact_after_resume"]),
        "disk_full": ("checkpoint writes (ENOSPC in process, EFBIG from the kernel): clear error naming the file, "
                      "previous checkpoint untouched and loadable, resume bit-exact" if disk_ok else
                      "checkpoint writes: see section 1c") + "; " + "; ".join(extra),
        "divergence_ok": sum(r["ok"] for r in res["divergence"]), "divergence_total": len(res["divergence"]),
        "payloads_executed": sum(r["payload_executed"] for r in mf + bi),
        "model_files_refused": sum(r["ok"] for r in mf), "model_files_total": len(mf),
        "bad_inputs_ok": sum(r["ok"] for r in bi), "bad_inputs_total": len(bi),
        "near_copies_caught_by_audit": res["memorization"]["audit_flagged_planted"],
        "near_copies_dropped_by_guard": res["memorization"]["guard_dropped"], "near_copies_planted": 12,
    }
    res["wall_s"] = round(time.time() - t0, 1)
    for c in camps:
        c.pop("_curves")
    (out_dir / "reliability.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    report(res, out_dir / "reliability.md")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    log(f"done in {res['wall_s']:.0f} s: {json.dumps(res['summary'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
