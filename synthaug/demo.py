"""`make demo`: does a conditional GAN trained on the shipped BreastMNIST help a small classifier?

One seed of the ``breast`` benchmark study, with its settings (a 700-step cGAN with nearest + conv upsampling;
every classifier trained to convergence with early stopping on validation; test scored once per arm):

* ``real_only``; ``classical_flips_shifts`` and ``classical_randaugment`` (the better one on validation is
  the "best classical" reference);
* ``synthetic_balance``: every class topped up with cGAN samples to the size of the largest (the study's best
  5-seed synthetic arm), and its count-matched control ``real_copies_balance`` (copies of real images).

Writes to ``demo_out/`` (or ``--out``): ``real_vs_synthetic.png``, ``comparison.png`` (this run's test AUC next
to the 5-seed study's means and 95% intervals, shipped as ``synthaug/data/assets/demo_reference.json``),
``demo_report.{md,json}``, the cGAN run ``cgan/`` (checkpoints, sample grids, ``model/``) and ``arms/`` (one
result per classifier). On a CPU with two or more cores the four arms that need no generator and the study's
feature encoder for the generator's scores train in a second process (one thread each when there are two cores)
while the cGAN and ``synthetic_balance`` train; the first process then takes what is left. Killed, it resumes: the
cGAN from its last checkpoint, finished arms from ``arms/``.
Uses only the BreastMNIST copy inside the package. ``--quick`` runs a few steps of everything (for tests).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

# the breast study's generator run (benchmarks/studies/medical.py): 700 steps of CGANConfig(**GAN_SETTINGS), nearest
# + conv upsampling (transposed convolutions, the library's default, leave checkerboard blocks after 700 steps:
# benchmarks/results/demo_generator.md)
GAN_STEPS = 700
GAN_SETTINGS = {"g_kwargs": {"upsample": "nearest"}}
CLASSICAL = ("flips_shifts", "randaugment")
QUICK = dict(gan_steps=20, classifier=dict(max_steps=12, eval_every=4, patience=2), encoder_steps=10)
ARMS = ("real_only", *(f"classical_{k}" for k in CLASSICAL), "real_copies_balance", "synthetic_balance")
# what needs no generator (the arms and the study's feature encoder, 20-50 s each on one core), longest first
SHARED_WORK = ("classical_flips_shifts", "classical_randaugment", "encoder", "real_copies_balance", "real_only")
# The study's generator evaluation (benchmarks/studies/medical.py, generator_eval): FID, KID, precision, recall and
# coverage of a pool as large as its arms draw (shares 0.25 and 0.5 of synthetic, and balance) against the real
# training split, in the features of a SmallCNN trained on that split (1,500 steps, best validation step)
GENERATOR_METRICS = ("fid", "kid_mean", "precision", "recall", "coverage")
STUDY_SHARES = (0.25, 0.5)
ENCODER_STEPS = 1500
STUDY_CMD = "python -m benchmarks.studies.medical --study breast"
# The 5-seed breast study's test-AUC comparison, shipped with the package (package data, so an installed wheel has
# it): written by that study when it writes its report (write_reference), never read from the repository tree.
REFERENCE_JSON = Path(__file__).resolve().parent / "data" / "assets" / "demo_reference.json"
REFERENCE_KEYS = ("metric", "seeds", "baseline", "classical", "best_classical", "summary", "vs_baseline",
                  "vs_best_classical")


def comparison_grid(real, model, path, n_per_class: int = 8, seed: int = 0) -> Path:
    """PNG with two rows per class: real training images, then samples of ``model`` for that class."""
    from .utils import save_grid

    g = torch.Generator().manual_seed(seed)
    rows, names = [], []
    for c, name in enumerate(real.class_names):
        idx = torch.nonzero(real.labels == c).flatten()
        pick = idx[torch.randperm(len(idx), generator=g)[:n_per_class]]
        fake, _ = model.sample(n_per_class, labels=c, seed=seed + c)
        reals = real.images[pick]
        if len(reals) < n_per_class:
            reals = torch.cat([reals, torch.ones(n_per_class - len(reals), *reals.shape[1:])])
        rows += [reals, fake]
        names += [f"{name} real", f"{name} synthetic"]
    return save_grid(torch.cat(rows), path, nrow=n_per_class, row_labels=names,
                     title="BreastMNIST: real vs cGAN samples", dpi=200)


def write_reference(study_report: dict, path: Path = REFERENCE_JSON) -> Path:
    """Write the demo's reference numbers from the breast study's report (``medical_breast.json`` as a dict): its
    test-AUC comparison's :data:`REFERENCE_KEYS` (``summary`` rows, ``vs_baseline``, ``vs_best_classical``, ...), the
    package data :func:`study_auc` reads, and the means and 95% intervals over seeds of its generators'
    :data:`GENERATOR_METRICS` (:func:`study_generator`). ``benchmarks/studies/medical.py`` calls it when it writes
    that report."""
    from .eval import mean_ci
    from .study.cache import write_json

    auc = study_report["comparisons"]["test_auc"]
    gen = [g["synthetic_vs_train"] for g in study_report.get("generator_eval", {}).values() if g]
    ref = {"source": "benchmarks/results/medical_breast.json (comparisons.test_auc, generator_eval)",
           "command": STUDY_CMD, "test_auc": {k: auc[k] for k in REFERENCE_KEYS if k in auc},
           "generator": {m: mean_ci([g[m] for g in gen]) for m in GENERATOR_METRICS} if gen else {}}
    return write_json(Path(path), ref)  # atomic; NaN (a comparison with no test) as null, as in the study's JSON


def study_auc(path: Path = REFERENCE_JSON) -> dict:
    """The 5-seed breast study's test-AUC comparison (``summary`` rows, ``vs_baseline``, ``vs_best_classical``,
    ``best_classical``) from the package's reference file, or ``{}`` when it is missing or unreadable."""
    return _reference(path, "test_auc")


def study_generator(path: Path = REFERENCE_JSON) -> dict:
    """The breast study's generator metrics (:data:`GENERATOR_METRICS` -> ``{mean, lo, hi, std, n}`` over its seeds)
    from the package's reference file, or ``{}`` when it is missing or unreadable."""
    return _reference(path, "generator")


def _reference(path: Path, key: str) -> dict:
    try:
        return json.loads(Path(path).read_text())[key]
    except (OSError, KeyError, ValueError):
        return {}


def feature_encoder(out: Path, seed: int, steps: int, threads: int) -> Path:
    """The breast study's feature encoder for ``seed`` (:func:`synthaug.eval.train_feature_encoder` on the real
    training split, ``steps`` at most, best validation step) as ``out/encoder.safetensors``; one already there with
    the same seed and steps is reused."""
    from .data import load_breastmnist
    from .eval import train_feature_encoder

    path = out / "encoder.safetensors"
    if encoder_ready(path, seed, steps):
        return path
    torch.set_num_threads(threads)
    train, val = load_breastmnist("train"), load_breastmnist("val")
    enc = train_feature_encoder(train, val_ds=val, max_steps=steps, seed=seed, device="cpu")
    return enc.save(path)  # atomic: a killed run leaves no half-written encoder


def study_text(auc: dict) -> str:
    """What the 5-seed study says about ``synthetic_balance`` (read from its report, not typed in here), in the
    verdict wording of every study report (:func:`synthaug.study.verdict`)."""
    from .study import verdict

    if not auc:
        return f"The 5-seed study is not at hand here; run `{STUDY_CMD}` in the repository."
    sd = next(r["std"] for r in auc["summary"] if r["arm"] == "real_only")
    vs_real = verdict("synthetic_balance", "real_only", auc["vs_baseline"]["synthetic_balance"])
    vs_best = verdict("synthetic_balance", auc["best_classical"], auc["vs_best_classical"]["synthetic_balance"])
    return (f"In the study, real_only's test AUC varies by {sd:.3f} (standard deviation) from seed to seed. "
            f"The {len(auc['seeds'])}-seed study (each seed retrains its cGAN) finds: {vs_real}; {vs_best}. "
            f"See benchmarks/results/medical_breast.md (`{STUDY_CMD}`).")


def generator_table(metrics: dict, study: dict) -> list[str]:
    """Markdown lines: this run's generator metrics next to the study's mean [95% interval] over its seeds."""
    head = " | ".join(GENERATOR_METRICS)
    lines = ["Generator: a pool as large as the study's against the real training split, in the features of the "
             "study's encoder (a SmallCNN trained on that split); FID and KID lower is better, precision, recall "
             "and coverage higher.", "", f"| | {head} |", "|---|" + "---|" * len(GENERATOR_METRICS),
             "| this run | " + " | ".join(f"{metrics[m]:.3f}" for m in GENERATOR_METRICS) + " |"]
    if study:
        n = study[GENERATOR_METRICS[0]]["n"]
        lines.append(f"| study, {n} seeds | " + " | ".join(
            f"{study[m]['mean']:.3f} [{study[m]['lo']:.3f}, {study[m]['hi']:.3f}]" for m in GENERATOR_METRICS) + " |")
    return lines


def comparison_plot(results: dict[str, dict], study: dict[str, dict], path: Path, title: str) -> Path:
    """Bars: this run's test AUC per arm; black marks: the 5-seed study's mean and 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    auc = np.array([results[a]["test_auc"] for a in names])
    fig, ax = plt.subplots(figsize=(7.5, 3.8), dpi=120)
    ax.bar(range(len(names)), auc, color="#4c72b0", alpha=0.8, label="this run (1 seed)")
    vals = list(auc)
    for i, a in enumerate(names):
        ax.annotate(f"{auc[i]:.3f}", (i, auc[i]), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=7)
        if a in study:
            r = study[a]
            ax.errorbar(i + 0.25, r["mean"], yerr=[[r["mean"] - r["lo"]], [r["hi"] - r["mean"]]], fmt="o",
                        color="black", ms=4, capsize=4, label=None if vals[len(names):] else
                        f"study: mean, 95% CI over {r['n']} seeds")
            vals = vals + [r["lo"], r["hi"]]
    span = max(max(vals) - min(vals), 0.02)
    ax.set_ylim(max(0.0, min(vals) - 0.4 * span), min(1.0, max(vals) + 0.4 * span))
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("test AUC")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def encoder_ready(path: Path, seed: int, steps: int) -> bool:
    """Whether ``path`` holds a feature encoder trained with this seed and step budget."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["synthaug_encoder"])
        return (meta["seed"], meta["max_steps"]) == (seed, steps)
    except (OSError, KeyError, TypeError, ValueError, SafetensorError):
        return False


def cached_arm(folder: Path, name: str, key: dict, run) -> tuple[dict, bool]:
    """The result of arm ``name`` under settings ``key``: read from ``folder`` if it was run with the same
    settings, else ``run()`` and written there atomically. Returns ``(result, was_cached)``."""
    from .io import atomic_write_bytes

    saved = load_cached(folder, name, key)
    if saved is not None:
        return saved, True
    result = run()
    atomic_write_bytes(folder / f"{name}.json",
                       json.dumps({"key": _digest(key), "result": result}, indent=1, default=float).encode())
    return result, False


def load_cached(folder: Path, name: str, key: dict) -> dict | None:
    """The result :func:`cached_arm` wrote for ``name`` under settings ``key``, or None."""
    try:
        saved = json.loads((folder / f"{name}.json").read_text())
        return saved["result"] if saved.get("key") == _digest(key) else None
    except (OSError, ValueError, KeyError, AttributeError):
        return None


def _digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def one_seed_differences(results: dict[str, dict], best: str) -> list[str]:
    """This run's differences in test AUC: synthetic_balance against real only, the best classical arm (chosen on
    validation) and the count-matched real copies. One seed has no interval, so none is called better or worse."""
    syn = results["synthetic_balance"]["test_auc"]
    refs = [("real_only", "real_only"), (best, f"{best} (best classical on validation)"),
            ("real_copies_balance", "real_copies_balance (as many extra images, copies of real ones)")]
    return [f"- synthetic_balance - {label}: {syn - results[arm]['test_auc']:+.3f}" for arm, label in refs] + [
        "- one seed gives no interval: these differences are neither better nor worse, only an indication"]


def cpu_split(device: torch.device) -> tuple[int, int]:
    """``(processes, threads each)``: on a CPU with two or more cores the generator-free arms train in a second
    process while this one trains the cGAN (the nets are small, so two one-thread processes use two cores better
    than one two-thread process); elsewhere everything runs here on torch's default threads."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if device.type != "cpu" or cores < 2:
        return 1, torch.get_num_threads()
    return 2, cores // 2


def arm_key(key: dict, name: str, threads: int) -> dict:
    """The settings arm ``name`` is cached under (the thread count changes the rounding)."""
    return {**key, "arm": name, "threads": threads}


def run_demo_arm(name: str, out: Path, key: dict, clf: dict, seed: int, device: str, threads: int,
                 synthetic=None, progress: bool = False) -> tuple[dict, bool]:
    """Train and score arm ``name`` of :data:`ARMS` on BreastMNIST with ``threads`` torch threads, or load it from
    ``out/arms`` if it ran with the same settings: ``(result, was_cached)``. ``synthetic_balance`` needs its
    ``synthetic`` pool; the other arms need nothing from the cGAN, so a second process can run them."""
    from .augment.plan import synthetic_counts
    from .data import load_breastmnist
    from .eval.downstream import real_copies, run_arm

    def run() -> dict:  # only when the arm is not on disk
        torch.set_num_threads(threads)
        train, val, test = (load_breastmnist(s) for s in ("train", "val", "test"))
        extra = synthetic
        if name == "real_copies_balance":
            extra = real_copies(train, synthetic_counts(train.labels.numpy(), train.num_classes, balance=True))
        kind = name.removeprefix("classical_") if name.startswith("classical_") else None
        ratio = "balance" if name.endswith("_balance") else 0.0
        return run_arm(name, train, val, test, synthetic=extra, ratio=ratio, classical=kind, seed=seed,
                       device=torch.device(device), progress=progress, **clf)

    return cached_arm(out / "arms", name, arm_key(key, name, threads), run)


def set_aside_other_run(run_dir: Path, recipe) -> Path | None:
    """Rename ``run_dir`` to ``<run_dir>.previous-N`` when it holds a run with other settings than ``recipe``'s (a
    demo of an earlier version: its generator differed), so the demo trains afresh instead of refusing to resume;
    returns the new name, or None when there was nothing to set aside."""
    from .train.engine import check_out_dir

    try:
        check_out_dir(run_dir, recipe.name, recipe.config_dict())
        return None
    except ValueError:
        n = 1
        while (aside := run_dir.with_name(f"{run_dir.name}.previous-{n}")).exists():
            n += 1
        run_dir.rename(aside)
        print(f"{run_dir} held a cGAN run with other settings (an earlier demo's): moved to {aside}", flush=True)
        return aside


def take(work: list[str], counter) -> str | None:
    """The next item of ``work`` that no process has taken yet (``counter``: a ``multiprocessing.Value`` both
    processes share), or None when all are taken."""
    with counter.get_lock():
        i = counter.value
        counter.value = i + 1
    return work[i] if i < len(work) else None


def do_work(item: str, arm_args: tuple, encoder_args: tuple, progress: bool = False) -> tuple[dict, bool] | None:
    """Item ``item`` of :data:`SHARED_WORK`: the feature encoder (:func:`feature_encoder`) or an arm
    (:func:`run_demo_arm`, whose result it returns)."""
    if item == "encoder":
        feature_encoder(*encoder_args)
        return None
    return run_demo_arm(item, *arm_args, progress=progress)


def second_process(work: list[str], counter, arm_args: tuple, encoder_args: tuple) -> None:
    """The second process: items of ``work`` (:func:`take`, :func:`do_work`) until none is left. Everything lands on
    disk, where the first process reads it; Ctrl-C is left to the first process, which stops this one."""
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # stopped by the first process: exit through Python, so the resources it made (tqdm's lock) are released
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    while (item := take(work, counter)) is not None:
        do_work(item, arm_args, encoder_args)


def main(argv=None) -> int:
    from multiprocessing import get_context

    from .augment import SyntheticDataset
    from .augment.plan import synthetic_counts
    from .data import load_breastmnist
    from .eval import distribution_metrics
    from .eval.downstream import TRAIN_DEFAULTS
    from .models import GeneratorModel
    from .train import CGANConfig, CGANRecipe, Trainer
    from .utils import get_device, seed_everything

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="demo_out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    ap.add_argument("--quick", action="store_true", help="a few steps of everything (a smoke test, not a result)")
    args = ap.parse_args(argv)

    t0 = time.time()
    out = Path(args.out)
    gan_steps = QUICK["gan_steps"] if args.quick else GAN_STEPS
    clf = {**TRAIN_DEFAULTS, **(QUICK["classifier"] if args.quick else {})}
    device = get_device(args.device)
    processes, threads = cpu_split(device)
    torch.set_num_threads(threads)
    seed_everything(args.seed)
    train, val, test = (load_breastmnist(s) for s in ("train", "val", "test"))
    print(f"{train.summary()}\nval {len(val)}, test {len(test)} images; device {device}, {processes} process(es) "
          f"of {threads} thread(s); seed {args.seed}{'; QUICK smoke test' if args.quick else ''}", flush=True)
    key = {"seed": args.seed, "classifier": clf, "gan_steps": gan_steps, "gan": GAN_SETTINGS, "quick": args.quick,
           "device": str(device)}
    arm_args = (out, key, clf, args.seed, str(device), threads)
    enc_steps = QUICK["encoder_steps"] if args.quick else ENCODER_STEPS
    enc_args = (out, args.seed, enc_steps, threads)
    gen_key = {**key, "arm": "generator_eval", "encoder_steps": enc_steps, "threads": threads}
    gen_eval = load_cached(out / "arms", "generator_eval", gen_key)
    need_encoder = gen_eval is None and not encoder_ready(out / "encoder.safetensors", args.seed, enc_steps)
    # what needs no generator, longest first: the second process takes item after item while the cGAN and
    # synthetic_balance train here, then this process takes what is left (the share depends on the CPU's kernels)
    work = [n for n in SHARED_WORK if (need_encoder if n == "encoder" else
                                       load_cached(out / "arms", n, arm_key(key, n, threads)) is None)]
    ctx = get_context("spawn")  # "spawn": a forked child of an OpenMP process can hang
    counter, second = ctx.Value("i", 0), None
    if processes > 1 and work:
        second = ctx.Process(target=second_process, daemon=True, args=(work, counter, arm_args, enc_args))
        second.start()
        print(f"{', '.join(work).replace('encoder', 'the encoder')}: training in a second process while the cGAN "
              f"trains here", flush=True)

    def show(name: str, got: tuple[dict, bool]) -> dict:
        r, cached = got
        where = ", from " + str(out / "arms") if cached and name not in work else ""
        print(f"{name}: test AUC {r['test_auc']:.3f}, balanced accuracy {r['test_balanced_accuracy']:.3f} (best "
              f"validation step {r['best_step']}, {r['seconds']:.0f} s{where}; {(time.time() - t0) / 60:.1f} min so "
              f"far)", flush=True)
        return r

    try:
        print(f"cGAN, {gan_steps} steps", flush=True)
        recipe = CGANRecipe(train, CGANConfig(**GAN_SETTINGS), device=device, seed=args.seed)
        set_aside_other_run(out / "cgan", recipe)
        result = Trainer(recipe, out / "cgan", steps=gan_steps, sample_every=max(gan_steps // 2, 1),
                         ckpt_every=max(gan_steps // 4, 1)).fit()
        if result.interrupted:
            return 130
        model = GeneratorModel.from_pretrained(result.model_dir, device=device)
        grid = comparison_grid(train, model, out / "real_vs_synthetic.png", seed=args.seed)
        print(f"real vs synthetic: {grid}", flush=True)
        counts = synthetic_counts(train.labels.numpy(), train.num_classes, balance=True)
        synthetic = SyntheticDataset(model, per_class=dict(enumerate(counts.tolist())), seed=10_000 + args.seed)
        print(f"synthetic_balance: training a {clf['arch']} to convergence", flush=True)
        results = {"synthetic_balance": show("synthetic_balance", run_demo_arm(
            "synthetic_balance", *arm_args, synthetic=synthetic, progress=True))}
        while (item := take(work, counter)) is not None:  # what the second process has not taken
            print(f"{item}: training", flush=True)
            got = do_work(item, arm_args, enc_args, progress=True)
            if got is not None:
                results[item] = show(item, got)
        if second is not None:
            second.join()
            if second.exitcode != 0:
                raise RuntimeError(f"the second process stopped with exit code {second.exitcode} (its error is "
                                   "above); run the same command again to resume")
        for name in ARMS[:-1]:
            if name not in results:  # trained before, or by the second process: from disk
                results[name] = show(name, run_demo_arm(name, *arm_args))
        results = {name: results[name] for name in ARMS}
        if gen_eval is None:
            enc_path = feature_encoder(*enc_args)
            need = np.max([synthetic_counts(train.labels.numpy(), train.num_classes, ratio=r) for r in STUDY_SHARES]
                          + [counts], axis=0)
            study_pool = SyntheticDataset(model, per_class=dict(enumerate(need.tolist())), seed=10_000 + args.seed)
            gen_eval, _ = cached_arm(out / "arms", "generator_eval", gen_key, lambda: distribution_metrics(
                train.images, study_pool.images, enc_path, seed=args.seed, device="cpu"))
    finally:  # stopped: the second process (deaf to Ctrl-C) stops too; what it finished is on disk
        if second is not None and second.is_alive():
            second.terminate()
            second.join()

    best = max((f"classical_{k}" for k in CLASSICAL), key=lambda a: results[a]["val_score"])
    auc = {} if args.quick else study_auc()
    study = {r["arm"]: r for r in auc.get("summary", [])}
    title = (f"BreastMNIST, seed {args.seed}: test AUC (best classical on validation: {best})"
             + ("; QUICK smoke test" if args.quick else ""))
    plot = comparison_plot(results, study, out / "comparison.png", title)
    total = round(time.time() - t0, 1)
    lines = [f"# synthaug demo: BreastMNIST, one seed ({args.seed}){' -- QUICK smoke test' if args.quick else ''}",
             "", "| arm | test AUC | balanced accuracy | 5-seed study mean [95% CI] |", "|---|---|---|---|"]
    for a, r in results.items():
        s = study.get(a)
        ci = f"{s['mean']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}]" if s else "-"
        lines.append(f"| {a} | {r['test_auc']:.3f} | {r['test_balanced_accuracy']:.3f} | {ci} |")
    lines += ["", *one_seed_differences(results, best), "",
              "One seed is an indication, not a result. " + study_text(auc), "",
              *generator_table(gen_eval, {} if args.quick else study_generator()), "",
              f"Pictures: {grid}, {plot}. This invocation: {total / 60:.1f} min on {device} "
              f"({processes} process(es) of {threads} thread(s); what was on disk was not rerun)."]
    (out / "demo_report.md").write_text("\n".join(lines) + "\n")
    report = {"seed": args.seed, "quick": args.quick, "device": str(device), "gan_steps": result.step,
              "gan_seconds": round(result.seconds, 1), "classifier": clf, "processes": processes,
              "threads": threads, "best_classical": best,
              "arms": results, "study_5_seeds": auc, "generator": gen_eval, "total_seconds": total,
              "pictures": [str(grid), str(plot)], "model_dir": str(result.model_dir)}
    (out / "demo_report.json").write_text(json.dumps(report, indent=2, default=float))
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
