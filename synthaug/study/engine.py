"""The study engine: does synthetic data make a classifier better on this data than real data alone, than the best
classical augmentation and than the same number of real copies? Every choice on validation, every seed retraining
its generator, paired intervals, every arm cached as soon as it is done.

Per seed, on :class:`~synthaug.study.data.StudyData`:

* ``real_only``; ``classical_<kind>`` for each classical kind (the best by mean validation score is the reference);
* with a generator (``cgan``, trained on this seed's run on the training split only): ``synthetic@<share>`` for each
  share of the training set, ``synthetic_balance`` (every class topped up to the largest; imbalanced data only),
  ``synthetic@<smallest share>+best_classical`` (the classical kind with this seed's better validation score), and
  the count-matched controls ``real_copies@<share>`` / ``real_copies_balance``; ``synthetic`` is derived: per seed,
  the share among 0 (= ``real_only``) and the shares with the best validation score, nothing retrained;
* with an unlabelled pool: ``pseudo_label`` (self-training on the pool);
* with a target domain: a translator (``fastcut``) from the training images to the target pool, and
  ``translated`` (the translated training set alone) and ``source+translated`` (mixed at share 0.5), both selected
  on the validation split translated by the same translator (no target label is ever used).

Results live under ``out/cache/arms/<hash>.json`` (the hash of the full configuration: data fingerprints, seed,
classifier, arm, generator), models under ``out/models/``; a killed study loses at most the arm in progress (a
generator resumes from its checkpoint), and a rerun of the same command reports without training.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..checks import check_choice, check_int, check_probability
from ..io import lock_folder
from ..utils import cpu_model, progress_bar
from .cache import ResultCache, check_versions, code_version, config_hash, write_json
from .data import StudyData, fingerprint, load_study_data
from .report import analyse, chosen_kind, write_report

__all__ = ["StudyConfig", "BUDGETS", "run", "plan_arms", "ENGINE_VERSION"]

ENGINE_VERSION = 1  # bump when a change of code (not of settings) must invalidate cached results
METRICS = ("auc", "accuracy", "balanced_accuracy")
#: Step budgets: generator and translator steps, and the classifier's settings over ``TRAIN_DEFAULTS``.
BUDGETS = {
    "quick": {"generator_steps": 300, "translator_steps": 300,
              "classifier": {"max_steps": 400, "patience": 6}},
    "standard": {"generator_steps": 1500, "translator_steps": 2000,
                 "classifier": {"max_steps": 2000, "patience": 20}},
}


@dataclass
class StudyConfig:
    """What a study runs. ``generator``: the class-conditional recipe (``"cgan"``) or None (no synthetic arms);
    ``translator``: the unpaired recipe used when the data has a target domain; ``seeds``: a count (0..n-1) or a
    list; ``budget``: ``"quick"``, ``"standard"`` or a dict like :data:`BUDGETS`' entries; ``classical``: the
    classical kinds tried (the best on validation is the reference); ``shares``: synthetic shares of the training
    set; ``metric``: the test metric reported and the validation metric every choice uses; ``versions``: what to do
    with cached results of another code version (``refuse``, ``mix``, ``rerun``)."""

    generator: str | None = "cgan"
    translator: str = "fastcut"
    seeds: int | list = 5
    budget: str | dict = "standard"
    classical: tuple = ("flips_shifts", "randaugment")
    shares: tuple = (0.25, 0.5)
    metric: str = "auc"
    arch: str = "small_cnn"
    pseudo_label_threshold: float = 0.9
    versions: str = "refuse"
    progress: bool | None = True

    def __post_init__(self):
        from ..train import list_recipes
        from ..train.classifier import CLASSICAL_KINDS

        if self.generator is not None:
            check_choice("generator", self.generator, ("cgan",))
        check_choice("translator", self.translator, [r for r in list_recipes() if r in ("fastcut", "cut",
                                                                                        "cyclegan")])
        if isinstance(self.seeds, bool):
            raise TypeError(f"seeds: expected a number of seeds or a list of ints, found {self.seeds!r}")
        seeds = list(range(check_int("seeds", self.seeds, 2))) if isinstance(self.seeds, int) else list(self.seeds)
        if len(seeds) < 2 or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) and s >= 0 for s in seeds):
            raise ValueError(f"seeds: expected at least 2 distinct ints >= 0 (paired intervals need 2), found "
                             f"{self.seeds!r}")
        self.seeds = seeds
        if isinstance(self.budget, str):
            check_choice("budget", self.budget, tuple(BUDGETS))
        elif not (isinstance(self.budget, dict) and {"generator_steps", "classifier"} <= set(self.budget)):
            raise ValueError(f"budget: expected one of {list(BUDGETS)} or a dict with generator_steps, "
                             f"translator_steps and classifier, found {self.budget!r}")
        self.classical = tuple(self.classical)
        for k in self.classical:
            check_choice("classical", k, CLASSICAL_KINDS)
        self.shares = tuple(sorted(float(s) for s in self.shares))
        if not self.shares or not all(0 < s < 1 for s in self.shares):
            raise ValueError(f"shares: expected synthetic shares in (0, 1), found {self.shares!r}")
        check_choice("metric", self.metric, METRICS)
        check_probability("pseudo_label_threshold", self.pseudo_label_threshold, zero=False)
        check_choice("versions", self.versions, ("refuse", "mix", "rerun"))

    @property
    def steps(self) -> dict:
        b = BUDGETS[self.budget] if isinstance(self.budget, str) else self.budget
        return {"generator_steps": int(b["generator_steps"]),
                "translator_steps": int(b.get("translator_steps", b["generator_steps"])),
                "classifier": dict(b["classifier"])}

    def classifier(self) -> dict:
        from ..eval.downstream import TRAIN_DEFAULTS

        return {**TRAIN_DEFAULTS, "arch": self.arch, "select_on": self.metric, **self.steps["classifier"]}


# --- arms -----------------------------------------------------------------------------------------------------
def plan_arms(data: StudyData, cfg: StudyConfig) -> dict[str, dict]:
    """Every trained arm of a seed: ``{name: spec}`` with ``extra`` (None, ``generator``, ``copies``, ``pseudo``,
    ``translator``), ``ratio`` (share, ``"balance"`` or 1.0 for translations alone) and ``classical`` (a kind,
    ``"best"`` or None)."""
    specs = {"real_only": dict(extra=None, ratio=0.0, classical=None)}
    for k in cfg.classical:
        specs[f"classical_{k}"] = dict(extra=None, ratio=0.0, classical=k)
    if cfg.generator is not None:
        counts = list(data.train.class_counts().values())
        for r in cfg.shares:
            specs[f"synthetic@{r:g}"] = dict(extra="generator", ratio=r, classical=None)
        if min(counts) < max(counts):
            specs["synthetic_balance"] = dict(extra="generator", ratio="balance", classical=None)
        if cfg.classical:
            specs[f"synthetic@{cfg.shares[0]:g}+best_classical"] = dict(extra="generator", ratio=cfg.shares[0],
                                                                       classical="best")
        for r in cfg.shares:
            specs[f"real_copies@{r:g}"] = dict(extra="copies", ratio=r, classical=None)
        if min(counts) < max(counts):
            specs["real_copies_balance"] = dict(extra="copies", ratio="balance", classical=None)
    if data.unlabelled is not None:
        specs["pseudo_label"] = dict(extra="pseudo", ratio=0.0, classical=None,
                                     threshold=cfg.pseudo_label_threshold)
    if data.target is not None:
        specs["translated"] = dict(extra="translator", ratio=1.0, classical=None)
        specs["source+translated"] = dict(extra="translator", ratio=0.5, classical=None)
    return specs


# --- the run ---------------------------------------------------------------------------------------------------
@dataclass
class _Seed:
    """Lazily built models and pools of one seed (a cached arm never builds them)."""

    seed: int
    built: dict = field(default_factory=dict)


def _smoke() -> dict:
    """``{"SYNTHAUG_QUICK": cap}`` when the smoke-test cap is on (its results must never pass for real ones)."""
    cap = os.environ.get("SYNTHAUG_QUICK", "").strip()
    return {"SYNTHAUG_QUICK": cap} if cap and cap != "0" else {}


class _Study:
    def __init__(self, data: StudyData, cfg: StudyConfig, out: Path, log):
        self.data, self.cfg, self.out, self.log = data, cfg, out, log
        self.cache = ResultCache(out / "cache", out / "models")
        self.clf = cfg.classifier()
        self.fp = {p: fingerprint(getattr(data, p)) for p in ("train", "val", "test", "unlabelled", "target")}
        self.specs = plan_arms(data, cfg)

    # cache keys
    def generator_key(self, seed: int) -> dict:
        from ..train.cgan import CGANConfig

        settings = {k: v for k, v in asdict(CGANConfig()).items() if v is not None}
        return {"engine": ENGINE_VERSION, "train": self.fp["train"], "seed": seed, "recipe": self.cfg.generator,
                "steps": self.cfg.steps["generator_steps"], "settings": settings, **_smoke()}

    def translator_key(self, seed: int) -> dict:
        from ..train import get_recipe

        settings = {k: v for k, v in asdict(get_recipe(self.cfg.translator).config_class()).items()
                    if v is not None and k != "steps"}
        return {"engine": ENGINE_VERSION, "train": self.fp["train"], "target": self.fp["target"], "seed": seed,
                "recipe": self.cfg.translator, "steps": self.cfg.steps["translator_steps"], "settings": settings,
                **_smoke()}

    def arm_key(self, seed: int, name: str, spec: dict) -> dict:
        model = (config_hash(self.generator_key(seed)) if spec["extra"] == "generator" else
                 config_hash(self.translator_key(seed)) if spec["extra"] == "translator" else None)
        data = {p: self.fp[p] for p in ("train", "val", "test")}
        if spec["extra"] == "pseudo":
            data["unlabelled"] = self.fp["unlabelled"]
        return {"engine": ENGINE_VERSION, "data": data, "seed": seed, "classifier": self.clf, "arm": name,
                "spec": spec, "model": model, **_smoke()}

    def resolved(self, seed: int, spec: dict, done: dict) -> dict | None:
        """``spec`` with ``classical="best"`` replaced by this seed's better classical kind on validation (None
        while a classical arm of the seed is not done)."""
        if spec["classical"] != "best":
            return spec
        rows = {k: done.get(f"classical_{k}") for k in self.cfg.classical}
        if any(r is None for r in rows.values()):
            return None
        return {**spec, "classical": chosen_kind(rows, self.clf["select_on"])}

    def todo(self) -> dict:
        """What is not cached yet: ``{"arms": n, "generators": n, "translators": n}`` (an arm that depends on
        classical arms not yet run counts as to do)."""
        n_arms, gens, trans = 0, 0, 0
        for seed in self.cfg.seeds:
            done = {a: self.cache.get("arms", self.arm_key(seed, a, s)) for a, s in self.specs.items()
                    if s["classical"] != "best"}
            missing = []
            for a, s in self.specs.items():
                r = self.resolved(seed, s, done)
                if r is None or not self.cache.has("arms", self.arm_key(seed, a, r)):
                    missing.append(s["extra"])
            n_arms += len(missing)
            gens += "generator" in missing and not self.model_ready("generator", seed)
            trans += "translator" in missing and not self.model_ready("translator", seed)
        return {"arms": n_arms, "generators": gens, "translators": trans}

    def model_ready(self, which: str, seed: int) -> bool:
        key = self.generator_key(seed) if which == "generator" else self.translator_key(seed)
        kind = "generators" if which == "generator" else "translators"
        return (self.cache.models_root / kind / config_hash(key) / "model" / "config.json").is_file()

    # models and pools
    def _train(self, kind: str, key: dict, make_recipe, steps: int):
        from ..train import Trainer

        d = self.cache.directory(kind, key)
        if not (d / "model" / "config.json").is_file():
            t0 = time.perf_counter()
            res = Trainer(make_recipe(), d, steps, log_every=max(1, steps // 20), sample_every=steps,
                          ckpt_every=max(1, steps // 4), progress=False).fit()
            if res.interrupted or res.model_dir is None:
                raise KeyboardInterrupt(f"{kind[:-1]} training interrupted at step {res.step}; rerun to resume")
            write_json(d / "training.json", {"steps": res.step, "seconds": round(time.perf_counter() - t0, 1),
                                             "last_losses": res.last_metrics})
        return d / "model"

    def generator(self, seed: int):
        from ..models import GeneratorModel
        from ..train import CGANRecipe
        from ..train.cgan import CGANConfig

        key = self.generator_key(seed)
        steps = key["steps"]
        self.log(f"seed {seed}: cGAN, {steps} steps on {len(self.data.train)} training images")
        path = self._train("generators", key, lambda: CGANRecipe(self.data.train, CGANConfig(), device="cpu",
                                                                 seed=seed, progress=False), steps)
        return GeneratorModel.from_pretrained(path, device="cpu")

    def translator(self, seed: int):
        from ..models import TranslatorModel
        from ..train import get_recipe

        key = self.translator_key(seed)
        recipe_cls = get_recipe(self.cfg.translator)
        steps = key["steps"]
        self.log(f"seed {seed}: {self.cfg.translator} translator, {steps} steps, {len(self.data.train)} training "
                 f"-> {len(self.data.target)} target images")
        cfg = recipe_cls.config_class(steps=steps)
        path = self._train("translators", key, lambda: recipe_cls(self.data.train, self.data.target, cfg,
                                                                  device="cpu", seed=seed), steps)
        return TranslatorModel.from_pretrained(path, device="cpu")

    def extra_counts(self) -> np.ndarray:
        from ..augment.plan import synthetic_counts

        y, k = self.data.train.labels.numpy(), self.data.train.num_classes
        need = [synthetic_counts(y, k, ratio=r) for r in self.cfg.shares]
        if "synthetic_balance" in self.specs:
            need.append(synthetic_counts(y, k, balance=True))
        return np.max(np.stack(need), axis=0)

    def pool(self, st: _Seed, extra: str):
        """The extra images an arm mixes in (built once per seed)."""
        if extra in st.built:
            return st.built[extra]
        from ..augment import SyntheticDataset
        from ..eval.downstream import real_copies

        if extra == "generator":
            gen = self.generator(st.seed)
            value = SyntheticDataset(gen, per_class=dict(enumerate(self.extra_counts().tolist())),
                                     seed=10_000 + st.seed)
        elif extra == "copies":
            value = real_copies(self.data.train, self.extra_counts())
        elif extra == "translator":
            from ..data import ImageDataset

            model = self.translator(st.seed)
            tr = model.translate(self.data.train.images, "A2B", seed=st.seed, progress=False)
            va = model.translate(self.data.val.images, "A2B", seed=st.seed + 10_000, progress=False)
            names = self.data.class_names
            value = (ImageDataset(tr, self.data.train.labels, names, name="translated train"),
                     ImageDataset(va, self.data.val.labels, names, name="translated val"))
        else:
            raise ValueError(f"extra: expected generator, copies or translator, found {extra!r}")
        st.built[extra] = value
        return value

    def run_arm(self, st: _Seed, name: str, spec: dict) -> dict:
        from ..eval.downstream import pseudo_label_arm, run_arm

        d, seed, clf = self.data, st.seed, {k: v for k, v in self.clf.items()}
        if spec["extra"] == "pseudo":
            return pseudo_label_arm(name, d.train, d.unlabelled, d.val, d.test, threshold=spec["threshold"],
                                    seed=seed, device="cpu", **clf)
        if spec["extra"] == "translator":
            tr, va = self.pool(st, "translator")
            if spec["ratio"] == 1.0:
                return run_arm(name, tr, va, d.test, seed=seed, device="cpu", **clf)
            return run_arm(name, d.train, va, d.test, synthetic=tr, ratio=spec["ratio"], seed=seed, device="cpu",
                           **clf)
        synthetic = None if spec["extra"] is None else self.pool(st, spec["extra"])
        return run_arm(name, d.train, d.val, d.test, synthetic=synthetic, ratio=spec["ratio"],
                       classical=spec["classical"], seed=seed, device="cpu", **clf)

    def run_seed(self, seed: int, bar) -> dict[str, dict]:
        st, done = _Seed(seed), {}
        metric = f"test_{self.cfg.metric}"
        for name, spec in self.specs.items():  # classical arms come before the arms that use the best of them
            spec = self.resolved(seed, spec, done)
            key = self.arm_key(seed, name, spec)
            cached = self.cache.has("arms", key)
            bar.set_postfix_str(f"seed {seed}, {name}")
            r = self.cache.result("arms", key, lambda n=name, s=spec: self.run_arm(st, n, s))
            if spec is not self.specs[name]:
                r["classical_chosen_on_val"] = spec["classical"]
            done[name] = r
            how = "cached" if cached else f"{r.get('seconds', 0):.0f} s"
            self.log(f"seed {seed} {name:32s} {metric} {r[metric]:.4f} (val {r['val_score']:.4f}, step "
                     f"{r['best_step']}/{r['max_steps']}, {how})")
            if not cached:
                bar.update(1)
        if seed == self.cfg.seeds[0]:
            self.examples(st)
        return done

    def examples(self, st: _Seed) -> None:
        """A grid of real training images next to this seed's synthetic / translated ones (when built or on disk)."""
        import torch

        from ..utils import save_grid

        path = self.out / "examples.png"
        rows, labels = [], []
        d = self.data
        if self.cfg.generator is not None and ("generator" in st.built or self.model_ready("generator", st.seed)):
            gen = self.pool(st, "generator")
            for k, c in enumerate(d.class_names[:6]):
                rows += [d.train.images[d.train.labels == k][:8], gen.images[gen.labels == k][:8]]
                labels += [f"real {c}", f"synthetic {c}"]
        if d.target is not None and ("translator" in st.built or self.model_ready("translator", st.seed)):
            tr, _ = self.pool(st, "translator")
            rows += [d.train.images[:8], tr.images[:8], d.target.images[:8]]
            labels += ["source", "translated", "target"]
        if rows and all(len(r) == 8 for r in rows):
            save_grid(torch.cat(rows), path, nrow=8, row_labels=labels, title=f"seed {st.seed}")


def _estimate(study: _Study, todo: dict) -> dict:
    """Seconds per classifier / generator / translator step, measured on a few steps of this data."""
    from ..train.classifier import train_classifier

    out = {}
    clf = {**study.clf, "max_steps": 12, "eval_every": 12, "patience": None}
    t0 = time.perf_counter()
    train_classifier(study.data.train, study.data.val, seed=0, device="cpu",
                     num_classes=study.data.train.num_classes, **clf)
    out["classifier_step_s"] = (time.perf_counter() - t0) / 12
    with tempfile.TemporaryDirectory() as tmp:
        if todo["generators"]:
            from ..train import CGANRecipe, Trainer
            from ..train.cgan import CGANConfig

            t0 = time.perf_counter()
            Trainer(CGANRecipe(study.data.train, CGANConfig(), device="cpu", seed=0, progress=False),
                    Path(tmp) / "g", 6, log_every=6, sample_every=1000, ckpt_every=1000, progress=False).fit()
            out["generator_step_s"] = (time.perf_counter() - t0) / 6
        if todo["translators"]:
            from ..train import Trainer, get_recipe

            cls = get_recipe(study.cfg.translator)
            t0 = time.perf_counter()
            Trainer(cls(study.data.train, study.data.target, cls.config_class(steps=4), device="cpu", seed=0),
                    Path(tmp) / "t", 4, log_every=4, sample_every=1000, ckpt_every=1000, progress=False).fit()
            out["translator_step_s"] = (time.perf_counter() - t0) / 4
    steps = study.cfg.steps
    clf_max = steps["classifier"]["max_steps"]
    out["seconds_at_most"] = (todo["arms"] * clf_max * out["classifier_step_s"]
                              + todo["generators"] * steps["generator_steps"] * out.get("generator_step_s", 0)
                              + todo["translators"] * steps["translator_steps"] * out.get("translator_step_s", 0))
    return out


def run(data, *, out="study_out", config: StudyConfig | None = None, val=None, test=None, unlabelled=None,
        target=None, size: int | None = None, channels: int | None = None, split_seed: int = 0,
        command: str | None = None, log=None, **settings) -> dict:
    """Run (or resume) a study and write its report: ``out/report.md``, ``report.json``, ``report.png``.

    ``data``: a :class:`~synthaug.study.data.StudyData`, or what :func:`~synthaug.study.data.load_study_data`
    reads (a class-folder tree, an ``.npz``, ``"breastmnist"``, an ImageDataset) with ``val``, ``test``,
    ``unlabelled``, ``target``, ``size``, ``channels`` and ``split_seed``. ``config`` or ``settings``: a
    :class:`StudyConfig` or its fields (``seeds=5, budget="quick", generator="cgan"`` ...). ``log``: a
    callable taking a line (default: print). Returns the report's dict (``verdicts`` holds the plain-language
    answers, ``paths`` the files written)."""
    log = log or (lambda line: print(line, flush=True))
    cfg = config if config is not None else StudyConfig(**settings)
    if config is not None and settings:
        raise TypeError(f"settings: expected either config= or StudyConfig fields, found both (fields "
                        f"{sorted(settings)})")
    if not isinstance(data, StudyData):
        data = load_study_data(data, val=val, test=test, unlabelled=unlabelled, target=target, size=size,
                               channels=channels, split_seed=split_seed)
    out = Path(out).expanduser()
    lock = lock_folder(out, f"out: {str(out)!r} is in use by another study; wait for it to finish (or stop it), "
                            "or use another folder")
    t_start = time.perf_counter()
    try:
        study = _Study(data, cfg, out, lambda m: log(f"[study {time.perf_counter() - t_start:6.0f} s] {m}"))
        versions = check_versions(study.cache, cfg.versions, kinds=["arms"])
        write_json(out / "data.json", data.describe())
        todo = study.todo()
        estimate = None
        if todo["arms"]:
            estimate = _estimate(study, todo)
            log(f"To run: {todo['arms']} classifier run(s), {todo['generators']} generator(s), "
                f"{todo['translators']} translator(s) over {len(cfg.seeds)} seeds "
                f"(the rest is cached in {out / 'cache'}). Estimated time: at most "
                f"{estimate['seconds_at_most'] / 60:.1f} min on this machine (from a {12}-step pilot; early "
                f"stopping usually ends classifier runs sooner). Stop it any time: a rerun resumes.")
        else:
            log(f"Every arm is cached in {out / 'cache'}: reporting without training.")
        per_seed = {}
        with progress_bar(todo["arms"], "study arms", unit="arm", enabled=cfg.progress) as bar:
            for seed in cfg.seeds:
                per_seed[seed] = study.run_seed(seed, bar)
        result = analyse(per_seed, cfg, study.specs)
        meta = _meta(command, time.perf_counter() - t_start, versions, estimate, todo)
        return write_report(out, result, data, cfg, meta)
    finally:
        if lock is not None:
            os.close(lock)


def _meta(command, wall_s, versions, estimate, todo) -> dict:
    import platform

    import torch

    return {"command": command or " ".join(["python"] + sys.argv), "wall_seconds": round(wall_s, 1),
            "cpu": cpu_model(), "nproc": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "code_version": code_version(),
            "cached_versions": versions, "estimate": estimate, "trained_this_run": todo, "smoke": _smoke()}
