"""Weather domain study: with only 10 or 25 rain photos, does topping the rain class up with CycleGAN shine->rain
translations beat training on the few real rain photos, albumentations ``RandomRain`` on the same shine photos,
and the same number of copies of the real rain photos?

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m benchmarks.studies.weather [--seeds 0 1 2 3 4] [--quick]

Data: the Multi-class Weather Dataset (cloudy / rain / shine / sunrise) at 32 px; a fixed permutation (seed 0) of
the rain training photos gives the allowed 10 (or 25), the first 15% of them for validation, the rest of the
non-rain classes split 85/15 (stratified, seed 0); ``mwd/test`` scored once per arm. Per seed and rain count a
CycleGAN shine <-> rain is trained on the shine training photos and only the allowed rain training photos (the
intervals include translator variance). Arms per rain count k (``rain<k>/...``), the rain class topped up to the
shine count:

* ``source_only`` (no top-up), ``classical_randomrain`` (RandomRain on shine photos), ``translated`` (CycleGAN on
  the same shine photos), ``translated_structure`` (a second CycleGAN with the structure term, ``lambda_structure``
  :data:`STRUCTURE`, fixed before the run), ``real_copies`` (the few real rain photos repeated: the count-matched
  control);
* ``target_oracle``: all rain training photos (the ceiling of more real rain).

Reports ``benchmarks/results/domain_weather.{md,json,png}`` + ``_examples.png`` and the ``weather`` headline records.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import harness as H  # noqa: E402
from benchmarks.studies import domain_common as C  # noqa: E402
from synthaug.augment import SyntheticDataset  # noqa: E402
from synthaug.data import load_image_folder, stratified_indices  # noqa: E402
from synthaug.eval import bar_chart, compare_results, markdown_table, run_arm  # noqa: E402
from synthaug.study.report import paired_difference, verdict_of  # noqa: E402
from synthaug.utils import save_grid  # noqa: E402

# Budgets, measured with 25-150 steps through this module's own code on the 2 cores shared with other CPU jobs
# (load average 3-4), one torch thread: CycleGAN at 32 px (ngf 32 / 6 blocks, PatchGAN ndf 32 / n_layers 2, batch 1)
# 0.11 s/step; SmallCNN width 16 at 32 px, batch 64, 0.024 s/step. Per seed: 2 translators x 2500 steps (~13 epochs
# of the shine photos; the old study ran 400) ~9 min + 9 arms of at most 500 steps ~2 min = ~11 min, so 5 seeds take
# ~55 min (~80 min on a machine 1.5x busier). Classifier budget: the old study's selected epoch was 12-15 of 20
# (~150-230 steps), so 500 with early stopping.
FULL = dict(size=32, rain_src_size=128, rain_counts=(10, 25), val_fraction=0.15,
            translator=dict(steps=2500, ngf=32, n_blocks=6, ndf=32, n_layers=2, batch_size=1),
            classifier=dict(arch="small_cnn", width=16, max_steps=500, eval_every=15, patience=10, batch_size=64,
                            lr=1e-3, select_on="balanced_accuracy"))
QUICK = dict(FULL, translator=dict(FULL["translator"], steps=5, ngf=8, n_blocks=2, ndf=8),
             classifier=dict(FULL["classifier"], max_steps=12, eval_every=4, patience=2, width=8))
CLASSES = ["cloudy", "rain", "shine", "sunrise"]
RAIN, SHINE = 1, 2
KINDS = ("source_only", "real_copies", "classical_randomrain", "translated", "translated_structure")
TRANSLATED = ("translated", "translated_structure")
STRUCTURE = 10.0  # lambda_structure of translated_structure: the larger weight of bench_translation_quality
OLD_NAMES = {"source_only": "baseline", "real_copies": "+oversample", "classical_randomrain": "+RandomRain",
             "translated": "+CycleGAN"}
METRICS = ("test_balanced_accuracy", "test_accuracy", "test_rain_recall")


def load(cfg: dict) -> dict:
    """Images, the fixed rain subsets and the per-rain-count train / val splits (as the earlier study)."""
    root = H.DATA / "weather" / "mwd"
    full = load_image_folder(root / "train", size=cfg["size"], class_names=CLASSES)
    test = load_image_folder(root / "test", size=cfg["size"], class_names=CLASSES)
    shine_hi = load_image_folder(root / "train", size=cfg["rain_src_size"], class_names=["shine"])
    y = full.labels.numpy()
    rain_perm = np.random.default_rng(0).permutation(np.flatnonzero(y == RAIN))
    nonrain_val = stratified_indices(full.labels, fraction=cfg["val_fraction"], seed=0)
    nonrain_val = nonrain_val[y[nonrain_val] != RAIN]
    nonrain_train = np.setdiff1d(np.flatnonzero(y != RAIN), nonrain_val)
    shine_train = nonrain_train[y[nonrain_train] == SHINE]
    setups = {}
    for k in (*cfg["rain_counts"], "all"):
        kk = max(cfg["rain_counts"]) if k == "all" else k
        nv = int(np.floor(cfg["val_fraction"] * kk + 0.5))
        rain_val, rain_train = rain_perm[:nv], (rain_perm[nv:] if k == "all" else rain_perm[nv:k])
        setups[k] = {"train": full.subset(np.sort(np.concatenate([nonrain_train, rain_train]))),
                     "val": full.subset(np.sort(np.concatenate([nonrain_val, rain_val]))),
                     "rain_train": rain_train, "n_topup": int(len(shine_train) - len(rain_train))}
    shine_pos = {int(g): i for i, g in enumerate(np.flatnonzero(y == SHINE))}
    return {"full": full, "test": test, "shine_hi": shine_hi, "shine_pos": shine_pos, "shine_train": shine_train,
            "setups": setups}


def random_rain(d: dict, idx: np.ndarray, seed: int, size: int) -> torch.Tensor:
    """albumentations ``RandomRain`` (defaults, p=1) on shine photos read at 128 px, then resized to ``size``
    (antialiased): streaks drawn at 32 px would be sub-pixel."""
    import albumentations as A

    hi = d["shine_hi"].images[[d["shine_pos"][int(g)] for g in idx]]
    out = C.albumentations_on(hi, A.RandomRain(p=1.0), seed)
    return F.interpolate(out, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(-1, 1)


def run_seed(st: H.Study, d: dict, cfg: dict, seed: int) -> tuple[dict, list[dict]]:
    """All arms of one seed (each cached when done) and the seed's translator records."""
    clf, test, shine = cfg["classifier"], d["test"], d["shine_train"]
    kw = dict(seed=seed, device="cpu", **clf)
    data_key = {"size": cfg["size"], "val_fraction": cfg["val_fraction"], "rain_counts": list(cfg["rain_counts"])}
    base = {"harness": C.HARNESS_VERSION, "study": "weather", "data": data_key, "seed": seed, "classifier": clf}
    out, infos = {}, []
    tcfg = C.cyclegan_config(**cfg["translator"])
    scfg = C.cyclegan_config(**cfg["translator"])
    scfg.lambda_structure = STRUCTURE
    for k in cfg["rain_counts"]:
        s = d["setups"][k]
        train, val, n = s["train"], s["val"], s["n_topup"]
        tdata = {**data_key, "rain_train": [int(i) for i in s["rain_train"]], "n_shine": len(shine)}
        tconf, sconf = (C.translator_config("weather", tdata, c, seed) for c in (tcfg, scfg))

        def domains(s=s):
            return d["full"].subset(shine), d["full"].subset(s["rain_train"])

        model, tinfo = C.translator(st, tconf, tcfg, domains, ("shine", "rain"))
        smodel, sinfo = C.translator(st, sconf, scfg, domains, ("shine", "rain"))
        pick = np.sort(np.random.default_rng(2000 + seed).choice(len(shine), n, replace=False))
        copies = np.random.default_rng(3000 + seed).permutation(n) % len(s["rain_train"])
        extra = {
            "source_only": ({}, None),
            "real_copies": ({"n_topup": n}, lambda s=s, copies=copies: d["full"].images[s["rain_train"][copies]]),
            "classical_randomrain": ({"n_topup": n, "kind": "RandomRain@128px"},
                                     lambda pick=pick: random_rain(d, shine[pick], seed, cfg["size"])),
            "translated": ({"n_topup": n, "translator": H.config_hash(tconf)},
                           lambda model=model, pick=pick: model().translate(d["full"].images[shine[pick]], "A2B",
                                                                               batch_size=64)),
            "translated_structure": ({"n_topup": n, "translator": H.config_hash(sconf)},
                                     lambda model=smodel, pick=pick: model().translate(
                                         d["full"].images[shine[pick]], "A2B", batch_size=64)),
        }
        for kind, (spec, images) in extra.items():
            name = f"rain{k}/{kind}"

            def compute(name=name, images=images, train=train, val=val):
                if images is None:
                    return run_arm(name, train, val, test, **kw)
                x = images()  # the rain class topped up by exactly len(x) images, through MixedDataset
                pool = SyntheticDataset.from_tensors(x, torch.full((len(x),), RAIN), train.class_names)
                return run_arm(name, train, val, test, synthetic=pool, ratio={RAIN: len(x)}, **kw)

            out[name] = st.arm(seed, base, name, {"rain": k, **spec}, compute, "test_balanced_accuracy")
        infos.append({**tinfo(), "kind": f"CycleGAN shine<->rain{k}", "rain_count": k})
        infos.append({**sinfo(), "kind": f"CycleGAN + structure {STRUCTURE:g} shine<->rain{k}", "rain_count": k})
        if seed == st.seeds[0] and C.translator_on_disk(st, tconf):
            d.setdefault("examples", {})[k] = model()
        if seed == st.seeds[0] and C.translator_on_disk(st, sconf):
            d.setdefault("examples", {})[f"{k}+structure"] = smodel()
    s = d["setups"]["all"]
    out["target_oracle"] = st.arm(seed, base, "target_oracle", {"rain": "all"},
                                  lambda: run_arm("target_oracle", s["train"], s["val"], test, **kw),
                                  "test_balanced_accuracy")
    for r in out.values():
        r["test_rain_recall"] = r["test_per_class_recall"][RAIN]
    return out, infos


def examples(st: H.Study, d: dict, cfg: dict) -> None:
    """Shine training photos, RandomRain, each rain count's CycleGAN (first seed), real allowed rain photos."""
    n, shine = 8, d["shine_train"]
    pick = shine[np.arange(n) * (len(shine) // n)]
    rows = [d["full"].images[pick], random_rain(d, pick, 0, cfg["size"])]
    labels = ["shine", "RandomRain(shine)"]
    for k, tm in d.get("examples", {}).items():
        rows.append(tm.translate(d["full"].images[pick], "A2B"))
        labels.append(f"CycleGAN r{k}(shine)")
    k0 = min(cfg["rain_counts"])
    real = d["full"].images[d["setups"][k0]["rain_train"][:n]]
    rows.append(torch.cat([real, -torch.ones(n - len(real), *real.shape[1:])]) if len(real) < n else real)
    labels.append(f"real rain (r{k0} train)")
    save_grid(torch.cat(rows), st.out("_examples.png"), nrow=n, row_labels=labels,
              title=f"weather at {cfg['size']} px (translators of seed {st.seeds[0]})")


def _target_met(results: dict, p: str, target: float, arm: str = "translated") -> str:
    d = paired_difference(results, p + arm, p + "classical_randomrain", "test_rain_recall")
    if d is None:
        return "not measured"
    met = d["mean_diff"] >= target and d["lo"] > 0
    return f"target {'met' if met else '**not met**'} ({100 * d['mean_diff']:+.1f} points, interval from " \
           f"{100 * d['lo']:+.1f})"


def report(st: H.Study, per_seed: dict, translators: list[dict], cfg: dict, d: dict) -> dict:
    examples(st, d, cfg)
    order = [f"rain{k}/{a}" for k in cfg["rain_counts"] for a in KINDS] + ["target_oracle"]
    results, n = C.by_arm(per_seed, order)
    m = "test_balanced_accuracy"
    comps, pairs, readme = {}, [], []
    tr, clf = cfg["translator"], cfg["classifier"]
    for k in cfg["rain_counts"]:
        sub = {a: results[a] for a in (*(f"rain{k}/{x}" for x in KINDS), "target_oracle") if a in results}
        if f"rain{k}/source_only" not in sub:
            continue
        comps[k] = {mm: compare_results(sub, metric=mm, baseline=f"rain{k}/source_only",
                                        classical=[a for a in (f"rain{k}/classical_randomrain",) if a in sub])
                    for mm in METRICS}
        p = f"rain{k}/"
        pairs += [(p + "source_only", None), (p + "real_copies", p + "source_only"),
                  (p + "classical_randomrain", p + "source_only"), (p + "translated", p + "source_only"),
                  (p + "translated", p + "classical_randomrain"), (p + "translated", p + "real_copies"),
                  (p + "translated_structure", p + "classical_randomrain"),
                  (p + "translated_structure", p + "translated")]
        readme += [(p + "source_only", None), (p + "classical_randomrain", p + "source_only"),
                   (p + "translated", p + "classical_randomrain"), (p + "translated", p + "real_copies"),
                   (p + "translated_structure", p + "classical_randomrain")]
    pairs.append(("target_oracle", f"rain{cfg['rain_counts'][0]}/source_only"))
    translated = {a for a in results if a.split("/")[-1] in TRANSLATED}
    recs = H.pair_records("weather", results, m, pairs, readme, translated, len(per_seed))
    recall = [(f"rain{k}/{a}", f"rain{k}/classical_randomrain") for k in cfg["rain_counts"]
              for a in (*TRANSLATED, "real_copies")]
    recs += [{**r, "metric": "rain_recall"} for r in H.pair_records(
        "weather", results, "test_rain_recall", recall, [x for x in recall if x[0].split("/")[-1] in TRANSLATED],
        translated, len(per_seed))]
    sp = d["setups"]
    L = [f"# {'QUICK: ' if st.quick else ''}Domain shift, weather: few rain photos, topped up with RandomRain, real "
         "copies or CycleGAN shine->rain", "", *C.quick_banner(st),
         "Question: with only 10 or 25 rain photos, does topping the rain class up with CycleGAN shine->rain "
         "translations beat no top-up, albumentations `RandomRain` on the same shine photos, and the same number of "
         "copies of the real rain photos?", "", "## Protocol", "",
         f"- Data: Multi-class Weather Dataset (`weather/mwd`), classes {CLASSES}, {cfg['size']} px RGB (shorter "
         f"side resized, centre crop). Test: `mwd/test` as found ({d['test'].class_counts()}), scored once per arm; "
         "rain recall rests on 15 photos.",
         "- Few rain: a fixed permutation (numpy seed 0) of the rain training photos; the first k are allowed (the "
         "10 are inside the 25), the first round(0.15 k) of them are validation. Non-rain validation: 15% of each "
         "class, stratified, seed 0, the same for every arm. Per rain count: " + "; ".join(
             f"k={k}: train {sp[k]['train'].class_counts()}, val {sp[k]['val'].class_counts()}, top-up "
             f"{sp[k]['n_topup']} images" for k in cfg["rain_counts"]) + ".",
         "- Top-up arms fill the rain class up to the shine training count (the shine photos stay in the shine class): "
         "`real_copies` repeats the few real rain photos (shuffled per seed; re-balancing without new content); "
         "`classical_randomrain` is albumentations `RandomRain(p=1)` (defaults) drawn at "
         f"{cfg['rain_src_size']} px on shine training photos and resized to {cfg['size']} px; `translated` is the "
         "CycleGAN shine->rain translation of the **same** shine photos (drawn per seed). The top-up is appended "
         "with an is-synthetic flag (`MixedDataset` has no one-class top-up to a set count).",
         f"- Translators, **retrained for every seed** and rain count: CycleGAN shine <-> rain on the "
         f"{len(d['shine_train'])} shine training photos and only the allowed rain training photos (8 or 21), "
         f"{tr['steps']} steps of batch {tr['batch_size']}, ResNet generator ngf {tr['ngf']} / {tr['n_blocks']} "
         f"blocks, PatchGAN ndf {tr['ndf']} / n_layers {tr['n_layers']}, LSGAN, lambda_cycle 10, identity 0.5. The "
         "intervals include translator variance. CycleGAN is the translator of this study because at equal CPU "
         "time it is by far the most rain-like of the library's unpaired translators (`translation_quality.md`: "
         "P(rain) 1.00 vs FastCUT 0.36 and the Laplacian-pyramid translators 0.10 or less in a domain encoder); the "
         "content-keeping translators keep the shine photo's look and add little rain.",
         f"- `target_oracle`: all {sp['all']['train'].class_counts()['rain']} non-validation rain training photos "
         "(not a method: the ceiling of more real rain), same validation as k=25.",
         f"- Classifier: SmallCNN width {clf['width']}, AdamW lr {clf['lr']}, batch {clf['batch_size']}, cosine "
         f"schedule over {clf['max_steps']} steps, validation balanced accuracy every {clf['eval_every']} steps, "
         f"early stopping after {clf['patience']} evaluations without improvement; the val set holds 2 or 4 rain "
         "photos, so selection is coarse.",
         "- Arm names vs the earlier `study_domain.py`: `rain<k>/baseline` -> `rain<k>/source_only`, "
         "`rain<k>/+oversample` -> `rain<k>/real_copies`, `rain<k>/+RandomRain` -> `rain<k>/classical_randomrain`, "
         "`rain<k>/+CycleGAN` -> `rain<k>/translated`, `all_rain/reference` -> `target_oracle`. There one "
         "translator per rain count (400 steps) served all seeds.",
         f"- Seeds {sorted(per_seed)}; 95% Student-t intervals; differences paired by seed (two-sided paired t-test).",
         "", "## Results", ""]
    for k, c in comps.items():
        p = f"rain{k}/"
        L += [f"### rain = {k} allowed photos", "", "Test balanced accuracy:", "", markdown_table(c[m]), "",
              "Test rain recall:", "", markdown_table(c["test_rain_recall"]), "",
              *C.diff_table(results, [(p + "translated", p + "real_copies"), (p + "translated",
                                                                              p + "classical_randomrain"),
                                      (p + "translated_structure", p + "classical_randomrain"),
                                      (p + "translated_structure", p + "translated"),
                                      (p + "real_copies", p + "source_only")], m), "", "Reading:", "",
              *(f"- {verdict_of(results, a, r, m)}." for a, r in
                ((p + "translated", p + "source_only"), (p + "translated", p + "real_copies"),
                 (p + "translated", p + "classical_randomrain"), (p + "real_copies", p + "source_only"))),
              f"- Rain recall (the issue's target: at least +10 points over RandomRain with the interval above 0): "
              f"{verdict_of(results, p + 'translated', p + 'classical_randomrain', 'test_rain_recall')}; "
              + _target_met(results, p, 0.10) + ".",
              f"- With the structure term (`translated_structure`): "
              f"{verdict_of(results, p + 'translated_structure', p + 'classical_randomrain', 'test_rain_recall')}; "
              + _target_met(results, p, 0.10, "translated_structure") + ".", ""]
    L += [f"![weather]({st.prefix.name}.png)", "", "Examples (shine training photos; RandomRain; CycleGAN per rain "
          "count, first seed; real allowed rain photos):", "", f"![weather examples]({st.prefix.name}_examples.png)",
          "", *C.run_section(st, results, translators)]
    st.out(".md").write_text("\n".join(L))
    rows = [r for c in comps.values() for r in c[m]["summary"] if r["arm"] != "target_oracle"]
    rows += [r for r in next(iter(comps.values()))[m]["summary"] if r["arm"] == "target_oracle"] if comps else []
    bar_chart(rows, "test balanced accuracy", st.out(".png"),
              title=f"MWD weather: test balanced accuracy, mean and 95% CI over {len(per_seed)} seeds")
    out = {"study": "weather", "quick": st.quick, "seeds": sorted(per_seed), "config": cfg, "arms_seeds": n,
           "comparisons": {f"rain{k}": c for k, c in comps.items()}, "old_arm_names": OLD_NAMES,
           "translators": translators, "machine": st.meta, "wall_seconds_this_invocation": round(st.wall(), 1),
           "headline": recs}
    H.write_json(st.out(".json"), out)
    return out


def main(argv=None) -> int:
    return C.run_study("weather", __doc__, argv, FULL, QUICK, load, lambda d: (
        f"train {d['full'].class_counts()}, test {d['test'].class_counts()}, shine train {len(d['shine_train'])}"),
        run_seed, report)


if __name__ == "__main__":
    raise SystemExit(main())
