"""The one study harness: config-hashed caching and resume, machine facts, JSON / Markdown / PNG writers,
CI formatting and the headline records the README tables are generated from.

A study module (``benchmarks/studies/<name>.py``) describes its data, its arms and its report; this module
does the bookkeeping. Every cached artefact (a trained generator, an arm's result for one seed) lives under a
name derived from a hash of its *full* configuration, so a changed setting can never reuse a stale result.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from synthaug.utils import cpu_model  # noqa: E402,F401
from synthaug.study.cache import ResultCache, config_hash, read_json, to_jsonable, write_json  # noqa: E402,F401
from synthaug.study.report import RECORD_KEYS as HEADLINE_KEYS  # noqa: E402,F401
from synthaug.study.report import fmt_ci, fmt_diff, fmt_interval, headline_record, record  # noqa: E402,F401

RESULTS = ROOT / "benchmarks" / "results"
RESULT_CACHE = RESULTS / "cache"  # per (study, seed, arm) results: small JSON, committed so studies resume
RUNS = ROOT / "runs" / "studies"  # trained generators and translators: large, not committed
QUICK_DIR = ROOT / "runs" / "studies_quick"  # every --quick run writes here (or to --out / --runs-dir)
DATA = ROOT.parent / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
HEADLINE = RESULTS / "headline.json"
# the variables that limit the instruction sets of PyTorch's, oneDNN's and MKL's kernels to AVX2 (an emulation of an
# AVX2-only CPU's kernels, not of its clock or caches); ISA_ENV_SET: those set in this process, for report commands
AVX2_LIMITS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
ISA_ENV_SET = [f"{k}={os.environ[k]}" for k in AVX2_LIMITS if os.environ.get(k)]


# --- machine and files -------------------------------------------------------------------------------------
def machine() -> dict:
    """Facts every report records: CPU, cores, torch and its threads, Python, load, commit."""
    import torch

    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"nproc": os.cpu_count(), "cpu": cpu_model(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "platform": platform.platform(), "load_average": [round(v, 2) for v in os.getloadavg()],
            "git_commit": commit, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}


def add_quick_arguments(p: argparse.ArgumentParser) -> None:
    """``--quick`` (a smoke test of a few steps, never written to ``benchmarks/results``) and ``--out DIR``."""
    p.add_argument("--quick", action="store_true", help=f"smoke test: a few steps, written to {QUICK_DIR}")
    p.add_argument("--out", type=Path, default=None, help="report folder (default benchmarks/results, or the "
                                                          "quick folder with --quick)")


def report_dir(args) -> Path:
    """Where a benchmark script writes: ``--out``, else the quick folder or ``benchmarks/results``."""
    d = args.out or (QUICK_DIR if args.quick else RESULTS)
    d.mkdir(parents=True, exist_ok=True)
    return d


def machine_line(m: dict, extra: str = "") -> str:
    """The one "Machine: ..." line of every report, from :func:`machine`'s dict (or the keys of older reports);
    ``extra`` is appended (e.g. the load before/after a timing run)."""
    cpus, cpu = m.get("nproc", m.get("cpus")), m.get("cpu", m.get("cpu_model", "unknown CPU"))
    threads = f" with {m['torch_threads']} thread(s)" if m.get("torch_threads") else ""
    load = m.get("load_average", m.get("load_average_at_start"))
    commit = (m.get("git_commit") or "")[:10]
    return (f"Machine: {cpus} CPUs ({cpu}), torch {m.get('torch', '?')}{threads}, Python {m.get('python', '?')}"
            + (f", load average at start {load} (shared cores: times are indicative)" if load else "")
            + (f"; commit {commit}" if commit else "") + (f"; {extra}" if extra else "") + ".")


def trained_cgan(cache: ResultCache, kind: str, key: dict, train, config, seed: int, steps: int, unlabelled=None):
    """The cGAN of ``key`` as ``(GeneratorModel, info)``: loaded from ``cache.directory(kind, key)/model`` or
    trained there first (``CGANRecipe`` + ``Trainer``; a killed run resumes from its checkpoint). ``info`` holds
    the steps, seconds and last losses of the training run (``{}`` for a model trained before it was recorded)."""
    from synthaug.models import GeneratorModel
    from synthaug.train import CGANRecipe, Trainer

    run_dir = cache.directory(kind, key)
    model_dir = run_dir / "model"
    if not (model_dir / "config.json").is_file():
        recipe = CGANRecipe(train, config, device="cpu", seed=seed, unlabelled=unlabelled)
        res = Trainer(recipe, run_dir, steps, log_every=50, sample_every=steps, ckpt_every=max(steps // 2, 1),
                      progress=False).fit()
        if res.interrupted or res.model_dir is None:
            raise SystemExit(f"cGAN training interrupted at step {res.step}; rerun the same command to resume")
        write_json(run_dir / "gan_info.json", {"steps": res.step, "seconds": round(res.seconds, 1),
                                               "last_losses": res.last_metrics})
    return GeneratorModel.from_pretrained(model_dir, device="cpu"), read_json(run_dir / "gan_info.json") or {}


# --- one invocation of a study -------------------------------------------------------------------------------
class Study:
    """One invocation of a study module: its command line, seeds, cache, output paths, machine facts and logger.

    Common options: ``--seeds`` (default 0-4; ``--quick``: 0 1), ``--quick`` (a few steps, everything under
    ``runs/studies_quick/`` or ``--runs-dir``, never touching headline.json), ``--threads`` (default 1),
    ``--no-headline``, ``--runs-dir``; ``studies`` adds ``--study`` (one of them or ``all``) and ``add_arguments``
    the module's own. Full runs keep per-arm results under ``benchmarks/results/cache/`` (committed, so a study
    resumes anywhere), models under ``runs/studies/``, and write ``benchmarks/results/<report_prefix><name>.*``.
    """

    def __init__(self, module: str, doc: str, argv=None, *, report_prefix: str = "", studies=None,
                 add_arguments=None):
        p = argparse.ArgumentParser(prog=f"python -m benchmarks.studies.{module}", description=doc.split("\n\n")[0])
        if studies:
            p.add_argument("--study", required=True, choices=tuple(studies) + ("all",))
        p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 3 4 (--quick: 0 1)")
        p.add_argument("--quick", action="store_true", help="smoke test: 2 seeds, a few steps, runs/studies_quick")
        p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
        p.add_argument("--no-headline", action="store_true", help="do not write benchmarks/results/headline.json")
        p.add_argument("--runs-dir", type=Path, default=None,
                       help="models (default runs/studies), or everything with --quick (runs/studies_quick)")
        if add_arguments is not None:
            add_arguments(p)
        self.args = p.parse_args(argv)
        import torch

        torch.set_num_threads(self.args.threads)
        self.name, self.quick, self.t0 = module, self.args.quick, time.perf_counter()
        self.studies = (list(studies) if self.args.study == "all" else [self.args.study]) if studies else [module]
        self.seeds = self.args.seeds or ([0, 1] if self.quick else [0, 1, 2, 3, 4])
        if self.quick:
            self.results_dir = self.args.runs_dir or QUICK_DIR
            self.cache = ResultCache(self.results_dir)
        else:
            self.results_dir = RESULTS
            self.cache = ResultCache(RESULT_CACHE, self.args.runs_dir or RUNS)
        self.report_prefix = report_prefix
        self.prefix = self.prefix_for(module)
        words = sys.argv[1:] if argv is None else [str(a) for a in argv]
        self.meta = {**machine(), "command": f"OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m benchmarks.studies.{module} "
                                             + " ".join(words)}

    def prefix_for(self, study: str) -> Path:
        """The report path without suffix, e.g. ``benchmarks/results/domain_digits``."""
        return self.results_dir / f"{self.report_prefix}{'quick_' if self.quick else ''}{study}"

    def arm(self, seed: int, base: dict, name: str, spec: dict, compute, metric: str) -> dict:
        """One arm of one seed from the study's cache (computed and saved first when missing), keyed by ``base``
        (data, seed, classifier) + its name and ``spec``, with its log line."""
        r = self.cache.result("arms", {**base, "arm": name, "spec": spec}, compute)
        self.log(f"seed {seed} {name:36s} {metric} {r[metric]:.4f} (val {r['val_score']:.4f}, step {r['best_step']}/"
                 f"{r['max_steps']}, {r.get('seconds', 0):.0f} s{', cached' if r.get('cached') else ''})")
        return r

    def log(self, msg: str) -> None:
        print(f"[{self.name} {time.perf_counter() - self.t0:6.0f} s] {msg}", flush=True)

    def out(self, suffix: str) -> Path:
        """An output file next to the report, e.g. ``out('_examples.png')``."""
        return Path(f"{self.prefix}{suffix}")

    def wall(self) -> float:
        return time.perf_counter() - self.t0

    def finish(self, records: list[dict], study: str | None = None) -> None:
        """Headline records: full runs with at least 5 seeds only."""
        if not self.quick and not self.args.no_headline and len(self.seeds) >= 5:
            update_headline(study or self.name, records)
        self.log(f"wrote {self.prefix_for(study or self.name)}.md/.json/.png; {self.wall() / 60:.1f} min")


def report_head(title: str, res: dict, smoke: str, warnings=()) -> list[str]:
    """A benchmark report's first lines: the title, for a ``--quick`` run the warning that it is a smoke run
    (``smoke`` says what was small), any ``warnings``, then the command and the machine line."""
    L = [f"# {title}", ""]
    if res["quick"]:
        L += [f"**Smoke run (--quick): {smoke} -- not a measurement.**", ""]
    for w in warnings:
        L += [f"**{w}**", ""]
    return L + [f"Command: `{res['command']}`  ",
                machine_line(res["machine"], f"total wall time {res['wall_s']:.0f} s")]


# --- formatting --------------------------------------------------------------------------------------------
def selection_line(results: dict[str, list[dict]]) -> str:
    """How often the selected step was in the last 10% of the budget (above 20% means the budget is short)."""
    rows = [r for rs in results.values() for r in rs if "best_in_last_10pct" in r]
    if not rows:
        return ""
    k = sum(bool(r["best_in_last_10pct"]) for r in rows)
    verdict = "the budget is too short" if k > 0.2 * len(rows) else "the budget is long enough"
    stopped = sum(bool(r.get("stopped_early")) for r in rows)
    return (f"Selected step in the last 10% of the step budget: {k} of {len(rows)} classifier runs "
            f"({100 * k / len(rows):.0f}%; {verdict}); {stopped} of {len(rows)} stopped early on validation.")


# --- headline records --------------------------------------------------------------------------------------
def pair_records(study: str, results: dict[str, list[dict]], metric: str, pairs, readme=(),
                 generator_arms=(), n_generator_seeds: int | None = None) -> list[dict]:
    """Headline records for ``pairs`` of (arm, reference arm or None): the arm's mean and interval over seeds and
    its paired difference to the reference (:func:`synthaug.study.report.record`). Pairs whose arms are missing are
    skipped; pairs listed in ``readme`` are flagged for the README table, in that order."""
    readme = list(readme)
    out = []
    for arm, ref in pairs:
        if not results.get(arm) or (ref is not None and not results.get(ref)):
            continue
        rec, _ = record(study, arm, ref, metric, results, n_generator_seeds if arm in generator_arms else None)
        if (arm, ref) in readme:
            rec.update(readme=True, readme_order=readme.index((arm, ref)))
        out.append(rec)
    return out


def update_headline(study: str, records: list[dict], path: Path | None = None) -> Path:
    """Replace ``study``'s records in ``headline.json`` (default :data:`HEADLINE`; other studies' records are
    kept)."""
    path = HEADLINE if path is None else path
    for r in records:
        missing = [k for k in HEADLINE_KEYS if k not in r]
        if missing:
            raise ValueError(f"headline record: expected keys {list(HEADLINE_KEYS)}, missing {missing} in {r}")
    old = read_json(path) or {"records": []}
    at = next((i for i, r in enumerate(old["records"]) if r["study"] == study), len(old["records"]))
    before = [r for r in old["records"][:at] if r["study"] != study]
    kept = before + [r for r in old["records"][at:] if r["study"] != study]
    out = {"about": "Every number the README's benchmark tables show; written by the study harness "
                    "(benchmarks/harness.py), read by benchmarks/readme_tables.py.",
           "records": before + [to_jsonable(r) for r in records] + kept[len(before):]}  # in the study's place
    write_json(path, out)  # the README's tables follow it by an explicit step: `make readme` (checked by the tests)
    return path
