"""The paper's plan for one preset: pipeline settings (configs/pipeline/<preset>.yaml) and the runs.

A preset is one name in one tree: `configs/<preset>.yaml` holds the training settings (TrainConfig)
and `configs/pipeline/<preset>.yaml` what the workflow (workflow/Snakefile) runs around them:
seeds, evaluation and RQ2 sizes, threads. Both list only their deviations from the dataclass
defaults; `azr pipeline-settings --preset P` prints the resolved values.

The training runs (names as in docs/results_layout.md):

    selfplay_s<k>   AZR self-play (proposer_reward azr), one per seed
    band_s<k>       proposer reward 1-2|p-0.5| (RQ5), one per seed
    azr_code_s<k>   AZR's code variant of the proposer reward, first seed
    frozen_s<k>     frozen proposer, first seed
    rlvr_s<k>       `azr train-rlvr` on verified tasks, first seed
    sft_s<k>        `azr train-sft` on the same tasks, first seed
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from azrlib.config import CONFIG_DIR, ConfigError, config_to_dict, describe, load_config, option

PIPELINE_DIR = CONFIG_DIR / "pipeline"
TINYWORLD_BENCHMARK = CONFIG_DIR.parent / "data" / "tinyworld" / "benchmark.jsonl"


@dataclass(frozen=True)
class PipelineSettings:
    """What the workflow runs for a preset (training sizes live in configs/<preset>.yaml)."""

    config: str = option("", "training config: a preset name or YAML path (empty: configs/<preset>.yaml)")
    model: str = option("", "base model: a local HF directory or a hub id (empty: the training config's `model`)")
    seeds: tuple[int, ...] = option((0, 1, 2), "seeds of the multi-seed runs (selfplay, band); the first seeds the others")
    multi_seed_runs: tuple[str, ...] = option(("selfplay", "band"), "run kinds trained once per seed")
    single_seed_runs: tuple[str, ...] = option(("azr_code", "frozen", "rlvr", "sft"),
                                               "run kinds trained with the first seed only")
    train_overrides: tuple[str, ...] = option((), "extra key=value overrides for every training run")
    train_gpus: int = option(0, "GPUs per training run; > 0 launches the trainer with torchrun on that many")
    threads: int = option(1, "torch threads per step (CPU: 1 thread per step and one step per core is fastest "
                             "for the tiny model; GPU presets: CPU threads of a job)")
    rlvr_tasks: int = option(300, "RLVR/SFT baselines: verified tiny-world tasks generated (0: use rlvr_tasks_file)")
    rlvr_tasks_file: str = option("", "RLVR/SFT task JSONL when rlvr_tasks is 0 (empty: no rlvr and sft runs)")
    benchmarks: tuple[str, ...] = option(("tinyworld",), "benchmarks evaluated (`azr eval --benchmark`)")
    eval_data: str = option("", "`azr eval --data` directory for non-tiny-world benchmarks (empty: $AZR_DATA_DIR)")
    eval_per_type: int = option(20, "tiny world: evaluation tasks per task type, spread over the levels (0: all)")
    eval_limit: int = option(0, "other benchmarks: only the first N problems (0: all)")
    eval_n: int = option(16, "samples per problem (pass@k up to k = eval_n)")
    eval_temperature: float = option(0.6, "sampling temperature (pass@k convention of Yue et al.: 0.6)")
    eval_top_p: float = option(0.95, "nucleus mass (Yue et al.: 0.95)")
    eval_max_new_tokens: int = option(128, "generated tokens per sample")
    eval_prompt_style: str = option("plain", "azr | qwen-boxed | plain (plain on the tiny world = its training format)")
    eval_engine: str = option("hf", "hf | vllm")
    eval_batch_size: int = option(16, "prompts per generation call")
    eval_device: str = option("cpu", "hf engine: torch device")
    rq2_questions: int = option(150, "RQ2: deduction questions sampled from the self-play run's tasks.jsonl")
    rq2_bin_size: int = option(5, "RQ2: training steps per bin (questions are balanced over bins)")
    rq2_m: int = option(8, "RQ2: samples per question and model")
    rq2_temperature: float = option(1.0, "RQ2: sampling temperature (the training temperature)")
    rq2_top_p: float = option(1.0, "RQ2: nucleus mass")
    rq2_max_new_tokens: int = option(128, "RQ2: generated tokens per sample")
    rq2_prompt_style: str = option("compact", "RQ2: solver prompt style (the run's prompt_style)")
    rq2_engine: str = option("hf", "RQ2 sampler: hf | vllm")
    notebooks: bool = option(True, "execute every notebooks/*.ipynb with papermill at the end")
    notebook_timeout_s: int = option(1800, "papermill: longest a notebook cell may run, seconds")


def presets() -> list[str]:
    return sorted(p.stem for p in PIPELINE_DIR.glob("*.yaml"))


def load_settings(preset: str, overrides: list[str] | dict | None = None) -> PipelineSettings:
    """configs/pipeline/<preset>.yaml plus `key=value` overrides; ConfigError names a bad key."""
    path = PIPELINE_DIR / f"{preset}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {preset!r}: no {path} (presets: {', '.join(presets())})")
    settings = load_config(PipelineSettings, path, overrides)
    if not settings.seeds:
        raise ConfigError(f"{path}: seeds needs at least one seed")
    return settings


def training_config(preset: str, settings: PipelineSettings) -> str:
    return settings.config or preset


@dataclass(frozen=True)
class RunSpec:
    name: str
    command: str  # train | train-rlvr | train-sft
    seed: int
    overrides: tuple[str, ...]


RUN_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "selfplay": ("train", ("proposer_reward=azr",)),
    "band": ("train", ("proposer_reward=band",)),
    "azr_code": ("train", ("proposer_reward=azr_code",)),
    "frozen": ("train", ("proposer_reward=azr", "freeze_proposer=true")),
    "rlvr": ("train-rlvr", ()),
    "sft": ("train-sft", ()),
}


def run_plan(settings: PipelineSettings) -> list[RunSpec]:
    """Multi-seed kinds once per seed, the others with the first seed; rlvr/sft only with tasks."""
    for kind in settings.multi_seed_runs + settings.single_seed_runs:
        if kind not in RUN_KINDS:
            raise ConfigError(f"unknown run kind {kind!r}; known: {', '.join(RUN_KINDS)}")
    has_tasks = settings.rlvr_tasks > 0 or bool(settings.rlvr_tasks_file)
    runs = []
    for kind in settings.multi_seed_runs:
        for k in settings.seeds:
            command, over = RUN_KINDS[kind]
            runs.append(RunSpec(f"{kind}_s{k}", command, k, over))
    for kind in settings.single_seed_runs:
        command, over = RUN_KINDS[kind]
        if kind in settings.multi_seed_runs or (command != "train" and not has_tasks):
            continue
        runs.append(RunSpec(f"{kind}_s{settings.seeds[0]}", command, settings.seeds[0], over))
    return runs


def run_overrides(spec: RunSpec, settings: PipelineSettings, results: Path, model: str,
                  rlvr_file: str | None) -> list[str]:
    """The `key=value` overrides of one training run (thread count excluded: it changes no result)."""
    out = [f"out_dir={results / 'train'}", f"run_name={spec.name}", f"seed={spec.seed}", f"model={model}",
           *spec.overrides, *settings.train_overrides]
    if spec.command != "train":
        out.append(f"rlvr_tasks={rlvr_file}")
    return out


def resolved_train_config(preset: str, settings: PipelineSettings, overrides: list[str]) -> dict:
    """The run's resolved TrainConfig as a dict, without torch_threads (fails early naming a bad key)."""
    from azrlib.trainer.config import TrainConfig

    cfg = config_to_dict(load_config(TrainConfig, training_config(preset, settings), overrides))
    cfg.pop("torch_threads", None)
    return cfg


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=None, help=f"print this preset's resolved settings (presets: {', '.join(presets())})")
    p.add_argument("overrides", nargs="*", help="key=value overrides")


def run_cli(args: argparse.Namespace) -> int:
    """`azr pipeline-settings`: the settings' help, or a preset's resolved values and runs."""
    if not args.preset:
        print(describe(PipelineSettings))
        return 0
    try:
        s = load_settings(args.preset, args.overrides)
    except ConfigError as e:
        print(f"azr pipeline-settings: {e}")
        return 2
    print(json.dumps({"settings": config_to_dict(s), "runs": [r.name for r in run_plan(s)]}, indent=1))
    return 0
