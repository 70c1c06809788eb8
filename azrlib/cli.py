"""The `azr` command line: one subcommand per job, each a thin wrapper around a library function.

Each subcommand lives in the module that owns the logic. That module exposes
`configure_parser(parser)` (adds its arguments) and `run_cli(args) -> int` (the exit code). When the
table says `module:run_x`, `run_x` runs it and `configure_x` (else `configure_parser`) adds its
arguments. The table only names them, so `azr --help` stays fast (modules are imported on use).

The paper's workflow (workflow/Snakefile, `make reproduce`) runs every step as one of these
subcommands; the pipeline's own steps are in `azrlib.pipeline.steps`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "check-tasks": ("azrlib.tasks.check", "re-validate AZR-format task files (or CRUXEval) in the sandbox"),
    "sandbox-info": ("azrlib.sandbox.info", "show which isolation layers the sandbox can use on this machine"),
    "pretrain-tiny": ("azrlib.tinyworld.pretrain", "rebuild the tiny base model (and tiny-world benchmark) on CPU"),
    "tiny-usefulness": ("azrlib.tinyworld.usefulness", "is a base model a useful self-play start? (tiny-world solve/propose rates)"),
    "train": ("azrlib.trainer.trainer", "self-play training (AZR loop, TRR++) from a preset"),
    "train-rlvr": ("azrlib.trainer.baselines:run_rlvr", "RLVR baseline: the solver trained with the same loss on fixed tasks"),
    "train-sft": ("azrlib.trainer.baselines:run_sft", "SFT baseline: cross-entropy on the gold answers of the same tasks"),
    "eval": ("azrlib.eval.cli", "sample a model on a benchmark, check every sample, write per-sample JSONL rows"),
    "passk": ("azrlib.metrics.passk", "unbiased pass@k from per-sample results, optionally paired vs another model"),
    "sparsity": ("azrlib.metrics.sparsity", "fraction of parameters unchanged between two checkpoints"),
    "check-base": ("azrlib.pipeline.steps:run_check_base", "pipeline step: the base model resolves locally and has weights"),
    "eval-tasks": ("azrlib.pipeline.steps:run_eval_tasks", "pipeline step: the tiny-world evaluation subset (tasks per type over the levels)"),
    "rlvr-tasks": ("azrlib.pipeline.steps:run_rlvr_tasks", "pipeline step: verified tiny-world tasks for the RLVR/SFT baselines"),
    "prepare-run": ("azrlib.pipeline.steps:run_prepare_run", "pipeline step: keep a run directory only if it can be resumed with this config"),
    "rq2": ("azrlib.pipeline.steps:run_rq2", "RQ2: questions proposed during training, solve rates of several models"),
    "leash-tasks": ("azrlib.pipeline.rq_steps:run_leash_tasks", "invisible leash: tasks a tuned model solves and the base never does"),
    "leash-eval": ("azrlib.pipeline.rq_steps:run_leash_eval", "invisible leash: sample the base n >= 256 times on that subset"),
    "rq3-entropy": ("azrlib.pipeline.rq_steps:run_rq3_entropy", "RQ3: entropy of a run's checkpoints on a fixed prompt set"),
    "sparsity-curve": ("azrlib.pipeline.rq_steps:run_sparsity_curve", "RQ4: sparsity of a run's checkpoints against the base, with its budget"),
    "notebooks": ("azrlib.report.execute_notebooks", "run the notebooks with papermill on a results directory"),
    "pipeline-settings": ("azrlib.pipeline.settings", "the workflow's settings (configs/pipeline/<preset>.yaml) and a preset's runs"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="azr",
        description="azrlib: Absolute Zero self-play and the analyses of the self-play paper.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    name = argv[0]
    if name not in SUBCOMMANDS:
        parser.error(f"unknown command {name!r}; choose from: {', '.join(SUBCOMMANDS)}")
    target, help_text = SUBCOMMANDS[name]
    module_name, _, func = target.partition(":")
    module = importlib.import_module(module_name)
    sub_parser = argparse.ArgumentParser(prog=f"azr {name}", description=help_text)
    configure = getattr(module, "configure_" + func.removeprefix("run_"), None) if func else None
    (configure or module.configure_parser)(sub_parser)
    args = sub_parser.parse_args(argv[1:])
    return int(getattr(module, func or "run_cli")(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
