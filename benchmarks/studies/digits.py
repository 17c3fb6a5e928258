"""Digits domain study: does adding CycleGAN MNIST->USPS translations to MNIST help a LeNet on USPS, compared
with source-only training, classical digit augmentation and the same number of extra real MNIST copies?

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m benchmarks.studies.digits [--seeds 0 1 2 3 4] [--quick]

The literature's protocol: 28 px (USPS upsampled 16 -> 28), the LeNet of ADDA / CyCADA. Source: the 10k labelled
MNIST images here (the official test file), split 9000 train / 1000 val (stratified, seed 0); target: USPS test
(2007), scored once per arm. Per seed a CycleGAN MNIST <-> USPS is trained on the MNIST train split and the
unlabelled USPS train images (so the intervals include translator variance); then the arms, each trained
through ``MixedDataset`` with its step selected on the MNIST val split (no target label):

* ``source_only``, ``classical_digits`` (random affine + stroke-width jitter);
* ``translated_only`` (the translations alone), ``source+translated`` (MNIST + all its translations, share 0.5),
  ``source+translated+classical_digits``; the count-matched control ``real_copies@0.5``;
* ``target_oracle``: trained on labelled USPS train (selected on 10% of it), the upper bound; it also reads the
  translated MNIST images (does the translation keep the digit?).

Reports ``benchmarks/results/domain_digits.{md,json,png}`` + ``_examples.png`` and the ``digits`` headline records.
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
from benchmarks.studies import domain_common as C  # noqa: E402
from synthaug.augment import SyntheticDataset, translated_dataset  # noqa: E402
from synthaug.augment.plan import synthetic_counts  # noqa: E402
from synthaug.data import ImageDataset, load_digits, stratified_indices  # noqa: E402
from synthaug.eval import (bar_chart, compare_results, evaluate, markdown_table, real_copies, run_arm,  # noqa: E402
                           score_arm, train_arm)
from synthaug.study.report import verdict_of  # noqa: E402
from synthaug.utils import save_grid  # noqa: E402

# Budgets, measured with 25-150 steps through this module's own code on the 2 cores shared with other CPU jobs
# (load average 3-4), one torch thread: CycleGAN at 28 px (ngf 32 / 6 blocks, PatchGAN ndf 32 / n_layers 2, batch 4)
# 0.19 s/step; LeNet, batch 64, 0.016 s/step (0.018 through MixedDataset, 0.024 with the digits augmentation);
# translating the 9000 MNIST images ~20 s. Per seed: the translator 2000 steps (~0.9 epoch of the 9000 MNIST images;
# the showcase ran 1200) ~6.5 min + 7 arms of at most 2500 steps ~5.5 min = ~12 min, so 5 seeds take ~60 min (~90
# min on a machine 1.5x busier). Classifier budget: in probes the best MNIST-val step fell at 1270-2250 of 2000-3000.
FULL = dict(size=28, n_train_cap=None, n_target_cap=None,
            translator=dict(steps=2000, ngf=32, n_blocks=6, ndf=32, n_layers=2, batch_size=4),
            classifier=dict(arch="lenet", max_steps=2500, eval_every=150, patience=8, batch_size=64, lr=1e-3,
                            select_on="accuracy"))
QUICK = dict(FULL, n_train_cap=300, n_target_cap=300, n_eval_cap=300,  # --quick: tiny nets, a few steps
             translator=dict(FULL["translator"], steps=6, ngf=8, n_blocks=2, ndf=8),
             classifier=dict(FULL["classifier"], max_steps=12, eval_every=4, patience=2))
# The task-consistency translator (issue 14, CyCADA's semantic loss): the same CycleGAN plus lambda_task 1 from the
# first step, with a LeNet f_S trained on the MNIST train images (20% held out), on only if f_S reaches 90% there.
TASK = dict(lambda_task=1.0, task_start_step=0, task_min_accuracy=0.9,
            task_classifier={"arch": "lenet", "max_steps": 800, "eval_every": 100, "patience": 4})
RATIO = 0.5
ORDER = ("source_only", "classical_digits", "source_boxfit", "boxfit+translated_task", "translated_only",
         "source+translated", "source+translated+classical_digits", "source+translated_task",
         "source+translated_task_filtered", f"real_copies@{RATIO}", "target_oracle")
TRANSLATED = {"boxfit+translated_task", "translated_only", "source+translated", "source+translated+classical_digits",
              "source+translated_task", "source+translated_task_filtered"}
METRIC = "test_accuracy"
LITERATURE = "CyCADA (Hoffman et al. 2018): source only 82.2, CyCADA 95.6, target-supervised 96.3"


def box_fit(images: torch.Tensor, ink: float = -0.5) -> torch.Tensor:
    """Each digit cropped to its ink box, padded to a square and scaled to fill the frame, as USPS digits are
    (MNIST centres a 20 px box in 28 px): the ablation arm ``source_boxfit``, which changes only the geometry."""
    import torch.nn.functional as F

    out, size = images.clone(), images.shape[-1]
    for i, im in enumerate(images):
        ys, xs = torch.nonzero(im[0] > ink, as_tuple=True)
        if len(ys):
            crop = im[:, int(ys.min()):int(ys.max()) + 1, int(xs.min()):int(xs.max()) + 1]
            h, w = crop.shape[-2:]
            s = max(h, w)
            sq = F.pad(crop[None], ((s - w) // 2, s - w - (s - w) // 2, (s - h) // 2, s - h - (s - h) // 2), value=-1.0)
            out[i] = F.interpolate(sq, size=(size, size), mode="bilinear", antialias=True)[0].clamp(-1, 1)
    return out


def load(cfg: dict) -> dict:
    """MNIST train/val, USPS train (translator: images only; oracle: labelled, 90/10) and USPS test, at 28 px."""
    digits = H.DATA / "digits"
    mnist = load_digits(digits / "mnist_t10k.npz", size=cfg["size"])
    val = stratified_indices(mnist.labels, fraction=0.1, seed=0)
    train = np.setdiff1d(np.arange(len(mnist)), val)
    usps = load_digits(digits / "usps.npz", split="train", size=cfg["size"])
    o_val = stratified_indices(usps.labels, fraction=0.1, seed=0)
    o_train = np.setdiff1d(np.arange(len(usps)), o_val)
    unlabelled = np.arange(len(usps))
    if cfg["n_train_cap"]:
        rng = np.random.default_rng(0)
        train = np.sort(rng.choice(train, cfg["n_train_cap"], replace=False))
        o_train = np.sort(rng.choice(o_train, cfg["n_target_cap"], replace=False))
        unlabelled = np.sort(rng.choice(unlabelled, cfg["n_target_cap"], replace=False))
    test = load_digits(digits / "usps.npz", split="test", size=cfg["size"])
    if cfg.get("n_eval_cap"):  # --quick only
        rng, n = np.random.default_rng(1), cfg["n_eval_cap"]
        val, o_val = np.sort(rng.choice(val, n, replace=False)), np.sort(rng.choice(o_val, n // 2, replace=False))
        test = test.subset(np.sort(rng.choice(len(test), n, replace=False)))
    return {"src_train": mnist.subset(train), "src_val": mnist.subset(val), "usps_images": usps.subset(unlabelled),
            "o_train": usps.subset(o_train), "o_val": usps.subset(o_val), "test": test}


def run_seed(st: H.Study, d: dict, cfg: dict, seed: int) -> tuple[dict, dict]:
    """All arms of one seed (each cached when done) and the seed's translator record."""
    src, val, test = d["src_train"], d["src_val"], d["test"]
    clf = cfg["classifier"]
    data_key = {"size": cfg["size"], "n_src_train": len(src), "n_src_val": len(val), "n_usps": len(d["usps_images"]),
                "n_oracle": [len(d["o_train"]), len(d["o_val"])], "cap": cfg["n_train_cap"]}
    tcfg = C.cyclegan_config(**cfg["translator"])
    tconf = C.translator_config("digits", data_key, tcfg, seed)
    model, tinfo = C.translator(st, tconf, tcfg, lambda: (src, d["usps_images"]), ("mnist", "usps"))
    translated = C.lazy(lambda: model().translate(src.images, "A2B", batch_size=256))
    pool = C.lazy(lambda: SyntheticDataset.from_tensors(translated(), src.labels, src.class_names,
                                                        source={"source": "CycleGAN MNIST->USPS", "seed": seed}))
    task_cfg = C.task_cyclegan_config(cfg["translator"], TASK, st.quick)
    task_conf = C.translator_config("digits", data_key, task_cfg, seed)
    task_model, task_info = C.translator(st, task_conf, task_cfg, lambda: (src, d["usps_images"]), ("mnist", "usps"))
    task_pool = C.lazy(lambda: SyntheticDataset.from_tensors(
        task_model().translate(src.images, "A2B", batch_size=256), src.labels, src.class_names,
        source={"source": "CycleGAN + task loss MNIST->USPS", "seed": seed}))
    # label check by the translator's own f_S (trained on MNIST labels only: no USPS label is used)
    checked_pool = C.lazy(lambda: translated_dataset(task_model(), src, "A2B", batch_size=256))
    task_key = H.config_hash(task_conf)
    # geometry first, then style: the task-loss translator trained on the box-fitted MNIST (see box_fit)
    bsrc = C.lazy(lambda: ImageDataset(box_fit(src.images), src.labels, src.class_names))
    bval = C.lazy(lambda: ImageDataset(box_fit(val.images), val.labels, val.class_names))
    box_conf = C.translator_config("digits", {**data_key, "source_preprocess": "box_fit"}, task_cfg, seed)
    box_model, box_info = C.translator(st, box_conf, task_cfg, lambda: (bsrc(), d["usps_images"]),
                                       ("mnist_boxfit", "usps"))
    box_pool = C.lazy(lambda: SyntheticDataset.from_tensors(
        box_model().translate(bsrc().images, "A2B", batch_size=256), src.labels, src.class_names,
        source={"source": "CycleGAN + task loss, box-fitted MNIST->USPS", "seed": seed}))
    copies = real_copies(src, synthetic_counts(src.labels.numpy(), src.num_classes, ratio=RATIO))
    base = {"harness": C.HARNESS_VERSION, "study": "digits", "data": data_key, "seed": seed, "classifier": clf}
    tkey = H.config_hash(tconf)
    kw = dict(seed=seed, device="cpu", **clf)

    def oracle() -> dict:
        model_, info, train_set = train_arm(d["o_train"], d["o_val"], **kw)
        r = score_arm("target_oracle", model_, info, train_set, test, seed=seed, device="cpu")
        r["reader_original_mnist"] = evaluate(model_, src, "cpu")["accuracy"]
        r["reader_translated_mnist"] = evaluate(model_, ImageDataset(translated(), src.labels, src.class_names),
                                                "cpu")["accuracy"]
        return r

    def filtered_arm() -> dict:
        pool_ = checked_pool()
        r = run_arm("source+translated_task_filtered", src, val, test, synthetic=pool_, ratio=RATIO,
                    allow_short=True, **kw)
        return {**r, "label_check": pool_.model_config.get("label_check")}

    computes = {
        "source_only": ({}, lambda: run_arm("source_only", src, val, test, **kw)),
        "classical_digits": ({"classical": "digits"},
                             lambda: run_arm("classical_digits", src, val, test, classical="digits", **kw)),
        "source_boxfit": ({"preprocess": "box_fit"}, lambda: run_arm("source_boxfit", bsrc(), bval(), test, **kw)),
        "boxfit+translated_task": ({"preprocess": "box_fit", "translator": H.config_hash(box_conf), "ratio": RATIO},
                                   lambda: run_arm("boxfit+translated_task", bsrc(), bval(), test,
                                                   synthetic=box_pool(), ratio=RATIO, **kw)),
        "translated_only": ({"translator": tkey}, lambda: run_arm(
            "translated_only", ImageDataset(translated(), src.labels, src.class_names), val, test, **kw)),
        "source+translated": ({"translator": tkey, "ratio": RATIO}, lambda: run_arm(
            "source+translated", src, val, test, synthetic=pool(), ratio=RATIO, **kw)),
        "source+translated+classical_digits": ({"translator": tkey, "ratio": RATIO, "classical": "digits"},
                                               lambda: run_arm("source+translated+classical_digits", src, val, test,
                                                               synthetic=pool(), ratio=RATIO, classical="digits",
                                                               **kw)),
        "source+translated_task": ({"translator": task_key, "ratio": RATIO}, lambda: run_arm(
            "source+translated_task", src, val, test, synthetic=task_pool(), ratio=RATIO, **kw)),
        "source+translated_task_filtered": ({"translator": task_key, "ratio": RATIO, "label_check": "task f_S"},
                                            lambda: filtered_arm()),
        f"real_copies@{RATIO}": ({"ratio": RATIO}, lambda: run_arm(f"real_copies@{RATIO}", src, val, test,
                                                                   synthetic=copies, ratio=RATIO, **kw)),
        "target_oracle": ({"translator": tkey, "reader": True}, oracle),
    }
    out = {a: st.arm(seed, base, a, spec, fn, METRIC) for a, (spec, fn) in computes.items()}
    if seed == st.seeds[0] and C.translator_on_disk(st, tconf):
        tm = model()
        first = [int(np.flatnonzero(src.labels.numpy() == c)[0]) for c in range(10)]
        ufirst = [int(np.flatnonzero(d["o_train"].labels.numpy() == c)[0]) for c in range(10)]
        rows = [src.images[first], tm.translate(src.images[first], "A2B")]
        labels = ["MNIST", "MNIST->USPS"]
        if C.translator_on_disk(st, task_conf):
            rows.append(task_model().translate(src.images[first], "A2B"))
            labels.append("+ task loss")
        save_grid(torch.cat(rows + [d["o_train"].images[ufirst]]),
                  st.out("_examples.png"), nrow=10, row_labels=labels + ["real USPS"],
                  title=f"digits at 28 px, translator of seed {seed} ({tcfg.steps} steps)")
    return out, {**tinfo(), "kind": "CycleGAN MNIST<->USPS", "task_translator": task_info(),
                 "boxfit_task_translator": box_info()}


def report(st: H.Study, per_seed: dict, translators: list[dict], cfg: dict, d: dict) -> dict:
    results, n = C.by_arm(per_seed, ORDER)
    comp = compare_results(results, metric=METRIC, baseline="source_only",
                           classical=[a for a in ("classical_digits",) if a in results])
    best_c = comp["best_classical"] or "source_only"
    copies = f"real_copies@{RATIO}"
    pairs = [("source_only", None), ("classical_digits", "source_only"), ("translated_only", "source_only"),
             ("source+translated", "source_only"), ("source+translated", best_c), ("source+translated", copies),
             ("source+translated+classical_digits", best_c), ("source+translated_task", "source_only"),
             ("source+translated_task", best_c), ("source+translated_task", "source+translated"),
             ("source+translated_task_filtered", "source_only"), ("source+translated_task_filtered", best_c),
             ("source+translated_task_filtered", "source+translated_task"), (copies, "source_only"),
             ("target_oracle", "source_only"), ("source_boxfit", "source_only"), ("source_boxfit", best_c),
             ("boxfit+translated_task", "source_boxfit"), ("boxfit+translated_task", best_c)]
    readme = [("source_only", None), ("classical_digits", "source_only"), ("source+translated", "source_only"),
              ("source+translated", copies), ("source+translated+classical_digits", best_c),
              ("source+translated_task", best_c), ("source+translated_task_filtered", best_c),
              ("target_oracle", "source_only")]
    recs = H.pair_records("digits", results, METRIC, pairs, readme, TRANSLATED, len(per_seed))
    summ = {r["arm"]: r for r in comp["summary"]}
    so = summ.get("source_only")
    clf, tr = cfg["classifier"], cfg["translator"]
    oracle = results.get("target_oracle", [])
    L = [f"# {'QUICK: ' if st.quick else ''}Domain shift, digits: MNIST -> USPS at 28 px with a LeNet", "",
         *C.quick_banner(st),
         "Question: does a LeNet trained on MNIST plus its CycleGAN translations to the USPS style score higher on "
         "USPS test than one trained on MNIST alone, than one trained with classical digit augmentation, and than "
         "one given the same number of extra (copied) MNIST images? Upper bound: a LeNet trained on labelled USPS.",
         "", "## Protocol", "",
         f"- Source: `digits/mnist_t10k.npz` (the official 10k MNIST test file, the only labelled MNIST here), 28 px, "
         f"split stratified (seed 0) into {len(d['src_train'])} train / {len(d['src_val'])} val. Target: USPS "
         f"upsampled 16 -> 28 px (`load_digits(..., size=28)`, bilinear) as in the literature; scored once per arm "
         f"on the {len(d['test'])} USPS **test** images, which no translator, classifier or selection step saw.",
         f"- Translator, **retrained for every seed** (seed = classifier seed): CycleGAN MNIST <-> USPS on the "
         f"{len(d['src_train'])} MNIST train images and the {len(d['usps_images'])} USPS train images without labels, "
         f"{tr['steps']} steps of batch {tr['batch_size']}, ResNet generator ngf {tr['ngf']} / {tr['n_blocks']} "
         f"blocks, PatchGAN ndf {tr['ndf']} / n_layers {tr['n_layers']}, LSGAN, lambda_cycle 10, identity 0.5 "
         "(`CycleGANRecipe` + `Trainer`). The intervals below therefore include translator variance.",
         f"- Classifier: `{clf['arch']}` (LeNet of ADDA / CyCADA), AdamW lr {clf['lr']}, batch {clf['batch_size']}, "
         f"cosine schedule over {clf['max_steps']} steps, evaluated every {clf['eval_every']} steps, early stopping "
         f"after {clf['patience']} evaluations without improvement. Development note: before the full run, a few "
         "variants (lr 3e-4, batch 128, weight EMA, stronger weight decay, 2000-3000 steps) were tried on seeds 0-2 "
         "and looked at on USPS test to check the source-only target below; none moved source-only by more than "
         "about a point, and these (library default) settings were kept.",
         "- Selection: every MNIST-based arm keeps the step with the best accuracy on the **MNIST val split "
         "(source domain, untranslated)**; no USPS label is used for them. The oracle selects on a stratified 10% "
         f"of USPS train ({len(d['o_val'])} images) and trains on the other {len(d['o_train'])}.",
         f"- Arms: `source_only`; `classical_digits` (`classical_augment('digits')`: random affine, stroke-width "
         f"jitter); `translated_only` (the translations alone, MNIST labels); `source+translated` (MNIST + all its "
         f"translations through `MixedDataset`, share {RATIO}); `source+translated+classical_digits`; "
         "`source+translated_task` (the same, from a second CycleGAN per seed trained with the task-consistency "
         f"loss: {TASK}); `source+translated_task_filtered` (only the task translations whose label the "
         "translator's own MNIST-trained classifier f_S still reads; a class left short is not refilled); "
         f"`{copies}` (the same number of extra images, copies of MNIST: the count-matched control); "
         "`target_oracle`.",
         "- Arm names: as in the earlier `study_domain.py` (`source_only`, `translated_only`, `source+translated`, "
         "`target_oracle`); there `source+translated` replaced half the images by their translation (same set "
         "size) and the translator was one showcase model at 16 px for all seeds, so the numbers are not comparable.",
         f"- Seeds {sorted(per_seed)}; 95% Student-t intervals; differences paired by seed (two-sided paired t-test).",
         "", "## USPS test accuracy", "", markdown_table(comp), "",
         "## Translated images vs the controls (paired by seed)", "",
         *C.diff_table(results, [("source+translated", "source_only"), ("source+translated", copies),
                                 ("source+translated", best_c), ("source+translated+classical_digits", best_c),
                                 ("translated_only", "source_only"), ("source+translated_task", best_c),
                                 ("source+translated_task", "source+translated"),
                                 ("source+translated_task_filtered", best_c),
                                 ("source+translated_task_filtered", "source+translated_task")], METRIC), "",
         "Reading:", "",
         *(f"- {verdict_of(results, a, r, METRIC)}." for a, r in
           (("source+translated", "source_only"), ("source+translated", copies), ("source+translated", best_c),
            ("source+translated+classical_digits", best_c), ("target_oracle", "source_only"),
            ("source_boxfit", "source_only"), ("source_boxfit", best_c),
            ("boxfit+translated_task", "source_boxfit"))),
         "- `source_boxfit` is the ablation that asks what limits the translations: MNIST (train and val) with each "
         "digit cropped to its ink box and scaled to fill the frame as USPS digits do, no translator and no "
         "augmentation. It changes only the geometry that a ResNet translator keeps by construction. "
         "`boxfit+translated_task` adds, at share 0.5, the translations of those images by a task-loss CycleGAN "
         "trained on them (geometry first, then style).", ""]
    if so:
        L += [f"Protocol check: `source_only` reaches {100 * so['mean']:.1f}% on USPS test (target >= 78%; the "
              f"literature's source-only LeNet is 78.7-82.2%, trained on the 60k MNIST train set, here "
              f"{len(d['src_train'])} images): "
              f"{'met' if so['mean'] >= 0.78 else 'NOT met'}.", "",
              "| | source only | with translations | target-supervised |", "|---|---|---|---|",
              "| CyCADA paper (60k MNIST, LeNet, 28 px) | 82.2 | 95.6 (CyCADA) | 96.3 |",
              f"| this study | {H.fmt_ci(so, 1, 100)} | {H.fmt_ci(summ.get('source+translated'), 1, 100)} "
              f"(source+translated) | {H.fmt_ci(summ.get('target_oracle'), 1, 100)} |", ""]
    if oracle and "reader_translated_mnist" in oracle[0]:
        tr_m = np.mean([r["reader_translated_mnist"] for r in oracle])
        or_m = np.mean([r["reader_original_mnist"] for r in oracle])
        L += [f"Does the translation keep the digit? The USPS-trained oracle (mean over seeds, each reading its own "
              f"seed's translations) agrees with the MNIST label on {100 * tr_m:.1f}% of the translated MNIST train "
              f"images and on {100 * or_m:.1f}% of the same images untranslated (CycleGAN has no term that keeps the "
              "class; CyCADA adds one).", ""]
    L += ["MNIST val accuracy of the selected models (source domain, the selection score):", "",
          "| arm | MNIST val accuracy (mean) | mean selected step |", "|---|---|---|",
          *(f"| {a} | {np.mean([r['val_score'] for r in rs]):.4f} | {np.mean([r['best_step'] for r in rs]):.0f} |"
            for a, rs in results.items() if a != "target_oracle"), "",
          f"![digits]({st.prefix.name}.png)", "", "Examples (first MNIST train image of each digit, its translation by "
          "the first seed's translator, real USPS train):", "", f"![digits examples]({st.prefix.name}_examples.png)",
          "", *C.run_section(st, results, translators)]
    st.out(".md").write_text("\n".join(L))
    bar_chart(comp["summary"], "USPS test accuracy", st.out(".png"),
              title=f"MNIST->USPS (28 px, LeNet): USPS test accuracy, mean and 95% CI over {len(per_seed)} seeds")
    out = {"study": "digits", "quick": st.quick, "seeds": sorted(per_seed), "config": cfg, "arms_seeds": n,
           "comparison": comp, "translators": translators, "literature": LITERATURE, "machine": st.meta,
           "wall_seconds_this_invocation": round(st.wall(), 1), "headline": recs}
    H.write_json(st.out(".json"), out)
    return out


def main(argv=None) -> int:
    return C.run_study("digits", __doc__, argv, FULL, QUICK, load, lambda d: (
        f"MNIST train {len(d['src_train'])} val {len(d['src_val'])}; USPS (translator) {len(d['usps_images'])}, "
        f"oracle {len(d['o_train'])}/{len(d['o_val'])}, test {len(d['test'])}"), run_seed, report)


if __name__ == "__main__":
    raise SystemExit(main())
