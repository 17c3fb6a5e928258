"""Medical downstream studies: does a classifier improve when cGAN samples are mixed into its training set,
compared with real-only training, strong classical augmentation and the same number of real copies?

    python -m benchmarks.studies.medical --study breast|pneumonia5|pneumonia10|pneumonia100|pneumonia5_long|all \
        [--seeds 0 1 2 3 4] [--arch small_cnn|resnet18_small] [--threads N] [--quick]

Per (study, seed): stratified training subsample under that seed -> cGAN (``CGANConfig`` with the study's
``cgan`` settings, the defaults where it has none) trained on that subsample only (so every seed retrains its
generator) -> arms, each trained through ``MixedDataset`` exactly as a user would, step chosen on validation
(early stopping), scored once on test:

* ``real_only``, ``classical_flips_shifts``, ``classical_randaugment``;
* pre-specified synthetic arms (the primary comparison): ``synthetic@0.25``, ``synthetic@0.5`` (share of the
  training set), ``synthetic_balance`` (every class topped up to the largest), and ``synthetic@0.25+best_classical``
  / ``synthetic_balance+best_classical`` (with the classical kind that scored better on this seed's validation);
* count-matched controls ``real_copies@0.25``, ``real_copies@0.5``, ``real_copies_balance`` (the same number and
  class mix of extra images, copies of real ones);
* ``synthetic`` = the share (0, 0.25 or 0.5) with the best validation score, derived from the arms above without
  retraining and reported with how often share 0 was chosen; ``synthetic_only_cas`` (train on synthetic only).

Every artefact is cached by a hash of its full configuration -- per-arm results under
``benchmarks/results/cache/`` (committed), generators under ``runs/studies/`` -- so a rerun resumes (a generator
is retrained only if an arm that needs it is missing) and a changed setting retrains.
Reports: ``benchmarks/results/medical_<study>.{md,json,png}`` and the study's records in
``benchmarks/results/headline.json``. ``--quick`` (breast, seeds 0 1, a few steps) writes under
``runs/studies_quick/`` and is run by the tests.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import harness as H  # noqa: E402
from synthaug.augment import SyntheticDataset  # noqa: E402
from synthaug.augment.plan import synthetic_counts  # noqa: E402
from synthaug.data import load_breastmnist, load_medmnist  # noqa: E402
from synthaug.eval import (TRAIN_DEFAULTS, bar_chart, cas, compare_results, distribution_metrics,  # noqa: E402
                           markdown_table, mean_ci, memorization_audit, real_copies, run_arm, train_feature_encoder)
from synthaug.models import GeneratorModel  # noqa: E402
from synthaug.study import chosen_kind, chosen_on_validation  # noqa: E402
from synthaug.train.cgan import CGANConfig  # noqa: E402
from synthaug.utils import save_grid  # noqa: E402

HARNESS_VERSION = 2  # bump when a change of code (not of settings) must invalidate cached results
ORDER = ("breast", "pneumonia5", "pneumonia10", "pneumonia100", "pneumonia5_long")
STUDIES = {
    # the demo's study (synthaug/demo.py runs one seed of it): nearest + conv upsampling in the generator, whose
    # samples have no checkerboard blocks (5 paired seeds: benchmarks/results/demo_generator.md)
    "breast": dict(data="breastmnist", fraction=1.0, gan_steps=700, cgan=dict(g_kwargs={"upsample": "nearest"})),
    "pneumonia5": dict(data="pneumoniamnist", fraction=0.05, gan_steps=500),
    "pneumonia10": dict(data="pneumoniamnist", fraction=0.10, gan_steps=600),
    "pneumonia100": dict(data="pneumoniamnist", fraction=1.0, gan_steps=1000),
    # ablation: is the scarce-data result limited by a short generator run? pneumonia5 with 4x the steps
    "pneumonia5_long": dict(data="pneumoniamnist", fraction=0.05, gan_steps=2000),
}
# The breast study's ResNet-18 ablation (--arch resnet18_small) ran with the library's default generator (transposed
# upsampling) before the study's own generator became nearest + conv; it keeps that one (its results are keyed by it)
ABLATION_CGAN = {"breast": {}}
CLASSICAL = ("flips_shifts", "randaugment")
SHARES = (0.25, 0.5)
PUBLISHED_RESNET18 = {"breastmnist": 0.901, "pneumoniamnist": 0.944}  # MedMNIST v2, ResNet-18 (28), test AUC
METRICS = ("test_auc", "test_balanced_accuracy", "test_accuracy")
# --quick (the tests' smoke run): a few steps of tiny nets, enough to pass through every arm and the report
QUICK = dict(gan_steps=30, classifier=dict(max_steps=12, eval_every=4, patience=2, width=8), encoder_steps=10,
             cgan=dict(batch_size=16, g_kwargs={"base_channels": 8, "max_channels": 16, "z_dim": 16, "embed_dim": 8},
                       d_kwargs={"base_channels": 8, "max_channels": 16}))


def study_settings(study: str, quick: bool, arch: str = "small_cnn") -> dict:
    """``STUDIES[study]`` as a run uses it: with ``arch`` other than small_cnn the ablation's generator settings
    (:data:`ABLATION_CGAN`); ``quick``: a few steps of the study's generator, shrunk to tiny nets."""
    cfg = dict(STUDIES[study])
    if arch != "small_cnn" and study in ABLATION_CGAN:
        cfg["cgan"] = ABLATION_CGAN[study]
    if quick:
        cfg.update(gan_steps=QUICK["gan_steps"], cgan=merged_cgan(cfg.get("cgan", {}), QUICK["cgan"]))
    return cfg


def merged_cgan(base: dict, extra: dict) -> dict:
    """``CGANConfig`` settings ``base`` updated by ``extra``; the nets' argument dicts (``g_kwargs``, ``d_kwargs``)
    key by key."""
    return {**base, **extra, **{k: {**base.get(k, {}), **extra[k]} for k in ("g_kwargs", "d_kwargs") if k in extra}}


def classifier_settings(arch: str, quick: bool) -> dict:
    cfg = dict(TRAIN_DEFAULTS, arch=arch)
    if quick:
        cfg.update(QUICK["classifier"])
    return cfg


def arm_specs() -> dict[str, dict]:
    """Every trained arm: where its extra images come from, at what share, with which classical kind."""
    specs = {"real_only": dict(extra=None, ratio=0.0, classical=None)}
    for k in CLASSICAL:
        specs[f"classical_{k}"] = dict(extra=None, ratio=0.0, classical=k)
    for r in SHARES:
        specs[f"synthetic@{r}"] = dict(extra="gan", ratio=r, classical=None)
        specs[f"real_copies@{r}"] = dict(extra="copies", ratio=r, classical=None)
    specs["synthetic_balance"] = dict(extra="gan", ratio="balance", classical=None)
    specs["real_copies_balance"] = dict(extra="copies", ratio="balance", classical=None)
    specs["synthetic@0.25+best_classical"] = dict(extra="gan", ratio=0.25, classical="best")
    specs["synthetic_balance+best_classical"] = dict(extra="gan", ratio="balance", classical="best")
    return specs


def load_splits(cfg: dict, seed: int):
    if cfg["data"] == "breastmnist":
        train = load_breastmnist("train", fraction=cfg["fraction"] if cfg["fraction"] < 1 else None, seed=seed)
        return train, load_breastmnist("val"), load_breastmnist("test")
    path = H.DATA / "medmnist" / "pneumoniamnist.npz"
    train = load_medmnist(path, "train", fraction=cfg["fraction"] if cfg["fraction"] < 1 else None, seed=seed)
    return train, load_medmnist(path, "val"), load_medmnist(path, "test")


def generator_config(cfg: dict, seed: int, n_train: int, cgan: CGANConfig | None = None) -> dict:
    """The full configuration of a seed's generator (its cache key). Settings left at None are dropped, so a new
    optional ``CGANConfig`` field does not invalidate generators trained before it existed."""
    settings = {k: v for k, v in (cgan or CGANConfig(**cfg.get("cgan", {}))).__dict__.items() if v is not None}
    return {"harness": HARNESS_VERSION, "study_data": {k: cfg[k] for k in ("data", "fraction")}, "seed": seed,
            "n_train": n_train, "gan_steps": cfg["gan_steps"], "cgan": settings}


def train_generator(cache: H.ResultCache, train, gen_cfg: dict, seed: int) -> GeneratorModel:
    return H.trained_cgan(cache, "cgan", gen_cfg, train, CGANConfig(**gen_cfg["cgan"]), seed, gen_cfg["gan_steps"])[0]


def run_seed(study: str, seed: int, cfg: dict, clf: dict, cache: H.ResultCache, only: list[str] | None,
             figs: Path | None, quick: bool) -> dict:
    """All arms of one seed; each is cached as soon as it is done. Returns ``{arm: result}``."""
    t_seed = time.perf_counter()
    train, val, test = load_splits(cfg, seed)
    data_cfg = {"harness": HARNESS_VERSION, "study_data": {k: cfg[k] for k in ("data", "fraction")}, "seed": seed,
                "n_train": len(train)}
    arm_cfg = {**data_cfg, "classifier": clf}
    print(f"[{study} seed {seed}] train {train.class_counts()} val {len(val)} test {len(test)}", flush=True)
    specs = {a: s for a, s in arm_specs().items() if only is None or a in only}
    out: dict[str, dict] = {}

    def arm(name, spec, synthetic=None, classical=None):
        key = gen_key if spec["extra"] == "gan" else None  # arms without a generator do not depend on it
        r = cache.result("arms", {**arm_cfg, "arm": name, "spec": spec, "generator": key},
                         lambda: run_arm(name, train, val, test, synthetic=synthetic, ratio=spec["ratio"],
                                         classical=classical, seed=seed, device="cpu", **clf))
        print(f"[{study} seed {seed}] {name:34s} AUC {r['test_auc']:.4f} bal.acc {r['test_balanced_accuracy']:.4f}"
              f" best step {r['best_step']}/{r['max_steps']}{' (cached)' if r.get('cached') else ''}", flush=True)
        return r

    gen_cfg = generator_config(cfg, seed, len(train))
    gen_key = H.config_hash(gen_cfg)
    for name, spec in specs.items():
        if spec["extra"] is None:
            out[name] = arm(name, spec, classical=spec["classical"])
    counts = {r: synthetic_counts(train.labels.numpy(), train.num_classes, ratio=r) for r in SHARES}
    counts["balance"] = synthetic_counts(train.labels.numpy(), train.num_classes, balance=True)
    need = np.max(np.stack(list(counts.values())), axis=0)
    for name, spec in specs.items():
        if spec["extra"] == "copies":
            out[name] = arm(name, spec, synthetic=real_copies(train, need))
    gan_specs = {a: s for a, s in specs.items() if s["extra"] == "gan"}
    if not gan_specs:
        return out
    kinds = [k for k in CLASSICAL if f"classical_{k}" in out]
    best_kind = chosen_kind({k: out[f"classical_{k}"] for k in kinds})
    gan_specs = {a: {**s, "classical": best_kind if s["classical"] == "best" else s["classical"]}
                 for a, s in gan_specs.items()}
    cas_cfg = {**arm_cfg, "generator": gen_key}
    eval_cfg = {**data_cfg, "generator": gen_key, "encoder_steps": QUICK["encoder_steps"] if quick else 1500}
    figure = None if figs is None else Path(f"{figs}_real_vs_synthetic.png")
    todo = ([a for a, s in gan_specs.items()
             if not cache.has("arms", {**arm_cfg, "arm": a, "spec": s, "generator": gen_key})]
            + ([] if only is not None or (cache.has("cas", cas_cfg) and cache.has("generator_eval", eval_cfg)
                                          and (figure is None or figure.is_file())) else ["cas/eval/figure"]))
    pool = None
    if todo:  # the generator is needed (trained, or loaded from runs/studies/) only for what is not cached
        gen = train_generator(cache, train, gen_cfg, seed)
        t0 = time.perf_counter()
        pool = SyntheticDataset(gen, per_class=dict(enumerate(need.tolist())), seed=10_000 + seed)
        print(f"[{study} seed {seed}] cGAN {cfg['gan_steps']} steps ready; pool {pool.class_counts()} "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    for name, spec in gan_specs.items():
        out[name] = arm(name, spec, synthetic=pool, classical=spec["classical"])
        if specs[name]["classical"] == "best":
            out[name]["classical_kind_chosen_on_val"] = spec["classical"]
    if only is None:
        c = cache.result("cas", cas_cfg,
                         lambda: cas(pool.images, pool.labels, val, test, seed=seed, device="cpu", **clf))
        out["synthetic_only_cas"] = {"arm": "synthetic_only_cas", "seed": seed, "test_auc": c["cas_auc"],
                                     "test_accuracy": c["cas_accuracy"],
                                     "test_balanced_accuracy": c["cas_balanced_accuracy"], "val_score": c["val_score"],
                                     "best_in_last_10pct": c["best_in_last_10pct"], "seconds": c["seconds"]}
        out["_generator_eval"] = cache.result("generator_eval", eval_cfg,
                                              lambda: generator_eval(train, val, pool, seed, quick))
        if figure is not None and pool is not None:
            imgs, labels = [], []
            for k, cname in enumerate(train.class_names):
                imgs += [train.images[train.labels == k][:8], pool.images[pool.labels == k][:8]]
                labels += [f"real {cname}", f"synthetic {cname}"]
            save_grid(torch.cat(imgs), figure, nrow=8, row_labels=labels,
                      title=f"{study} seed {seed}, cGAN {cfg['gan_steps']} steps")
    print(f"[{study} seed {seed}] done ({time.perf_counter() - t_seed:.0f} s this run)", flush=True)
    return out


def generator_eval(train, val, pool, seed: int, quick: bool) -> dict:
    enc = train_feature_encoder(train, val_ds=val, max_steps=QUICK["encoder_steps"] if quick else 1500, seed=seed,
                                device="cpu")
    return {"synthetic_vs_train": H.to_jsonable(distribution_metrics(train.images, pool.images, enc, seed=seed)),
            "val_vs_train_reference": H.to_jsonable(distribution_metrics(train.images, val.images, enc, seed=seed)),
            "memorization_flagged": memorization_audit(pool.images, train)["summary"]["fraction_flagged"]}


# --- report ---------------------------------------------------------------------------------------------------
def report(study: str, per_seed: dict[int, dict], cfg: dict, clf: dict, meta: dict, out_prefix: Path,
           quick: bool, wall_s: float) -> dict:
    seeds = sorted(per_seed)
    results: dict[str, list[dict]] = {}
    for s in seeds:
        for a, r in per_seed[s].items():
            if not a.startswith("_"):
                results.setdefault(a, []).append(r)
    # per seed, the share among 0 / 0.25 / 0.5 with the best validation score (trained candidates, not retrained)
    chosen_rows, shares = chosen_on_validation(results, [(0.0, "real_only")]
                                               + [(r, f"synthetic@{r}") for r in SHARES])
    if chosen_rows:
        results["synthetic"] = chosen_rows
    order = [a for a in ("real_only", *(f"classical_{k}" for k in CLASSICAL), *(f"synthetic@{r}" for r in SHARES),
                         "synthetic_balance", "synthetic@0.25+best_classical", "synthetic_balance+best_classical",
                         *(f"real_copies@{r}" for r in SHARES), "real_copies_balance", "synthetic",
                         "synthetic_only_cas") if results.get(a)]
    results = {a: results[a] for a in order}
    n = {a: len(v) for a, v in results.items()}
    complete = {a: v for a, v in results.items() if len(v) == len(seeds)}
    comps = {m: compare_results(complete, metric=m, baseline="real_only",
                                classical=[f"classical_{k}" for k in CLASSICAL if f"classical_{k}" in complete])
             for m in METRICS}
    auc = comps["test_auc"]
    best_c = auc["best_classical"]
    ref = best_c or "real_only"  # the resnet18_small studies train no classical arm
    copies = {}
    for a in ("synthetic@0.25", "synthetic@0.5", "synthetic_balance"):
        ctrl = a.replace("synthetic", "real_copies")
        if a in complete and ctrl in complete:
            copies[f"{a} - {ctrl}"] = compare_results({ctrl: complete[ctrl], a: complete[a]}, metric="test_auc",
                                                      baseline=ctrl, classical=[])["vs_baseline"][a]
    gen_arms = [a for a in complete if a.startswith("synthetic")]
    pairs = [("real_only", None)] + [(a, "real_only") for a in complete if a.startswith("classical")]
    pairs += [(a, ref) for a in gen_arms] + [(a, a.replace("synthetic", "real_copies")) for a in gen_arms]
    readme = [("real_only", None), (best_c, "real_only"), ("synthetic@0.25", ref), ("synthetic_balance", ref),
              ("synthetic@0.25+best_classical", ref), ("synthetic@0.25", "real_copies@0.25"), ("synthetic", ref)]
    records = H.pair_records(study, complete, "test_auc", pairs, readme, gen_arms, len(seeds))
    for rec in records:
        if rec["arm"] == "synthetic":
            rec["chosen_share_0"] = f"{shares.count(0.0)}/{len(shares)}"
    out = {"study": study, "quick": quick, "seeds": seeds, "config": cfg, "classifier": clf,
           "arms_seeds": n, "comparisons": comps, "synthetic_vs_real_copies": copies,
           "chosen_share_by_seed": dict(zip([r["seed"] for r in chosen_rows], shares)),
           "generator_eval": {s: per_seed[s].get("_generator_eval") for s in seeds}, "machine": meta,
           "wall_seconds_this_invocation": round(wall_s, 1), "headline": records}
    H.write_json(Path(f"{out_prefix}.json"), out)
    if study == "breast" and not quick and Path(f"{out_prefix}.json").resolve() == (
            H.ROOT / "benchmarks" / "results" / "medical_breast.json").resolve():  # the demo's numbers: package data
        from synthaug.demo import write_reference

        write_reference(out)
    png = bar_chart(auc["summary"], "test_auc", Path(f"{out_prefix}.png"),
                    title=f"{study}: test AUC, mean and 95% CI over {len(seeds)} seeds")
    n_zero = sum(1 for s in shares if s == 0.0)
    gen_rows = [g["synthetic_vs_train"] for g in out["generator_eval"].values() if g]
    arm_secs = {a: float(np.mean([r.get("seconds") or 0 for r in v])) for a, v in results.items()}
    settings = ", ".join(f"{k}={v!r}" for k, v in cfg.get("cgan", {}).items())  # "": the defaults
    L = [f"# {'QUICK SMOKE TEST: ' if quick else ''}Medical downstream study: {study}", ""]
    if quick:
        L += ["**Quick smoke test: few steps, 2 seeds. These numbers are not results.**", ""]
    L += [f"Data: {cfg['data']}, {100 * cfg['fraction']:g}% stratified training subsample per seed; full val for "
          f"every choice; full test scored once per arm. Seeds {seeds}; each seed retrains its cGAN "
          f"({cfg['gan_steps']} steps, `CGANConfig({settings})`) on its own subsample.", "",
          f"Classifier: `{clf['arch']}`, AdamW lr {clf['lr']}, batch {clf['batch_size']}, cosine schedule over a "
          f"budget of {clf['max_steps']} steps, validation {clf['select_on']} every pass over the training set, "
          f"early stopping after {clf['patience']} evaluations without improvement; the best validation step is "
          f"kept. {H.selection_line(complete)}", "",
          "## Test AUC (mean [95% CI]; paired differences by seed)", "", markdown_table(auc), ""]
    if best_c:
        L += [f"Best classical arm, chosen by mean validation AUC: `{best_c}`. Pre-specified arms (fixed shares, "
              f"class-balancing top-up, each with and without the best classical kind) are the primary comparison. "
              f"`synthetic` is the validation-chosen share among 0 / 0.25 / 0.5: share 0 (= real_only) was chosen "
              f"for {n_zero} of {len(shares)} seeds; when half or more of its paired differences are exactly 0 no "
              f"test is reported.", ""]
    else:
        L += [f"No classical arm is trained with this network: the synthetic arms ({', '.join(gen_arms)}) are "
              f"compared with real-only, paired by seed.", ""]
    if clf["arch"] == "resnet18_small":
        share = "as here" if cfg["fraction"] >= 1 else f"this study trains on {100 * cfg['fraction']:g}% of it"
        L += [f"Published MedMNIST v2 ResNet-18 (28) test AUC, trained on the **full** training split ({share}): "
              f"{PUBLISHED_RESNET18[cfg['data']]} (`../shared/data/README.md`).", ""]
    if copies:
        L += ["## Synthetic images vs the same number of real copies (paired by seed)", "",
              "| comparison | test AUC difference |", "|---|---|",
              *(f"| {k} | {H.fmt_diff(v)} |" for k, v in copies.items()), ""]
    L += ["## Balanced accuracy", "", markdown_table(comps["test_balanced_accuracy"]), ""]
    if gen_rows:
        L += ["## Generator (mean over seeds; features of a SmallCNN trained on the seed's real subsample)", "",
              "| FID | KID | precision | recall | coverage |", "|---|---|---|---|---|",
              "| " + " | ".join(f"{np.mean([g[k] for g in gen_rows]):.3f}"
                                for k in ("fid", "kid_mean", "precision", "recall", "coverage")) + " |", ""]
    L += ["## Wall time", "", "| arm | mean s per seed |", "|---|---|",
          *(f"| {a} | {s:.0f} |" for a, s in arm_secs.items()), "",
          H.machine_line(meta, f"this invocation {wall_s / 60:.1f} min (cached arms are not retrained)"),
          f"Command: `{meta['command']}`", ""]
    Path(f"{out_prefix}.md").write_text("\n".join(L))
    print(f"[{study}] wrote {out_prefix}.md/.json/.png ({png.name})", flush=True)
    return out


def main(argv=None) -> int:
    def add_arguments(p):
        p.add_argument("--arch", default="small_cnn", choices=("small_cnn", "resnet18_small"),
                       help="resnet18_small runs real_only and the pre-specified synthetic arms only")
        p.add_argument("--arms", nargs="+", default=None, choices=list(arm_specs()),
                       help="run (and cache) only these arms, e.g. in chunks; prints their means, writes no report")

    st = H.Study("medical", __doc__, argv, report_prefix="medical_", studies=ORDER, add_arguments=add_arguments)
    args = st.args
    clf = classifier_settings(args.arch, st.quick)
    only = None if args.arch == "small_cnn" else ["real_only", "synthetic@0.25", "synthetic_balance"]
    if args.arms:
        only = [a for a in args.arms if only is None or a in only]
    suffix = "" if args.arch == "small_cnn" else f"_{args.arch}"
    for study in st.studies[:1] if st.quick else st.studies:
        cfg = study_settings(study, st.quick, args.arch)
        prefix = st.prefix_for(study + suffix)
        per_seed = {s: run_seed(study, s, cfg, clf, st.cache, only, prefix if s == st.seeds[0] else None, st.quick)
                    for s in st.seeds}
        if args.arms:
            for a in only:
                v = [per_seed[s][a]["test_auc"] for s in st.seeds if a in per_seed[s]]
                st.log(f"{study} {a}: test AUC {H.fmt_ci({'arm': a, **mean_ci(v)})} over {len(v)} seeds")
            continue
        out = report(study + suffix, per_seed, cfg, clf, st.meta, prefix, st.quick, st.wall())
        st.finish(out["headline"], study + suffix)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
