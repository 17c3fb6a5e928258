"""Smoke-run every example in examples/ with --quick: it finishes without error and writes the promised files.

Each example runs as ``python examples/X.py --quick --out tmp_path/out --device cpu`` would, from a temporary working
directory, but in this test's process (``runpy.run_path`` as ``__main__`` in a fresh namespace, ``sys.argv`` and
``sys.path[0]`` set as Python sets them for a script): a fresh interpreter would spend ~5 s of each run importing
torch and the library again. Torch's thread count, the global RNG states (python, numpy, torch) and the warning
filters are restored afterwards. Examples that read ../shared/data skip when it is absent. 1-9 s each on one core.
"""

import contextlib
import io
import runpy
import sys
import warnings
from pathlib import Path

import pytest
import torch

from synthaug.utils import global_rng_kept

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# (script, needs ../shared/data, files it promises under --out)
CASES = [
    ("medical/breastmnist_end_to_end.py", False,
     ["real_vs_synthetic.png", "results.json", "cgan_quick/model/config.json"]),
    ("medical/pneumonia_topup.py", True, ["minority_real_vs_synthetic.png", "results.json"]),
    ("medical/few_labels.py", True, ["samples.png", "results.json"]),
    ("medical/monai_pipeline.py", False, ["monai_pipeline.png", "volumes/case000_0.nii.gz"]),
    ("medical/albumentations_pipeline.py", False, ["albumentations_pipeline.png"]),
    ("driving/fog_translation.py", True, ["fog_comparison.png", "pipeline_batch.png"]),
    ("driving/rain_translation.py", True, ["rain_comparison.png", "pipeline_batch.png"]),
    ("digits/mnist_to_usps.py", True, ["mnist_to_usps.png", "results.json"]),
    ("domain/mnist_to_mnistm.py", True, ["mnist_to_mnistm.png", "results.json"]),
]


def test_every_example_is_listed():
    # A module whose name starts with "_" (examples/_common.py) is glue the examples import, not an example.
    on_disk = {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.py") if not p.name.startswith("_")}
    assert on_disk == {script for script, _, _ in CASES}
    readme = (EXAMPLES / "README.md").read_text()
    assert all(script in readme for script in on_disk)


@pytest.mark.slow
@pytest.mark.parametrize("script, needs_data, outputs", CASES, ids=[c[0] for c in CASES])
def test_example_quick_run(script, needs_data, outputs, tmp_path, request, monkeypatch):
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    if needs_data:
        monkeypatch.setenv("SYNTHAUG_DATA", str(request.getfixturevalue("shared_data")))
    monkeypatch.chdir(tmp_path)
    path, out = EXAMPLES / script, tmp_path / "out"
    monkeypatch.setattr(sys, "argv", [str(path), "--quick", "--out", str(out), "--device", "cpu"])
    monkeypatch.setattr(sys, "path", [str(path.parent), *sys.path])
    stdout, threads = io.StringIO(), torch.get_num_threads()
    try:
        with global_rng_kept(), warnings.catch_warnings(), contextlib.redirect_stdout(stdout):
            runpy.run_path(str(path), run_name="__main__")
    except SystemExit as stop:
        assert stop.code in (0, None), f"{script} exited with {stop.code!r}; stdout:\n{stdout.getvalue()[-3000:]}"
    finally:
        torch.set_num_threads(threads)
    missing = [f for f in outputs if not (out / f).is_file()]
    assert not missing, f"{script} did not write {missing}; stdout:\n{stdout.getvalue()[-2000:]}"
