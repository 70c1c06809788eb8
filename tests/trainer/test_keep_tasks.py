"""`keep_tasks`: which valid, rated proposals join the buffer (AZR: every one; the tiny preset keeps
only those its learnability samples solved at least once and not always)."""

from __future__ import annotations

import pytest

from azrlib.config import load_config
from azrlib.trainer.config import TrainConfig
from azrlib.trainer.propose import _kept


@pytest.mark.parametrize("rate", [0.0, 0.125, 0.5, 0.875, 1.0])
def test_the_rule_is_the_stated_interval(rate):
    assert _kept(rate, "all")
    assert _kept(rate, "learnable") == (0 < rate < 1)


def test_azr_keeps_everything_and_a_bad_rule_is_named():
    assert TrainConfig().keep_tasks == "all"
    with pytest.raises(ValueError, match="keep_tasks"):
        TrainConfig(keep_tasks="some")
    assert load_config(TrainConfig, "tiny").keep_tasks == "learnable"
