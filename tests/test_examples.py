"""Smoke-run every example in examples/ with --quick: exit code 0 and the promised output files.

Each example runs in a fresh subprocess (``sys.executable``) from a temporary working directory, writing into
``tmp_path/out``. Examples that read ../shared/data skip when it is absent. About 20-30 s each on 2 busy cores.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
def test_example_quick_run(script, needs_data, outputs, tmp_path, request):
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "NO_ALBUMENTATIONS_UPDATE": "1", "MPLBACKEND": "Agg"}
    if needs_data:
        env["SYNTHAUG_DATA"] = str(request.getfixturevalue("shared_data"))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), "--quick", "--out", str(out), "--device", "cpu"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    missing = [f for f in outputs if not (out / f).is_file()]
    assert not missing, f"{script} did not write {missing}; stdout:\n{proc.stdout[-2000:]}"
