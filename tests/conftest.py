import hashlib
import os
from pathlib import Path

import pytest
import torch

# Tiny nets: one thread avoids oversubscription on small CI machines (and is faster at these sizes).
torch.set_num_threads(1)
# The processes tests start (examples, the CLI, kill tests) inherit it: with one pytest worker per core a second
# thread only competes with the other worker (an example's --quick run: 11.2 s against 12.9 s wall).
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path | None:
    env = os.environ.get("SYNTHAUG_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data", REPO / ".." / "shared" / "data"]:
        if cand.is_dir():
            return cand.resolve()
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; tests using it skip cleanly when it is absent."""
    p = _shared_data()
    if p is None:
        pytest.skip("../shared/data is not present")
    return p


# ----------------------------------------------------------------------------- shared helpers (as fixtures)
def _weights_hash(modules) -> str:
    h = hashlib.sha256()
    for name in sorted(modules):
        for k, v in sorted(modules[name].state_dict().items()):
            h.update(f"{name}.{k}".encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture
def weights_hash():
    """``weights_hash({name: module})``: a sha256 of the modules' state dicts, for bit-exactness checks."""
    return _weights_hash


def _without_time(rows):
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


@pytest.fixture
def strip():
    """``strip(rows)``: metrics.jsonl rows without their wall-clock ``time``, so two runs compare exactly."""
    return _without_time


def _kill_at(trainer, step: int) -> None:
    original = trainer.recipe.train_step

    def dies(s):
        if s == step:
            raise KeyboardInterrupt("simulated kill")
        return original(s)

    trainer.recipe.train_step = dies
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()


@pytest.fixture
def kill_at():
    """``kill_at(trainer, step)``: run ``trainer.fit()`` and kill it (KeyboardInterrupt) when it reaches
    ``train_step(step)``, as a killed process would be; its checkpoints stay for a resumed run."""
    return _kill_at


def pytest_collection_modifyitems(config, items):
    """The ``slow`` end-to-end tests first (in their order), then the rest: pytest-xdist hands tests out in this
    order (``make test``: ``--dist worksteal``, an idle worker takes pending tests from the other), so the long ones
    start early and the short ones fill the gaps instead of one long test ending the run."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
