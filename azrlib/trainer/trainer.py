"""`azr train`: set up a run (model, sampler, sandbox, buffers), loop over steps, checkpoint,
validate, resume. Reads top to bottom: `Trainer.__init__` builds, `Trainer.train` loops.

A killed run continues with `--resume` from its last complete checkpoint (model, optimizer, RNG
states, buffers, step); metrics.jsonl and tasks.jsonl are cut back to that step first, so they end
with exactly one record per step.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from azrlib.config import ConfigError, describe, load_config
from azrlib.trainer.weight_sync import RolloutSync, shares_weights
from azrlib.sandbox import Executor
from azrlib.tasks.buffer import TaskBuffer
from azrlib.tasks.grade import grade_samples
from azrlib.tasks.templates import solve_prompt
from azrlib.trainer import dist, fsdp
from azrlib.trainer.checkpoint import RunDir
from azrlib.trainer.config import TrainConfig
from azrlib.trainer.context import ContextGuard, model_context
from azrlib.trainer.loop import STOP, StepRunner, load_tasks_jsonl

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def resolve_model_path(name: str) -> str:
    """A local directory (relative paths also tried from the project root), or a hub id found in
    $AZR_MODELS_DIR or the Hugging Face cache (azrlib.models; never downloads)."""
    from azrlib.models import refuse_partial_base, resolve_model

    return refuse_partial_base(resolve_model(name))


DATA_ENV = "AZR_DATA_DIR"


def resolve_data_path(name: str) -> Path:
    """A data file named in the config: `$AZR_DATA_DIR/...` (the directory holding the public
    benchmark data, docs/data.md), an existing path, or a path relative to the project root."""
    if f"${DATA_ENV}" in name or f"${{{DATA_ENV}}}" in name:
        if not os.environ.get(DATA_ENV):
            raise FileNotFoundError(f"{name}: set {DATA_ENV} to the directory holding the data (docs/data.md)")
        name = os.path.expandvars(name)
    p = Path(name)
    if p.exists():
        return p
    if (PROJECT_ROOT / p).exists():
        return PROJECT_ROOT / p
    raise FileNotFoundError(f"file not found: {name}")


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False):
        from transformers import AutoConfig, AutoModelForCausalLM

        from azrlib.models import load_tokenizer

        self.cfg = cfg
        dist.init_from_env(cfg.device)
        device = fsdp.local_device(cfg.device)  # cuda -> cuda:LOCAL_RANK under torchrun
        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        set_seed(cfg.seed)
        model_path = resolve_model_path(cfg.model)
        self.tokenizer = load_tokenizer(model_path)
        dtype = getattr(torch, cfg.dtype)
        # checkpoints are written in the dtype the base is stored in (bf16 for Qwen), read before
        # loading because from_pretrained(dtype=...) rewrites the config's dtype
        base_config = AutoConfig.from_pretrained(model_path)
        stored = getattr(base_config, "dtype", None) or getattr(base_config, "torch_dtype", None)
        self.stored_dtype = getattr(torch, stored) if isinstance(stored, str) else (stored or torch.float32)
        if cfg.parallel == "fsdp":  # fp32 masters + AdamW state sharded over ranks, bf16 compute (fsdp.py)
            self.model = fsdp.load_sharded(model_path, device=device, dtype=dtype, param_dtype=cfg.fsdp_param_dtype,
                                           gradient_checkpointing=cfg.gradient_checkpointing)
        else:
            self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device)
            if cfg.gradient_checkpointing:
                self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.ref_model = None
        if cfg.kl_coef:
            self.ref_model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device).eval()
            for p in self.ref_model.parameters():
                p.requires_grad_(False)
        self.sampler = self._build_sampler(model_path, device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.executor = Executor(timeout_s=cfg.exec_timeout_s)
        self.buffers = {t: TaskBuffer(t, cap=cfg.buffer_cap, cap_policy=cfg.buffer_policy) for t in cfg.task_types}
        if cfg.seed_tasks:
            for task in load_tasks_jsonl(resolve_data_path(cfg.seed_tasks)):
                if task.task_type in self.buffers:
                    self.buffers[task.task_type].add(task)
        rollout_sync = None
        if not shares_weights(self.model, self.sampler):  # the engine's own copy: synced after each update
            rollout_sync = RolloutSync(
                self.model, self.sampler, pad_id=self.tokenizer.pad_token_id or 0, device=device,
                check_every=cfg.logprob_check_every, check_seqs=cfg.logprob_check_seqs,
                warn_above=cfg.logprob_mismatch_warn, fail_above=cfg.logprob_mismatch_fail, token_budget=cfg.micro_batch_tokens, autocast_bf16=cfg.amp_bf16,
                sync_dtype=getattr(torch, cfg.fsdp_param_dtype if cfg.parallel == "fsdp" else cfg.dtype))
        rlvr_pool: dict = {}
        if cfg.mode in ("rlvr", "sft"):
            if not cfg.rlvr_tasks:
                raise ConfigError(f"mode {cfg.mode} needs rlvr_tasks (a JSONL of verified tasks)")
            for task in load_tasks_jsonl(resolve_data_path(cfg.rlvr_tasks)):
                rlvr_pool.setdefault(task.task_type, []).append(task)
        self.guard = ContextGuard(getattr(self.sampler, "tokenizer", None) or self.tokenizer,
                                  model_context(self.model, cfg))
        self.runner = StepRunner(cfg, self.model, self.tokenizer, self.sampler, self.executor, self.buffers,
                                 self.optimizer, self.ref_model, rollout_sync=rollout_sync, rlvr_pool=rlvr_pool,
                                 guard=self.guard)
        self.val_tasks = []
        if cfg.val_tasks and cfg.validate_every:
            by_type: dict = {}
            for task in load_tasks_jsonl(resolve_data_path(cfg.val_tasks)):
                by_type.setdefault(task.task_type, []).append(task)
            for t in cfg.task_types:
                chosen = by_type.get(t, [])
                self.val_tasks += chosen[: cfg.val_max_tasks] if cfg.val_max_tasks else chosen
        self.run = RunDir(Path(cfg.out_dir) / cfg.run_name)
        error = None
        if dist.is_main():
            try:
                self.run.create(cfg, self.executor.isolation, resume)
            except FileExistsError as e:
                error = str(e)
        error = dist.gather_lists([error])[0][0]  # rank 0's verdict, on every rank
        if error:
            self.executor.close()
            raise FileExistsError(error)
        self.start_step = 0
        if resume:
            self._resume()

    def _build_sampler(self, model_path: str, device: torch.device):
        """The rollout engine: HFSampler on the trainer's own model (ddp), on a full copy of it
        (fsdp: sharded parameters cannot decode), or a colocated vLLM engine on this rank's GPU."""
        from transformers import AutoModelForCausalLM

        from azrlib.rollout.hf import HFSampler

        cfg = self.cfg
        compute_dtype = cfg.fsdp_param_dtype if cfg.parallel == "fsdp" else cfg.dtype
        if cfg.rollout_engine == "vllm":
            import os

            from azrlib.rollout.vllm_sampler import VLLMSampler

            extra: dict = {"max_model_len": cfg.vllm_max_model_len} if cfg.vllm_max_model_len else {}
            if dist.active():  # one engine per torchrun rank, inside this process, on its GPU (as TRL/veRL)
                extra["distributed_executor_backend"] = "external_launcher"
            else:  # keep the engine in this process, so weight sync passes tensors, not bytes
                os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            # CUDA graphs pay on GPUs; on vLLM's CPU backend compilation costs minutes per start
            return VLLMSampler(model_path, dtype=compute_dtype, seed=cfg.seed, enforce_eager=device.type != "cuda",
                               gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
                               enable_sleep_mode=cfg.vllm_sleep, **extra)
        if cfg.parallel == "fsdp":
            copy = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, compute_dtype))
            return HFSampler(copy, self.tokenizer, device=device)
        return HFSampler(self.model, self.tokenizer, device=device)

    # ------------------------------------------------------------------ state

    def trainer_state(self, step: int, optimizer_state: dict | None = None) -> dict:
        return {
            "step": step,
            "optimizer": self.optimizer.state_dict() if optimizer_state is None else optimizer_state,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "buffers": {t: b.state_dict() for t, b in self.buffers.items()},
            **{("runner_rng" if k == "rng" else k): v for k, v in self.runner.state_dict().items()},
        }

    def _resume(self) -> None:
        from safetensors.torch import load_file

        ckpt = self.run.latest_checkpoint()
        if ckpt is None:
            return  # nothing saved yet: start from the base
        sharded = fsdp.is_sharded(self.model)
        state = torch.load(ckpt / "trainer_state.pt", weights_only=False, mmap=True)
        weights_dir = ckpt / "fp32" if (ckpt / "fp32").is_dir() else ckpt
        weights = {}
        for f in sorted(weights_dir.glob("*.safetensors")) if dist.is_main() or not sharded else ():
            weights.update(load_file(f))
        if sharded:  # rank 0's full copies are broadcast into every rank's shards
            fsdp.load_full_state_dict(self.model, weights)
            fsdp.load_optimizer_state(self.model, self.optimizer, state["optimizer"] if dist.is_main() else {})
        else:
            missing, unexpected = self.model.load_state_dict(
                {k: v.to(next(self.model.parameters()).dtype) for k, v in weights.items()}, strict=False)
            if unexpected or [m for m in missing if "lm_head" not in m]:
                raise RuntimeError(f"checkpoint {ckpt} does not match the model: missing {missing}, unexpected {unexpected}")
            self.optimizer.load_state_dict(state["optimizer"])
        if self.runner.rollout_sync is not None:
            self.runner.rollout_sync.after_update()
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        self.runner.load_state_dict({"rng": state["runner_rng"], "newest": state["newest"]})
        for t, b in self.buffers.items():
            b.load_state_dict(state["buffers"][t])
        self.start_step = int(state["step"])
        if dist.is_main():
            self.run.truncate_logs(self.start_step)
        dist.barrier()

    def save(self, step: int) -> None:
        if fsdp.is_sharded(self.model):  # gather weights and optimizer state to rank 0, which writes
            state = fsdp.full_state_dict(self.model)
            optimizer = fsdp.full_optimizer_state(self.model, self.optimizer)
            if dist.is_main():
                self.run.save_checkpoint(step, fsdp.CheckpointView(self.model, state, self.stored_dtype), self.tokenizer,
                                         self.trainer_state(step, optimizer), self.stored_dtype, self.cfg.save_fp32)
            dist.barrier()
            return
        if dist.active():  # ranks must hold the same weights; a drift would be a bug in the update
            checksum = float(sum(p.detach().double().sum() for p in self.model.parameters()))
            sums = [x for part in dist.gather_lists([checksum]) for x in part]
            if max(sums) - min(sums) > 1e-6 * max(1.0, abs(checksum)):
                raise RuntimeError(f"ranks disagree on the weights at step {step}: {sums}")
        if dist.is_main():  # weights, optimizer and buffers are identical on every rank
            self.run.save_checkpoint(step, self.model, self.tokenizer, self.trainer_state(step), self.stored_dtype,
                                     self.cfg.save_fp32)
        dist.barrier()

    def log(self, path: Path, records: list[dict]) -> None:
        if dist.is_main():
            self.run.append(path, records)

    # ------------------------------------------------------------------ loop

    def train(self) -> Path:
        cfg = self.cfg
        if self.start_step == 0 and self.run.latest_checkpoint() is None:
            record = {"step": 0}
            if self.runner.source.proposes and cfg.seed_buffer_size:  # self-play only
                record.update(self.runner.seed_buffers(cfg.seed_buffer_size, cfg.seed_buffer_rounds))
            if self.val_tasks:
                record.update(self.validate(0))
            if dist.is_main():
                self.run.truncate_logs(-1)
            self.log(self.run.metrics, [record])
            self.save(0)
        bar = tqdm(range(self.start_step + 1, cfg.steps + 1), desc=f"train {cfg.run_name}",
                   initial=self.start_step, total=cfg.steps, disable=None if dist.is_main() else True)
        for step in bar:
            t0 = time.perf_counter()
            stats, task_rows = self.runner.run_step(step)
            record = {"step": step, **stats}
            if self.val_tasks and cfg.validate_every and (step % cfg.validate_every == 0 or step == cfg.steps):
                record.update(self.validate(step))
            # Timings vary run to run: they go to timings.jsonl so metrics.jsonl is reproducible.
            timing = {"step": step, **{k: record.pop(k) for k in list(record) if k.startswith("time/")}}
            timing["time/step"] = round(time.perf_counter() - t0, 3)
            self.log(self.run.tasks, task_rows)
            self.log(self.run.timings, [timing])
            self.log(self.run.metrics, [record])
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                self.save(step)
            bar.set_postfix({k.split("/")[-1]: round(v, 3) for k, v in record.items()
                             if k.startswith("solve_rate/") and v is not None})
        return self.run.path

    def validate(self, step: int) -> dict:
        cfg = self.cfg
        mine = self.val_tasks[dist.rank()::dist.world()]
        prompts = [solve_prompt(t, style=cfg.prompt_style, n_shown=cfg.n_shown) for t in mine]
        seed = (cfg.seed * 7919 + step + 104729 * dist.rank()) % (2**31 - 1)
        fits = self.guard.fits(prompts, cfg.max_new_tokens_solve)  # a task that cannot fit counts as wrong
        shown = [k for k, ok in enumerate(fits) if ok]
        got = self.sampler.generate([prompts[k] for k in shown], n=cfg.val_samples, temperature=cfg.temperature,
                                    top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens_solve, stop=STOP,
                                    seed=seed) if shown else []
        samples: list[list] = [[] for _ in mine]
        for k, comps in zip(shown, got):
            samples[k] = comps
        graded = grade_samples(self.executor, mine, samples, n_shown=cfg.n_shown)
        mine_pairs = [(task.task_type, g.correct) for task, gs in zip(mine, graded) for g in gs]
        mine_pairs += [(task.task_type, False) for task, ok in zip(mine, fits) if not ok for _ in range(cfg.val_samples)]
        pairs = [x for part in dist.gather_lists(mine_pairs) for x in part]
        out: dict = {}
        for t in cfg.task_types:
            vs = [ok for tt, ok in pairs if tt == t]
            if vs:
                out[f"val/{t}/accuracy"] = sum(vs) / len(vs)
        return out

    def close(self) -> None:
        self.executor.close()


# ---------------------------------------------------------------------- CLI

def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="tiny", help="preset name (configs/NAME.yaml) or a YAML path")
    p.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    p.add_argument("--describe", action="store_true", help="list every config key with its help and exit")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. steps=3 run_name=try1")


def run_cli(args: argparse.Namespace, mode: str | None = None) -> int:
    if mode:  # `azr train-rlvr` / `azr train-sft`: the same trainer on fixed tasks
        args.overrides = [f"mode={mode}"] + list(args.overrides)
    if args.describe:
        print(describe(TrainConfig))
        return 0
    try:
        cfg = load_config(TrainConfig, args.config, args.overrides)
    except (ConfigError, FileNotFoundError) as e:
        print(f"azr train: {e}", file=sys.stderr)
        return 2
    try:
        trainer = Trainer(cfg, resume=args.resume)
    except (ConfigError, FileNotFoundError, FileExistsError) as e:
        print(f"azr train: {e}", file=sys.stderr)
        return 2
    try:
        path = trainer.train()
    finally:
        trainer.close()
    if dist.is_main():
        print(json.dumps({"run_dir": str(path)}))
    return 0
