"""Every committed downstream study report's headline records rebuild from the committed result cache with no
training at all, and equal what ``benchmarks/results/headline.json`` (and so the README) says.

Each study module runs as its full command would, with its reports and headline file redirected to a temporary
copy of ``benchmarks/results`` (the committed cache is read in place) and with every way of training -- the
Trainer and every classifier -- replaced by a function that fails the test."""

from __future__ import annotations

import importlib
import json
import math
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
MEDICAL = ("breast", "pneumonia5", "pneumonia10", "pneumonia100", "pneumonia5_long")
CASES = ([("medical", ["--study", s], [s]) for s in MEDICAL]
         + [("medical", ["--study", s, "--arch", "resnet18_small"], [f"{s}_resnet18_small"])
            for s in ("breast", "pneumonia5")]
         + [("few_labels", ["--study", s], [s]) for s in ("pneumonia_labels1", "pneumonia_labels5", "breast_labels25")]
         + [("digits", [], ["digits"]), ("driving", [], ["driving"]), ("weather", [], ["weather"])])


def _committed(study: str) -> list[dict]:
    return [r for r in json.loads((RESULTS / "headline.json").read_text())["records"] if r["study"] == study]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.slow
@pytest.mark.parametrize("module, args, studies", CASES, ids=[" ".join([m, *a]) for m, a, _ in CASES])
def test_headline_records_rebuild_from_the_committed_cache_without_training(module, args, studies, tmp_path,
                                                                           monkeypatch):
    from benchmarks import harness as H

    if not (H.DATA / "medmnist").is_dir():
        pytest.skip("needs ../shared/data")
    if not all(_committed(s) for s in studies):
        pytest.skip(f"no committed headline records for {studies}")
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results, ignore=shutil.ignore_patterns("cache"))
    monkeypatch.setattr(H, "RESULTS", results)
    monkeypatch.setattr(H, "HEADLINE", results / "headline.json")

    def no_training(*a, **k):
        raise AssertionError("a report of committed results tried to train something: a cache key changed")

    main = importlib.import_module(f"benchmarks.studies.{module}").main
    # every module that binds train_classifier, imported before anything is patched (an import during the patching
    # would bind the stand-in for good)
    mods = [importlib.import_module(m) for m in ("synthaug.train.classifier", "synthaug.train.engine",
                                                 "synthaug.eval.downstream", "synthaug.eval.features",
                                                 "synthaug.eval.classifier", "synthaug.train.helper_classifier")]
    monkeypatch.setattr(mods[1].Trainer, "fit", no_training)
    for m in mods:
        if hasattr(m, "train_classifier"):
            monkeypatch.setattr(m, "train_classifier", no_training)
    assert main([*args, "--threads", "1"]) == 0
    rebuilt = json.loads((results / "headline.json").read_text())["records"]
    for study in studies:
        mine = [r for r in rebuilt if r["study"] == study]
        assert _same(mine, _committed(study)), study
