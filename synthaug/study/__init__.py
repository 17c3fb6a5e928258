"""Does synthetic data help on *my* data? The evidence protocol as one engine: every choice on validation, the best
classical augmentation as the reference, a count-matched real-copy control, a generator retrained per seed, paired
intervals, resumable per-arm caching stamped with the code version, and a report with a plain verdict.

* :mod:`.data` -- :func:`load_study_data` / :class:`StudyData`: the splits, read and checked up front
* :mod:`.engine` -- :func:`run` / :class:`StudyConfig`: the arms per seed, cached and resumed
* :mod:`.report` -- the statistics, :func:`verdict` (one wording rule) and the Markdown / JSON / PNG report
* :mod:`.cache` -- :class:`ResultCache`: results keyed by their full configuration, with their code version

From the command line: ``synthaug study --data <folder> [--budget quick] [--seeds 5] [--out study_out]``.
"""

import importlib

# Loaded on first use (PEP 562), so ``from synthaug.study.cache import ResultCache`` does not pull in the data
# loaders (and torchvision, about 2 s per process) that ``load_study_data`` needs.
_WHERE = {"ResultCache": "cache", "code_version": "cache", "config_hash": "cache", "version_label": "cache",
          "StudyData": "data", "load_study_data": "data",
          "BUDGETS": "engine", "StudyConfig": "engine", "plan_arms": "engine", "run": "engine",
          "chosen_kind": "report", "chosen_on_validation": "report", "direction": "report", "fmt_diff": "report",
          "fmt_interval": "report", "verdict": "report"}

__all__ = ["run", "StudyConfig", "BUDGETS", "plan_arms", "chosen_on_validation", "chosen_kind", "direction",
           "StudyData", "load_study_data", "verdict", "fmt_interval", "fmt_diff", "ResultCache", "code_version",
           "config_hash", "version_label"]


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
