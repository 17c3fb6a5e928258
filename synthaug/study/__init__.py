"""Does synthetic data help on *my* data? The evidence protocol as one engine: every choice on validation, the best
classical augmentation as the reference, a count-matched real-copy control, a generator retrained per seed, paired
intervals, resumable per-arm caching stamped with the code version, and a report with a plain verdict.

* :mod:`.data` -- :func:`load_study_data` / :class:`StudyData`: the splits, read and checked up front
* :mod:`.engine` -- :func:`run` / :class:`StudyConfig`: the arms per seed, cached and resumed
* :mod:`.report` -- the statistics, :func:`verdict` (one wording rule) and the Markdown / JSON / PNG report
* :mod:`.cache` -- :class:`ResultCache`: results keyed by their full configuration, with their code version

From the command line: ``synthaug study --data <folder> [--budget quick] [--seeds 5] [--out study_out]``.
"""

from .cache import ResultCache, code_version, config_hash, version_label
from .data import StudyData, load_study_data
from .engine import BUDGETS, StudyConfig, plan_arms, run
from .report import chosen_kind, chosen_on_validation, direction, fmt_diff, fmt_interval, verdict

__all__ = ["run", "StudyConfig", "BUDGETS", "plan_arms", "chosen_on_validation", "chosen_kind", "direction",
           "StudyData", "load_study_data", "verdict", "fmt_interval", "fmt_diff", "ResultCache", "code_version",
           "config_hash", "version_label"]
