"""The trainer's configuration: one frozen dataclass, read from `configs/<preset>.yaml`.

Defaults are AZR's paper settings where they exist (coder presets override sizes only); the tiny
and quick presets shrink batch sizes, lengths and steps to fit 2 CPU cores. Every field has a help
string (`azr train --describe` prints them).
"""

from __future__ import annotations

from dataclasses import dataclass

from azrlib.config import option
from azrlib.rewards import PROPOSER_REWARDS
from azrlib.tasks.templates import STYLES
from azrlib.tasks.types import TASK_TYPES
from azrlib.tasks.validation import AZR_BANNED_MODULES
from azrlib.trainer.advantages import ESTIMATORS


@dataclass(frozen=True)
class TrainConfig:
    # what and where
    run_name: str = option("azr", "name of the run directory under out_dir")
    out_dir: str = option("runs", "where run directories are written")
    model: str = option("Qwen/Qwen2.5-Coder-7B", "base model: a local HF directory or a hub id (AZR's headline run: Qwen2.5-Coder-7B)")
    seed: int = option(0, "seed for sampling, buffers and torch (a seed fixes a CPU run)")
    steps: int = option(20, "training steps (one step = propose + solve for every task type)")
    task_types: tuple[str, ...] = option(TASK_TYPES, "task types trained (AZR: all three)")
    mode: str = option("selfplay", "selfplay (AZR) | rlvr (solver RL on fixed tasks) | sft (cross-entropy on their gold answers)")

    # rollout
    batch_size: int = option(64, "prompts per (task type, role) per step (AZR: 64)")
    n_solver_samples: int = option(8, "solver samples per proposed task for its solve rate (AZR: 8)")
    n_references: int = option(6, "reference tasks in a proposer prompt (AZR: K=6)")
    prompt_style: str = option("azr", "prompt templates: azr (paper length) | compact (tiny model)")
    temperature: float = option(1.0, "sampling temperature for all rollouts (AZR: 1.0)")
    top_p: float = option(1.0, "nucleus sampling (AZR: 1.0)")
    max_new_tokens_propose: int = option(8096, "response cap for proposer rollouts (AZR: 8096)")
    max_new_tokens_solve: int = option(8096, "response cap for solver rollouts (AZR: 8096)")
    context_limit: int = option(0, "longest prompt + response in tokens (0: the model's own limit); a prompt that "
                                   "cannot fit with its response cap is skipped alone (skipped/context)")
    n_shown: int = option(5, "induction pairs shown to the solver (the rest are hidden checks)")

    # rewards and advantages
    proposer_reward: str = option("azr", "learnability: azr (1-p) | azr_code (-0.5 if p in {0,1}) | band (1-2|p-0.5|)")
    invalid_proposal_reward: float = option(-0.5, "reward of a well-formatted invalid proposal (paper -0.5; AZR code -1)")
    advantage: str = option("trr++", "advantage estimator: trr++ (AZR) | reinforce++ | grpo")
    freeze_proposer: bool = option(False, "proposer samples are rewarded and logged but get no gradient (RQ3)")

    # update
    lr: float = option(1e-6, "AdamW learning rate, constant (AZR: 1e-6)")
    weight_decay: float = option(0.0, "AdamW weight decay")
    clip_ratio: float = option(0.2, "PPO ratio clip (AZR paper branch: 0.2)")
    entropy_coef: float = option(0.001, "entropy bonus coefficient (AZR paper branch: 0.001)")
    kl_coef: float = option(0.0, "KL penalty to the base model (AZR: off)")
    grad_clip: float = option(1.0, "gradient norm clip")
    mini_batch_size: int = option(128, "sequences per optimizer step (AZR: 128)")
    micro_batch_tokens: int = option(16384, "tokens per forward/backward chunk (memory bound)")

    # task environment
    exec_timeout_s: float = option(10.0, "sandbox timeout per program (AZR: 10 s)")
    max_output_chars: int = option(400, "longest accepted output repr (AZR: 400)")
    output_overflow: str = option("reject", "reject | truncate (AZR) outputs longer than max_output_chars")
    allow_helpers: bool = option(False, "accept programs with several functions (AZR: no)")
    allow_extra_inputs: bool = option(False, "induction proposals: accept 10 or more ```input blocks and keep the "
                                             "last 10 (AZR's shipped parser) instead of exactly 10 (the paper)")
    banned_modules: tuple[str, ...] = option(AZR_BANNED_MODULES, "imports that invalidate a proposal")
    buffer_cap: int = option(16384, "tasks kept per buffer (AZR: 16384)")
    keep_tasks: str = option("all", "which valid proposals join the buffer: all (AZR) | learnable (only those whose "
                             "learnability solve rate p has 0 < p < 1; tiny preset)")
    buffer_policy: str = option("drop_oldest", "when full: drop_oldest (ours) | keep_oldest (AZR)")
    seed_tasks: str = option("", "JSONL of tasks to seed the buffers with (empty: AZR's zero triplet only)")
    seed_buffer_size: int = option(0, "before step 1, propose until each buffer holds this many tasks (AZR: 256)")
    seed_buffer_rounds: int = option(20, "at most this many proposal rounds for the seeding")
    rlvr_tasks: str = option("", "mode rlvr/sft: JSONL of verified solver tasks (tiny: built from the corpus)")

    # bookkeeping
    checkpoint_every: int = option(10, "save a checkpoint every N steps (step 0 and the last always)")
    save_fp32: bool = option(False, "also save fp32 master weights (the public AZR checkpoints are fp32)")
    validate_every: int = option(10, "evaluate on the validation set every N steps (0: never)")
    val_tasks: str = option("", "validation tasks JSONL (tiny: the tiny-world benchmark; GPU: CRUXEval)")
    val_max_tasks: int = option(0, "use at most this many validation tasks per type (0: all)")
    val_samples: int = option(1, "samples per validation task (accuracy = mean over samples)")
    torch_threads: int = option(0, "torch intra-op threads (0: leave torch's default)")
    device: str = option("cpu", "cpu | cuda")
    gradient_checkpointing: bool = option(False, "recompute activations in backward (GPU presets: on)")
    amp_bf16: bool = option(False, "bf16 autocast in the update's forward (weights and optimizer stay in dtype)")
    dtype: str = option("float32", "training dtype: float32 | bfloat16 (with parallel=fsdp: the sharded fp32 masters and AdamW state)")

    # scale: sharding and the rollout engine (docs/gpu.md)
    parallel: str = option("ddp", "ddp (every rank holds the model; gradients summed by all_reduce) | fsdp (FSDP2: parameters, gradients and AdamW state sharded over ranks)")
    fsdp_param_dtype: str = option("bfloat16", "fsdp: dtype parameters are gathered and computed in (MixedPrecisionPolicy); gradients reduce in fp32")
    rollout_engine: str = option("hf", "hf (transformers; shares the trainer's model, or a synced copy under fsdp) | vllm (colocated vLLM engine per rank, weights synced after each update)")
    vllm_gpu_memory_utilization: float = option(0.4, "vllm: fraction of the GPU the engine takes when awake (AZR: 0.4)")
    vllm_sleep: bool = option(True, "vllm: release the engine's GPU memory during the update (sleep/wake, where vLLM supports it)")
    vllm_max_model_len: int = option(0, "vllm: longest prompt + response (0: the model's own limit)")
    logprob_check_every: int = option(10, "when the engine holds its own weights: every N steps compare its log-probs of sampled tokens with the trainer's (rollout/logprob_mismatch; 0: never)")
    logprob_check_seqs: int = option(16, "sequences per rank in that check")
    logprob_mismatch_warn: float = option(0.05, "warn when the mean |log-prob difference| per token exceeds this")
    logprob_mismatch_fail: float = option(0.0, "stop the run when the mean |log-prob difference| per token exceeds this (0: never; CI's vLLM run uses 1e-4 in fp32)")

    def __post_init__(self):
        checks = [
            (self.mode in ("selfplay", "rlvr", "sft"), f"mode must be selfplay, rlvr or sft, got {self.mode!r}"),
            (set(self.task_types) <= set(TASK_TYPES) and self.task_types, f"task_types must be a non-empty subset of {TASK_TYPES}"),
            (self.prompt_style in STYLES, f"prompt_style must be one of {STYLES}"),
            (self.proposer_reward in PROPOSER_REWARDS, f"proposer_reward must be one of {PROPOSER_REWARDS}"),
            (self.advantage in ESTIMATORS, f"advantage must be one of {ESTIMATORS}"),
            (self.buffer_policy in ("drop_oldest", "keep_oldest"), "buffer_policy must be drop_oldest or keep_oldest"),
            (self.keep_tasks in ("all", "learnable"), f"keep_tasks must be all or learnable, got {self.keep_tasks!r}"),
            (self.output_overflow in ("reject", "truncate"), "output_overflow must be reject or truncate"),
            (self.dtype in ("float32", "bfloat16"), "dtype must be float32 or bfloat16"),
            (self.batch_size >= 1 and self.n_solver_samples >= 1 and self.steps >= 0, "batch sizes must be positive"),
            (self.mini_batch_size >= 1 and self.micro_batch_tokens >= 1, "mini/micro batch sizes must be positive"),
            (self.temperature >= 0 and 0 < self.top_p <= 1, "temperature >= 0 and 0 < top_p <= 1"),
            (self.parallel in ("ddp", "fsdp"), f"parallel must be ddp or fsdp, got {self.parallel!r}"),
            (self.fsdp_param_dtype in ("float32", "bfloat16"), "fsdp_param_dtype must be float32 or bfloat16"),
            (self.rollout_engine in ("hf", "vllm"), f"rollout_engine must be hf or vllm, got {self.rollout_engine!r}"),
            (0 < self.vllm_gpu_memory_utilization <= 1, "vllm_gpu_memory_utilization must be in (0, 1]"),
            (self.context_limit >= 0, "context_limit must be >= 0"),
            (self.logprob_check_every >= 0 and self.logprob_check_seqs >= 1, "logprob_check_every >= 0, logprob_check_seqs >= 1"),
            (not (self.parallel == "fsdp" and self.kl_coef), "kl_coef needs parallel=ddp (the reference model is not sharded; AZR: no KL)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
