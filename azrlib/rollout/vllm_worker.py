"""The engine-side half of the vLLM weight sync: the worker extension vLLM mixes into its worker
class (`worker_extension_cls`) and the helpers that load a trainer state dict into the engine's
weights, in the engine's own process or in the trainer's. `vllm_sampler` is the trainer-side half
(what is tested where: its module docstring).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

# Where the worker (V1) or the model object (V0) sits when vLLM runs it in this process.
_IN_PROCESS_PATHS = (
    ("llm_engine", "model_executor", "driver_worker", "worker"),  # V1, engine core in this process
    ("llm_engine", "engine_core", "engine_core", "model_executor", "driver_worker", "worker"),
    ("llm_engine", "model_executor", "driver_worker", "model_runner", "model"),  # V0
)


class WeightSyncWorkerExtension:
    """Mixed into vLLM's worker class (`worker_extension_cls`); its methods run inside the worker
    process and are called with `LLM.collective_rpc(name, args=...)`. A sync is
    `azr_reload_begin`, one `azr_load_weights` per bucket, `azr_reload_end`."""

    def azr_reload_begin(self) -> None:
        """Prepare the model for an in-place reload (vLLM's layerwise reload, where it exists)."""
        _reload_begin(self)

    def azr_load_weights(self, payload: bytes | str) -> int:
        """Load safetensors bytes (or a path to a safetensors file) into the worker's model;
        returns the number of tensors loaded."""
        from safetensors.torch import load, load_file

        weights = load_file(payload) if isinstance(payload, str) else load(payload)
        _worker_model(self).load_weights(weights=weights.items())
        return len(weights)

    def azr_reload_end(self) -> None:
        """Re-process the loaded weights into the kernels' layout (CPU backend: repacked linears)."""
        _reload_end(self)


def _worker_model(worker):
    runner = worker.model_runner
    return runner.model if getattr(runner, "model", None) is not None else runner.get_model()


def _reload_begin(worker) -> None:
    """vLLM >= ~0.30 processes weights after loading (the CPU backend repacks linear weights and
    drops their loaders), so `model.load_weights` cannot run twice; its layerwise reload restores
    the loadable layout first and re-processes afterwards. Older vLLM loads in place as is."""
    try:
        from vllm.config import set_current_vllm_config
        from vllm.model_executor.model_loader.reload import initialize_layerwise_reload
    except ImportError:
        return
    with set_current_vllm_config(worker.vllm_config):
        initialize_layerwise_reload(_worker_model(worker))


def _reload_end(worker) -> None:
    try:
        from vllm.config import set_current_vllm_config
        from vllm.model_executor.model_loader.reload import finalize_layerwise_reload
    except ImportError:
        return
    with set_current_vllm_config(worker.vllm_config):
        finalize_layerwise_reload(_worker_model(worker), worker.vllm_config.model_config)


def _load_serialized(payload: bytes | str, model) -> int:
    """Load one serialised bucket into a vLLM model (`apply_model` path); returns its tensor count."""
    from safetensors.torch import load, load_file

    weights = load_file(payload) if isinstance(payload, str) else load(payload)
    model.load_weights(weights=weights.items())
    return len(weights)


def _derive_seed(seed: int, prompt_index: int) -> int:
    import numpy as np

    # 31 bits keeps seed + sample index a valid seed everywhere vLLM passes it on.
    return int(np.random.SeedSequence([seed, prompt_index]).generate_state(1, dtype=np.uint32)[0] >> 1)


def _state_dict_bytes(items: Iterable[tuple[str, object]]) -> bytes:
    """safetensors bytes of (name, tensor) pairs; tensors sharing storage (tied embeddings) are
    cloned, since safetensors refuses aliases."""
    import torch
    from safetensors.torch import save

    seen: set[int] = set()
    tensors = {}
    for name, tensor in items:
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"state_dict[{name!r}] is a {type(tensor).__name__}, not a tensor")
        tensor = tensor.detach().to("cpu").contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen:
            tensor = tensor.clone()
        seen.add(pointer)
        tensors[name] = tensor
    return save(tensors)


def _buckets(items: Iterable[tuple[str, object]], limit: int) -> Iterator[list[tuple[str, object]]]:
    """Consecutive groups of (name, tensor) of about `limit` bytes (a larger tensor is its own)."""
    bucket: list[tuple[str, object]] = []
    size = 0
    for name, tensor in items:
        bucket.append((name, tensor))
        size += tensor.numel() * tensor.element_size()  # type: ignore[attr-defined]
        if size >= limit:
            yield bucket
            bucket, size = [], 0
    if bucket:
        yield bucket


def _in_process_target(llm: object):
    """vLLM's worker (with `model_runner`) or, for V0, model object (with `load_weights`) when the
    engine runs in this process, else None."""
    for path in _IN_PROCESS_PATHS:
        target = llm
        try:
            for attr in path:
                target = getattr(target, attr)
        except Exception:  # noqa: BLE001 - vLLM proxies may raise anything for a missing attribute
            continue
        if getattr(target, "model_runner", None) is not None or callable(getattr(target, "load_weights", None)):
            return target
    return None


def _load_in_process(target, weights: Iterable[tuple[str, object]]) -> None:
    """Stream (name, tensor) pairs into an in-process worker (tensors passed as they are)."""
    if getattr(target, "model_runner", None) is None:  # a model object
        target.load_weights(weights=weights)
        return
    reload = getattr(target, "reload_weights", None)
    if callable(reload):  # vLLM's in-place reload (restore layout, load, re-process)
        reload(weights_iterator=weights, is_checkpoint_format=True)
    else:
        _worker_model(target).load_weights(weights=weights)
