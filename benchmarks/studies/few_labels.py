"""Scarce labels, plentiful images: does a generator that also learns from unlabelled images help the classifier
more than classical augmentation, self-training on the same pool, and a closed-set generator?

    python -m benchmarks.studies.few_labels --study pneumonia_labels1|pneumonia_labels5|breast_labels25|all \
        [--seeds 0 1 2 3 4] [--threads N] [--quick]

Per (study, seed): a stratified share of the training split keeps its labels (drawn under the seed); the rest
of the training split is the unlabelled pool (its labels are used only to report pseudo-label accuracy). Arms,
each trained through ``MixedDataset`` with the step chosen on validation and test scored once:

* ``real_only``, ``classical_flips_shifts``, ``classical_randaugment``; ``real_only_all_labels`` (every training
  label: the level the issue asks the semi-supervised arm to reach);
* ``pseudo_label``: self-training on the pool (threshold 0.9), the classifier-only semi-supervised baseline;
* ``synthetic@0.25``: a closed-set cGAN trained on the labelled images only;
* ``semi_synthetic@0.25`` and ``semi_synthetic_balance``: a cGAN trained with ``CGANRecipe(labelled,
  unlabelled=pool)`` (pseudo-labels above 0.95 join the conditional set); ``semi_synthetic@0.25_filtered``
  (samples kept when the real-only classifier gives their class >= 0.8 and they lie within the 0.95 quantile of
  their class's real feature distances), ``semi_synthetic@0.25_w0.5`` (synthetic loss weight 0.5),
  ``semi_synthetic@0.25_twostage`` (then 500 steps of fine-tuning on real only), ``semi_synthetic@0.25+best_classical``;
* ``real_copies@0.25``: the count-matched control.

All settings are fixed here in advance. Results are cached like the medical study's (``benchmarks/studies/medical.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import harness as H  # noqa: E402
from benchmarks.studies.medical import CLASSICAL, classifier_settings  # noqa: E402
from benchmarks.studies.medical import QUICK as MEDICAL_QUICK  # noqa: E402
from synthaug.augment import SampleFilter, SyntheticDataset  # noqa: E402
from synthaug.augment.plan import synthetic_counts  # noqa: E402
from synthaug.data import load_breastmnist, load_medmnist, stratified_indices  # noqa: E402
from synthaug.eval import (bar_chart, compare_results, markdown_table, pseudo_label_arm, real_copies,  # noqa: E402
                           run_arm, train_arm)
from synthaug.models import GeneratorModel  # noqa: E402
from synthaug.study import chosen_kind  # noqa: E402
from synthaug.train.cgan import CGANConfig  # noqa: E402
from synthaug.train.engine import read_metrics  # noqa: E402
from synthaug.utils import save_grid  # noqa: E402

HARNESS_VERSION = 1
ORDER = ("pneumonia_labels1", "pneumonia_labels5", "breast_labels25")
STUDIES = {
    "pneumonia_labels1": dict(data="pneumoniamnist", labelled=0.01, gan_steps=1000),
    "pneumonia_labels5": dict(data="pneumoniamnist", labelled=0.05, gan_steps=1000),
    "breast_labels25": dict(data="breastmnist", labelled=0.25, gan_steps=1000),
}
PSEUDO_THRESHOLD, GAN_PSEUDO_THRESHOLD = 0.9, 0.95
FILTER = dict(min_confidence=0.8, quantile=0.95)
WEIGHT, FINETUNE_STEPS = 0.5, 500
QUICK = dict(gan_steps=20, finetune_steps=8, pool_cap=300,  # --quick: tiny nets (medical's) and a short pseudo-labeller
             cgan=dict(MEDICAL_QUICK["cgan"], pseudo_label_classifier={"max_steps": 20, "width": 8}))
GEN_SECONDS: list[float] = []  # training time of each generator this run could read (for the report's compute line)


def load(cfg: dict, seed: int, quick: bool):
    """(labelled train, unlabelled pool images, their hidden labels, full train, val, test)."""
    if cfg["data"] == "breastmnist":
        full, val, test = load_breastmnist("train"), load_breastmnist("val"), load_breastmnist("test")
    else:
        path = H.DATA / "medmnist" / "pneumoniamnist.npz"
        full, val, test = (load_medmnist(path, s) for s in ("train", "val", "test"))
    idx = stratified_indices(full.labels, fraction=cfg["labelled"], seed=seed)
    rest = np.setdiff1d(np.arange(len(full)), idx)
    if quick:
        rest = rest[: QUICK["pool_cap"]]
    return full.subset(idx), full.images[rest], full.labels[rest], full, val, test


def train_cgan(cache: H.ResultCache, gen_cfg: dict, labelled, pool, seed: int) -> GeneratorModel:
    semi = gen_cfg["semi"]
    extra = dict(gen_cfg.get("cgan", {}))
    if not semi:
        extra.pop("pseudo_label_classifier", None)
    cfg = CGANConfig(pseudo_label_threshold=GAN_PSEUDO_THRESHOLD if semi else None, **extra)
    model, _ = H.trained_cgan(cache, "cgan_few_labels", gen_cfg, labelled, cfg, seed, gen_cfg["gan_steps"],
                              unlabelled=pool if semi else None)
    run_dir = cache.directory("cgan_few_labels", gen_cfg)
    logged = read_metrics(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").is_file() else []
    if logged and "time" in logged[-1]:
        GEN_SECONDS.append(float(logged[-1]["time"]))
    return model


def run_seed(study: str, seed: int, cfg: dict, clf: dict, cache: H.ResultCache, quick: bool, figs: Path | None) -> dict:
    labelled, pool, pool_y, full, val, test = load(cfg, seed, quick)
    data_cfg = {"harness": HARNESS_VERSION, "study": {k: cfg[k] for k in ("data", "labelled")}, "seed": seed,
                "n_labelled": len(labelled), "n_pool": len(pool)}
    arm_cfg = {**data_cfg, "classifier": clf}
    print(f"[{study} seed {seed}] labelled {labelled.class_counts()} pool {len(pool)} val {len(val)} "
          f"test {len(test)}", flush=True)
    out: dict[str, dict] = {}
    finetune = QUICK["finetune_steps"] if quick else FINETUNE_STEPS

    def arm(name, spec, compute):
        r = cache.result("arms", {**arm_cfg, "arm": name, "spec": spec}, compute)
        out[name] = r
        print(f"[{study} seed {seed}] {name:36s} AUC {r['test_auc']:.4f} best step {r['best_step']}"
              f"{' (cached)' if r.get('cached') else ''}", flush=True)

    kw = dict(seed=seed, device="cpu", **clf)
    arm("real_only", {}, lambda: run_arm("real_only", labelled, val, test, **kw))
    for k in CLASSICAL:
        arm(f"classical_{k}", {"classical": k},
            lambda k=k: run_arm(f"classical_{k}", labelled, val, test, classical=k, **kw))
    arm("real_only_all_labels", {"labels": "all"}, lambda: run_arm("real_only_all_labels", full, val, test, **kw))
    arm("pseudo_label", {"threshold": PSEUDO_THRESHOLD},
        lambda: pseudo_label_arm("pseudo_label", labelled, pool, val, test, threshold=PSEUDO_THRESHOLD,
                                 true_labels=pool_y, **kw))
    counts = np.maximum(synthetic_counts(labelled.labels.numpy(), labelled.num_classes, ratio=0.25),
                        synthetic_counts(labelled.labels.numpy(), labelled.num_classes, balance=True))
    arm("real_copies@0.25", {"ratio": 0.25},
        lambda: run_arm("real_copies@0.25", labelled, val, test, synthetic=real_copies(labelled, counts),
                        ratio=0.25, **kw))
    best_kind = chosen_kind({k: out[f"classical_{k}"] for k in CLASSICAL})
    per_class = dict(enumerate(counts.tolist()))
    gens = {}
    for semi in (False, True):
        gcfg = {**data_cfg, "gan_steps": cfg["gan_steps"], "semi": semi,
                "pseudo_threshold": GAN_PSEUDO_THRESHOLD if semi else None,
                **({"cgan": cfg["cgan"]} if "cgan" in cfg else {})}  # --quick's tiny nets
        gens[semi] = (gcfg, lambda gcfg=gcfg, semi=semi: train_cgan(cache, gcfg, labelled, pool, seed))
    specs = {"synthetic@0.25": (False, {"ratio": 0.25}),
             "semi_synthetic@0.25": (True, {"ratio": 0.25}),
             "semi_synthetic_balance": (True, {"ratio": "balance"}),
             "semi_synthetic@0.25_filtered": (True, {"ratio": 0.25, "filter": FILTER}),
             "semi_synthetic@0.25_w0.5": (True, {"ratio": 0.25, "synthetic_weight": WEIGHT}),
             "semi_synthetic@0.25_twostage": (True, {"ratio": 0.25, "finetune_steps": finetune}),
             "semi_synthetic@0.25+best_classical": (True, {"ratio": 0.25, "classical": best_kind})}
    loaded: dict[bool, GeneratorModel] = {}

    def generator(semi: bool) -> GeneratorModel:
        if semi not in loaded:
            loaded[semi] = gens[semi][1]()
        return loaded[semi]

    def synthetic_arm(name, semi, spec):
        gen = generator(semi)
        extra = {k: spec[k] for k in ("synthetic_weight", "finetune_steps") if k in spec}
        if "filter" in spec:  # the real-only classifier judges the samples; its features measure typicality
            model, _, _ = train_arm(labelled, val, **kw)
            keep = SampleFilter(model, spec["filter"]["min_confidence"], encoder=model.features,
                                reference=labelled, quantile=spec["filter"]["quantile"])
            pool_ds = SyntheticDataset(gen, per_class=per_class, seed=10_000 + seed, keep=keep)
        else:
            pool_ds = SyntheticDataset(gen, per_class=per_class, seed=10_000 + seed)
        row = run_arm(name, labelled, val, test, synthetic=pool_ds, ratio=spec["ratio"],
                      classical=spec.get("classical"), allow_short="filter" in spec, **kw, **extra)
        if pool_ds.filter_report:
            row["filter_report"] = pool_ds.filter_report
        return row

    for name, (semi, spec) in specs.items():
        arm(name, {**spec, "generator": H.config_hash(gens[semi][0])},
            lambda name=name, semi=semi, spec=spec: synthetic_arm(name, semi, spec))
    if figs is not None and not Path(f"{figs}_samples.png").is_file():
        rows, labels = [], []
        for c, cname in enumerate(labelled.class_names):
            rows.append(labelled.images[labelled.labels == c][:8])
            labels.append(f"real {cname}")
            for semi in (False, True):
                x, _ = generator(semi).sample(8, labels=c, seed=seed)
                rows.append(x)
                labels.append(f"{'semi' if semi else 'closed-set'} {cname}")
        save_grid(torch.cat(rows), f"{figs}_samples.png", nrow=8, row_labels=labels,
                  title=f"{study} seed {seed}: real, closed-set cGAN, semi-supervised cGAN")
    return out


def report(study: str, per_seed: dict[int, dict], cfg: dict, meta: dict, prefix: Path, quick: bool) -> dict:
    seeds = sorted(per_seed)
    results = {a: [per_seed[s][a] for s in seeds] for a in per_seed[seeds[0]]}
    classical = [f"classical_{k}" for k in CLASSICAL]
    comp = compare_results(results, metric="test_auc", baseline="real_only", classical=classical)
    best_c = comp["best_classical"]
    gen_arms = [a for a in results if "synthetic" in a]
    semi = "semi_synthetic@0.25"
    pairs = ([("real_only", None), ("real_only_all_labels", None)] + [(a, "real_only") for a in classical]
             + [("pseudo_label", best_c)] + [(a, best_c) for a in gen_arms]
             + [(semi, "pseudo_label"), (semi, "synthetic@0.25"), (semi, "real_only_all_labels"),
                (semi, "real_copies@0.25"), ("synthetic@0.25", "real_copies@0.25")])
    readme = [("real_only", None), (best_c, "real_only"), ("pseudo_label", best_c), ("synthetic@0.25", best_c),
              (semi, best_c), (semi, "pseudo_label"), (semi, "real_only_all_labels")]
    records = H.pair_records(study, results, "test_auc", pairs, readme, gen_arms, len(seeds))
    out = {"study": study, "quick": quick, "seeds": seeds, "config": cfg, "comparison": comp, "headline": records,
           "machine": meta}
    H.write_json(Path(f"{prefix}.json"), out)
    bar_chart(comp["summary"], "test_auc", Path(f"{prefix}.png"), title=f"{study}: test AUC over {len(seeds)} seeds")
    filt = [r.get("filter_report") for r in results.get("semi_synthetic@0.25_filtered", []) if r.get("filter_report")]
    pl = results.get("pseudo_label", [])
    L = [f"# {'QUICK SMOKE TEST: ' if quick else ''}Few labels, plentiful images: {study}", "",
         f"{cfg['data']}: {100 * cfg['labelled']:g}% of the training labels (stratified, per seed), the rest of the "
         f"training split as the unlabelled pool. Seeds {seeds}; each seed retrains both generators "
         f"({cfg['gan_steps']} steps). {H.selection_line(results)}", "",
         "## Test AUC (mean [95% CI]; paired differences by seed)", "", markdown_table(comp), "",
         "## Paired comparisons", "", "| arm | reference | difference |", "|---|---|---|",
         *(f"| {r['arm']} | {r['reference_arm']} | "
           f"{H.fmt_diff({'mean_diff': r['diff'], 'lo': r['diff_ci_low'], 'hi': r['diff_ci_high'], 'p_value': r['p'], 'no_test_reason': r.get('note')})} |"  # noqa: E501
           for r in records if r["reference_arm"] and r["diff"] is not None), ""]
    if pl:
        L += [f"Self-training: {np.mean([r['n_pseudo'] for r in pl]):.0f} pool images pseudo-labelled per seed on "
              f"average, pseudo-label accuracy {np.mean([r['pseudo_label_accuracy'] or 0 for r in pl]):.3f}.", ""]
    if filt:
        kept = {c: np.mean([f[c]["kept_fraction"] for f in filt]) for c in filt[0]}
        L += ["Filter: kept fraction of generated samples per class (mean over seeds): "
              + ", ".join(f"{c} {v:.2f}" for c, v in kept.items()) + ".", ""]
    clf_min = sum(r.get("seconds", 0.0) for rs in results.values() for r in rs) / 60
    gen = (f"; each seed also trains two {cfg['gan_steps']}-step generators, {np.mean(GEN_SECONDS) / 60:.1f} min "
           f"each on average ({len(GEN_SECONDS)} measured)" if GEN_SECONDS else "")
    L += [f"Compute: {clf_min:.0f} CPU-min of classifier training over all arms and seeds (1 thread), "
          f"{clf_min / len(seeds):.0f} min per seed{gen}.", ""]
    L += [f"Machine: {meta['nproc']} CPUs ({meta['cpu']}), torch {meta['torch']}; command `{meta['command']}`.", ""]
    Path(f"{prefix}.md").write_text("\n".join(L))
    print(f"[{study}] wrote {prefix}.md/.json/.png", flush=True)
    return out


def main(argv=None) -> int:
    st = H.Study("few_labels", __doc__, argv, studies=ORDER)
    clf = classifier_settings("small_cnn", st.quick)
    for study in ["breast_labels25"] if st.quick else st.studies:
        cfg = {**STUDIES[study], **({"gan_steps": QUICK["gan_steps"], "cgan": QUICK["cgan"]} if st.quick else {})}
        prefix = st.prefix_for(study)
        per_seed = {s: run_seed(study, s, cfg, clf, st.cache, st.quick, prefix if s == st.seeds[0] else None)
                    for s in st.seeds}
        out = report(study, per_seed, cfg, st.meta, prefix, st.quick)
        st.finish(out["headline"], study)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
