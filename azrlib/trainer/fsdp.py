"""FSDP2 (`torch.distributed.fsdp.fully_shard`) for the policy: sharded parameters, gradients and
optimizer state, with the full state dict gathered for checkpoints and weight sync.

`parallel: fsdp` in the trainer config selects it; `parallel: ddp` (the default) keeps the whole
model on every rank and sums gradients with one all_reduce (`dist.sum_gradients`).

Memory plan (what is sharded and in which dtype). The sharded parameters are fp32 masters
(`dtype: float32`) and `MixedPrecisionPolicy(param_dtype=bfloat16, reduce_dtype=float32)` all-gathers
them as bf16 for compute, one decoder layer at a time. AdamW keeps its state in the parameters'
dtype, so exp_avg / exp_avg_sq are fp32 and sharded with them. Per rank with N ranks and P
parameters: 4P/N (fp32 masters) + 4P/N (fp32 gradients) + 8P/N (AdamW) = 16P/N bytes, plus one or
two unsharded bf16 layers and the root group (embeddings, final norm, lm_head) while they compute.
We chose fp32 masters + bf16 compute over "bf16 parameters + separate fp32 optimizer copy" because
both cost the same 16P/N bytes, and this one is what FSDP2 does natively (no custom optimizer). It
is also what AZR's veRL FSDP workers do (fp32 params, bf16 compute, fp32 gradient reduction). Pure
bf16 weights would lose updates: at lr 1e-6, AdamW's step (~1e-6 relative) is below half a bf16
ulp (~4e-3 relative) for almost every weight, so most updates would round away.

Where this departs from AZR / veRL:
* gradients are *summed* over ranks, not averaged: the trainer divides each rank's loss by the
  global token count, so the sum is the token mean of the whole mini-batch
  (`set_gradient_divide_factor(1.0)`, with sum-only collectives so gloo works too);
* the forward goes through `ShardedPolicy`, a view whose `.model(...)` is a method registered with
  FSDP on the root (`register_fsdp_forward_method`): `ppo.token_logprobs` runs the decoder stack and
  then the vocabulary projection in chunks itself, so the root's parameters (embeddings, final
  norm, lm_head, tied in Qwen2.5-3B) must be all-gathered by a root forward that is not `forward`;
* every rank must run the same number of forward/backward passes (each all-gathers), so the
  update pads a rank's micro-batches with empty ones (`pad_micro_batches`, `dummy_batch`);
* checkpoints: the full state dict is gathered to rank 0 (CPU) and written with `save_pretrained`
  in the base's stored dtype by `RunDir.save_checkpoint` through `CheckpointView`; the optimizer
  state is gathered too, so a checkpoint does not depend on the number of ranks that wrote it.
"""

from __future__ import annotations

import atexit
import copy
import os
import tempfile
import types

import torch
import torch.distributed as dist


# ---------------------------------------------------------------------------------------- setup

def local_device(device: str) -> torch.device:
    """The device this rank trains on: "cuda" becomes cuda:LOCAL_RANK (torchrun starts one process
    per GPU; without this every rank would use GPU 0)."""
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None and torch.cuda.is_available():
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    return dev


def ensure_process_group(device: torch.device | str) -> None:
    """FSDP needs a process group even for one rank; make a 1-rank group when none exists."""
    if dist.is_initialized():
        return
    backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group(backend=backend)
        return
    store = tempfile.NamedTemporaryFile(prefix="azr_pg_", delete=False)
    store.close()
    dist.init_process_group(backend=backend, init_method=f"file://{store.name}", rank=0, world_size=1)
    atexit.register(lambda: os.path.exists(store.name) and os.unlink(store.name))  # the store outlives no run


def _dtype(value: str | torch.dtype | None) -> torch.dtype | None:
    return getattr(torch, value) if isinstance(value, str) else value


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated blocks to shard one by one (Hugging Face decoder-only models)."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise TypeError(f"{type(model).__name__}: expected a decoder-only model with .model.layers")
    return list(layers)


def is_sharded(model: object) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def shard(model: torch.nn.Module, *, device: torch.device | str, param_dtype: str | torch.dtype | None = None,
          reduce_dtype: str | torch.dtype | None = torch.float32, reshard_after_forward: bool = True):
    """Apply fully_shard to every decoder layer, then to the root (embeddings, norm, lm_head).

    param_dtype: dtype parameters are all-gathered and computed in (None: their own dtype).
    reduce_dtype: dtype gradients are reduce-scattered in (fp32, as veRL; None: param_dtype).
    The model may be on the meta device (then call `materialize` next) or on CPU/the device."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

    device = torch.device(device)
    ensure_process_group(device)
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    master = next(model.parameters()).dtype
    compute = _dtype(param_dtype)
    policy = MixedPrecisionPolicy(param_dtype=None if compute in (None, master) else compute,
                                  reduce_dtype=_dtype(reduce_dtype))
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard_after_forward)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    for module in model.modules():
        if isinstance(module, FSDPModule):
            # Sum, not mean, over ranks (see the module docstring); SUM-only collectives (gloo has
            # no PREMUL_SUM, and with a factor of 1 there is nothing to multiply anyway).
            module.set_gradient_divide_factor(1.0)
            module.set_force_sum_reduction_for_comms(True)

    def _azr_backbone(self, input_ids, attention_mask=None, position_ids=None):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                          use_cache=False).last_hidden_state

    model._azr_backbone = types.MethodType(_azr_backbone, model)
    register_fsdp_forward_method(model, "_azr_backbone")
    return model


class ShardedPolicy:
    """What `ppo.token_logprobs` needs from a policy (`.model(...)` -> hidden states,
    `.get_output_embeddings()`), routed through the FSDP root so its parameters are gathered.

    The root keeps its parameters unsharded after its forward (FSDP2 does so for the root, as they
    are needed again in backward), so the chunked lm_head projection after `.model(...)` sees the
    full (tied) weight, and its gradient is reduce-scattered with the root's in backward."""

    def __init__(self, root: torch.nn.Module):
        self.root = root

    def model(self, input_ids, attention_mask=None, position_ids=None):
        hidden = self.root._azr_backbone(input_ids, attention_mask=attention_mask, position_ids=position_ids)
        return types.SimpleNamespace(last_hidden_state=hidden)

    def get_output_embeddings(self):
        return self.root.get_output_embeddings()

    @property
    def config(self):
        return self.root.config


def forward_view(model):
    """The object to pass to `token_logprobs`: the model itself, or its ShardedPolicy."""
    return ShardedPolicy(model) if is_sharded(model) else model


def reshard(model: torch.nn.Module) -> None:
    """Free the unsharded parameters a no-grad forward left behind (the root keeps its own)."""
    from torch.distributed.fsdp import FSDPModule

    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()


# ---------------------------------------------------------------------------------------- build

def materialize(model: torch.nn.Module, device: torch.device | str, *, init_std: float | None = None,
                seed: int = 0) -> torch.nn.Module:
    """Allocate a meta-device (sharded) model's storage on `device`: each rank allocates only its
    shards. With `init_std`, parameters get random normal weights (norm weights 1, biases 0): each
    rank fills its own shards from a rank-dependent seed. Non-persistent buffers (RoPE inverse
    frequencies) are recomputed, since to_empty leaves them uninitialised."""
    device = torch.device(device)
    model.to_empty(device=device)
    _reinit_buffers(model, device)
    if init_std is None:
        return model
    rank = dist.get_rank() if dist.is_initialized() else 0
    generator = torch.Generator(device=device).manual_seed(seed * 1009 + rank)
    # CPU random number generation runs at ~6 M values/s per core (a 3B model: minutes), so on CPU
    # the weights are windows into one pool of 2^20 normal draws at random offsets: random enough
    # for memory and speed checks, which is what random weights are for here.
    pool = None if device.type != "cpu" else torch.randn(1 << 20, generator=generator) * init_std
    with torch.no_grad():
        for name, param in model.named_parameters():
            local = param.to_local() if hasattr(param, "to_local") else param
            if name.endswith("bias"):
                local.zero_()
            elif "norm" in name:
                local.fill_(1.0)
            elif pool is None:
                local.normal_(0.0, init_std, generator=generator)
            else:
                flat, start = local.view(-1), int(torch.randint(len(pool), (1,), generator=generator))
                for begin in range(0, flat.numel(), len(pool) - start):
                    chunk = flat[begin:begin + len(pool) - start]
                    chunk.copy_(pool[start:start + chunk.numel()])
                    start = 0
    return model


def _reinit_buffers(model: torch.nn.Module, device: torch.device) -> None:
    for module in model.modules():
        buffers = dict(module.named_buffers(recurse=False))
        if not buffers:
            continue
        config = getattr(module, "config", None)
        if config is None:
            raise TypeError(f"cannot recompute the buffers {sorted(buffers)} of {type(module).__name__}")
        with torch.device(device):
            fresh = type(module)(config)
        for name, value in fresh.named_buffers(recurse=False):
            getattr(module, name).copy_(value)
        for attr in ("attention_scaling",):
            if hasattr(fresh, attr):
                setattr(module, attr, getattr(fresh, attr))


def build_sharded(config, *, device: torch.device | str, dtype: str | torch.dtype = torch.float32,
                  param_dtype: str | torch.dtype | None = None, gradient_checkpointing: bool = False,
                  init_std: float | None = 0.02, seed: int = 0) -> torch.nn.Module:
    """A causal LM built from `config` on the meta device, sharded, then materialised: no rank ever
    holds the whole model. With `init_std` the weights are random (memory and speed checks)."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=_dtype(dtype))
    model.config.use_cache = False
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    shard(model, device=device, param_dtype=param_dtype)
    return materialize(model, device, init_std=init_std, seed=seed)


def load_sharded(model_path: str, *, device: torch.device | str, dtype: str | torch.dtype = torch.float32,
                 param_dtype: str | torch.dtype | None = None, gradient_checkpointing: bool = False):
    """A pretrained causal LM, sharded: rank 0 reads the checkpoint on CPU, every rank builds the
    model on the meta device, shards and materialises its part, and rank 0 broadcasts the weights
    (host memory: one full copy on rank 0 only)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    device = torch.device(device)
    ensure_process_group(device)
    config = AutoConfig.from_pretrained(model_path)
    model = build_sharded(config, device=device, dtype=dtype, param_dtype=param_dtype,
                          gradient_checkpointing=gradient_checkpointing, init_std=None)
    full = {}
    if dist.get_rank() == 0:
        full = AutoModelForCausalLM.from_pretrained(model_path, dtype=_dtype(dtype)).state_dict()
    load_full_state_dict(model, full)
    return model


# ---------------------------------------------------------------------------------------- state

def _tied_keys(model: torch.nn.Module) -> dict[str, str]:
    """{tied name: source name} (e.g. lm_head.weight -> model.embed_tokens.weight) when tied."""
    config = getattr(model, "config", None)
    if not getattr(config, "tie_word_embeddings", False):
        return {}
    tied = getattr(model, "_tied_weights_keys", None) or {}
    if isinstance(tied, dict):
        return dict(tied)
    return {k: "model.embed_tokens.weight" for k in tied}  # older transformers: a list of names


def full_state_dict(model: torch.nn.Module, *, drop_tied: bool = True) -> dict[str, torch.Tensor]:
    """The whole model's weights on rank 0's CPU (other ranks get {}); all ranks must call it.
    Tied duplicates are dropped, as save_pretrained stores them."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    reshard(model)
    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if drop_tied:
        for name in _tied_keys(model):
            state.pop(name, None)
    return state


def iter_full_tensors(model: torch.nn.Module, dtype: torch.dtype | None = None):
    """(name, full tensor) for every weight, one tensor at a time, on every rank (for weight sync:
    each rank's rollout engine needs all weights). A collective: all ranks must consume it whole,
    in the same order. At most one gathered tensor is alive at a time per consumer step."""
    tied = _tied_keys(model)
    if is_sharded(model):
        reshard(model)
    for name, value in model.state_dict().items():
        if name in tied:
            continue
        full = value.full_tensor() if hasattr(value, "full_tensor") else value
        full = full.detach()
        yield name, (full.to(dtype) if dtype is not None and full.is_floating_point() else full)


def load_full_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a full state dict held by rank 0 (others pass {}) into the sharded model."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    if dist.get_rank() == 0:
        state = dict(state)
        for name, source in _tied_keys(model).items():
            if name not in state and source in state:
                state[name] = state[source]
        master = next(model.parameters()).dtype
        state = {k: v.to(master) if v.is_floating_point() else v for k, v in state.items()}
    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))


def full_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer state gathered to rank 0's CPU (keyed by parameter names); all ranks call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load a gathered optimizer state (rank 0's; others pass {}) into the sharded optimizer.

    The optimizer is first given its state tensors by one step with zero gradients and lr 0 (the
    loader needs existing local state to know the devices; AdamW with zero gradients and lr 0
    changes no weight); the loaded state then replaces all of it, lr and step count included."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    if not optimizer.state:
        saved = [group["lr"] for group in optimizer.param_groups]
        for group in optimizer.param_groups:
            group["lr"] = 0.0
            for p in group["params"]:
                p.grad = torch.zeros_like(p)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        for group, lr in zip(optimizer.param_groups, saved):
            group["lr"] = lr
    set_optimizer_state_dict(model, optimizer, optim_state_dict=state,
                             options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))


class CheckpointView:
    """Stands in for the model in `RunDir.save_checkpoint` (rank 0): `state_dict()` is the gathered
    full state, and `save_pretrained` is a meta-device copy of the architecture in the stored dtype,
    so config.json names the dtype the weights are stored in (the live model's params are fp32
    DTensor shards)."""

    def __init__(self, model: torch.nn.Module, state: dict[str, torch.Tensor], stored_dtype: torch.dtype):
        from transformers import AutoModelForCausalLM

        self._state = state
        with torch.device("meta"):
            self._shell = AutoModelForCausalLM.from_config(copy.deepcopy(model.config), dtype=stored_dtype)
        generation_config = getattr(model, "generation_config", None)
        if generation_config is not None:
            self._shell.generation_config = copy.deepcopy(generation_config)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._state

    def save_pretrained(self, *args, **kwargs):
        return self._shell.save_pretrained(*args, **kwargs)


# ---------------------------------------------------------------------------------------- update

def pad_micro_batches(micros: list[list[int]]) -> list[list[int]]:
    """Append empty micro-batches so every rank runs as many forward/backward passes as the rank
    with the most (FSDP all-gathers in each; a rank that skipped one would hang the others)."""
    from azrlib.trainer import dist as azr_dist

    most = azr_dist.all_reduce_max(len(micros))
    return list(micros) + [[] for _ in range(most - len(micros))]


def dummy_batch(pad_id: int):
    """A one-token-prompt, one-token-response batch whose loss is masked to zero (an empty
    micro-batch's stand-in: it joins the collectives and contributes nothing)."""
    from azrlib.trainer.ppo import pack

    batch = pack([[pad_id]], [[pad_id]], [[0.0]], [0.0], pad_id)
    batch.response_mask.zero_()
    return batch


def norm_value(norm) -> float:
    """clip_grad_norm_'s result as a float (a DTensor for sharded gradients)."""
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
