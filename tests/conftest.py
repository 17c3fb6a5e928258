import os
from pathlib import Path

import pytest
import torch

# Tiny nets: one thread avoids oversubscription on small CI machines (and is faster at these sizes).
torch.set_num_threads(1)

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
