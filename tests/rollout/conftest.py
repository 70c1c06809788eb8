"""Fixtures of the HF-sampler tests (`test_rollout.py`, `test_shared_prefix.py`): one tiny random
Qwen2 checkpoint per test module and a 1-thread `HFSampler` on it."""

import pytest

from azrlib.rollout import HFSampler
from tiny_model import build_tiny_checkpoint


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_qwen2"))


@pytest.fixture(scope="module")
def sampler(model_dir):
    return HFSampler(model_dir, num_threads=1)
