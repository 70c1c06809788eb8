"""`azr train-rlvr` and `azr train-sft`: the RQ4 baselines on the same base model.

RLVR: no proposer; the solver trains with the self-play loss (PPO-clip, TRR++ over the three
solve groups) on a fixed set of verified tasks (`rlvr_tasks`: the tiny world's generator tasks, or
a user-given JSONL of `Task` rows). SFT: cross-entropy on the gold solver answers of the same
tasks. Both write the same run directory (checkpoints, metrics.jsonl) as `azr train`.
"""

from __future__ import annotations

import argparse

from azrlib.trainer import trainer


def configure_parser(p: argparse.ArgumentParser) -> None:
    trainer.configure_parser(p)


def run_rlvr(args: argparse.Namespace) -> int:
    return trainer.run_cli(args, mode="rlvr")


def run_sft(args: argparse.Namespace) -> int:
    return trainer.run_cli(args, mode="sft")
