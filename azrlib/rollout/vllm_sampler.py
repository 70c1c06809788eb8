"""`VLLMSampler`: the rollout interface on vLLM's offline engine (`vllm.LLM`), as AZR/veRL use.

vLLM is optional: it is imported inside the class, so `import azrlib.rollout` works without it, and
constructing a `VLLMSampler` without it raises an ImportError saying how to install it
(`pip install -e .[vllm]`). Written against vLLM's V1 engine (>= 0.8.5; `logprobs_mode` from 0.10).

Running it on CPU (vLLM's CPU backend):

* `VLLM_CPU_KVCACHE_SPACE=1` (GiB of KV cache; the default is larger than small machines have)
  and `HF_HUB_OFFLINE=1` (local checkpoints, no network) must be set before the engine starts;
  the constructor sets both when they are unset.
* vLLM starts its engine in a separate process with the `spawn` method, which re-imports the
  main script: a script that builds a `VLLMSampler` needs an `if __name__ == "__main__":` guard.
* vLLM's CPU attention backend (CPU_ATTN) takes head sizes 32, 64, 80, 96, 112, 128, 160, 192,
  224, 256 only: a tiny test model needs head_dim >= 32 (the tests use hidden 128 / 4 heads).

Log-probabilities (see `base` for the two lists):

* `logprobs` come from vLLM's sampler with `SamplingParams(logprobs=0)` (the sampled token only)
  and the engine's `logprobs_mode="raw_logprobs"`: the log-softmax of the raw model logits,
  before temperature, penalties and top-p (vLLM docs, `vllm.v1.sample.sampler.Sampler`). That is
  the V1 default and is what HFSampler's `logprobs` hold. vLLM's V0 engine returned *processed*
  log-probs (after temperature); it is not supported here.
* `sampling_logprobs`: vLLM returns one of the two kinds per engine, not both. They are filled
  where they follow from the raw ones: equal to `logprobs` at temperature 1 with top_p 1 (AZR's
  rollout setting), zeros for greedy decoding; otherwise None.
* `score` uses `prompt_logprobs=0` on prompt + continuation, which vLLM also computes from raw
  logits; so only temperature 1 is supported there (use HFSampler.score for other temperatures).
  Agreement with HFSampler in fp32 is checked by the tests to 1e-4 (two different attention and
  matmul kernels; the 1e-5 HFSampler meets against its own forward pass is not assumed).

Tested: against vLLM's CPU build (vllm-cpu 0.32.0, `make venv-vllm`, run by .ci/vllm.sh: the
`vllm`-marked tests in tests/rollout/test_rollout.py and tests/rollout/test_vllm.py, and a
quick-preset training run with kill and resume); the collective_rpc and in-process weight paths
both run there. The GPU-only parts (sleep mode, CUDA graphs) and `apply_model` have run only
against stand-in `vllm` packages (tests/rollout/test_gpu_path.py); benchmarks/gpu_check.sh checks
them on a GPU.

Seeds: vLLM seeds each request; for a call seed s, prompt i gets a seed mixed from (s, i) with
numpy's SeedSequence and its n samples get that seed + j (vLLM derives a parallel-sampling child's
seed as seed + index). Same seed and arguments -> same samples; different seeds give unrelated
streams, even for consecutive seeds.

Weight sync (`load_weights`): takes a state dict or a stream of (name, tensor) pairs (Hugging Face
names) and hands them to the vLLM model's own `load_weights`, which maps them onto vLLM's fused
qkv/gate-up parameters and skips a tied lm_head. vLLM (>= ~0.30) processes weights after loading
(the CPU backend repacks linear weights and drops their loaders), so a second `load_weights` alone
fails; the load is wrapped in vLLM's in-place reload (the worker's `reload_weights`, or its
layerwise-reload begin/end around the buckets), which restores the loadable layout first and
re-processes afterwards. How the weights reach the model is detected at run time, first match wins:

1. in process: the worker (V1 with the engine in this process: `distributed_executor_backend=
   "external_launcher"` under torchrun, or `VLLM_ENABLE_V1_MULTIPROCESSING=0`) or the model (V0)
   is reachable from `LLM`, through `llm.llm_engine.model_executor.driver_worker.worker` or the
   in-process client's equivalent. Tensors are passed as they are (GPU tensors stay on the GPU):
   the colocated path of veRL and TRL.
2. `LLM.collective_rpc` with `WeightSyncWorkerExtension` (installed with `worker_extension_cls`):
   the engine runs in other processes, so tensors are serialised with `safetensors.torch.save` in
   buckets of `weight_bucket_bytes` and each bucket is one RPC.
3. `LLM.apply_model` (vLLM versions without worker extensions): the same buckets, loaded by a
   function run on each worker's model.
The prefix cache is reset afterwards: cached KV blocks were computed with the old weights.

Sleep mode (`enable_sleep_mode=True`; CUDA, vLLM >= 0.7.3): `sleep()` releases the engine's GPU
memory for the trainer's update; the next `load_weights` wakes it. Where `wake_up` takes tags
(vLLM >= 0.8.3), `sleep` uses level 2 (weights discarded, since the sync replaces them anyway), and
`load_weights` wakes the weights first, loads, then re-allocates the KV cache, so the KV cache and
the trainer's gradients never coexist. Older versions sleep at level 1 (weights offloaded to CPU)
and wake everything at once. Both are checked on the `LLM` class at construction; without them
(or when the engine refuses sleep mode, e.g. on CPU) the sampler keeps its memory and says so.
`gpu_memory_utilization` (AZR: 0.4) bounds what the engine takes when awake.
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from azrlib.rollout.base import (
    GREEDY_TEMPERATURE,
    Completion,
    Sampler,
    check_generate_args,
    check_score_args,
)
from azrlib.rollout.vllm_worker import (  # noqa: F401 - re-exported: the engine-side half
    WeightSyncWorkerExtension,
    _worker_model,
    _reload_begin,
    _reload_end,
    _load_serialized,
    _derive_seed,
    _state_dict_bytes,
    _buckets,
    _in_process_target,
    _load_in_process,
)

EXTENSION_CLASS = "azrlib.rollout.vllm_worker.WeightSyncWorkerExtension"
WEIGHT_BUCKET_BYTES = 512 << 20


def sleep_support(llm_class: type) -> tuple[bool, bool]:
    """(has sleep/wake_up, wake_up takes tags) for a vLLM `LLM` class (feature check, not version)."""
    sleep, wake = getattr(llm_class, "sleep", None), getattr(llm_class, "wake_up", None)
    if not (callable(sleep) and callable(wake)):
        return False, False
    try:
        tags = "tags" in inspect.signature(wake).parameters
    except (TypeError, ValueError):
        tags = False
    return True, tags


class VLLMSampler(Sampler):
    """Sampler on `vllm.LLM`.

    model_path: local Hugging Face checkpoint directory.
    dtype: vLLM dtype ("float32" for exact log-prob comparisons; "bfloat16" or "auto" for speed).
    seed: engine seed (vLLM's global seed; per-call seeds are passed per request).
    gpu_memory_utilization: fraction of the GPU the engine may take (KV cache included) when
        awake; None leaves vLLM's default (0.9). AZR: 0.4, colocated with training.
    enable_sleep_mode: let `sleep()` release the engine's GPU memory during the trainer's update.
    weight_bucket_bytes: serialised bytes per RPC when weights go to another process.
    llm_kwargs: passed to `vllm.LLM` (e.g. max_model_len, tensor_parallel_size,
        distributed_executor_backend="external_launcher" under torchrun).
    """

    accepts_weight_iterator = True  # load_weights takes a stream (see weight_sync.sync_weights)

    def __init__(
        self,
        model_path: str | Path,
        *,
        dtype: str = "float32",
        seed: int = 0,
        enforce_eager: bool = True,
        gpu_memory_utilization: float | None = None,
        enable_sleep_mode: bool = False,
        weight_bucket_bytes: int = WEIGHT_BUCKET_BYTES,
        **llm_kwargs: object,
    ) -> None:
        path = Path(model_path)
        if not path.is_dir():
            raise FileNotFoundError(f"model directory {str(path)!r} does not exist")
        if gpu_memory_utilization is not None and not 0 < gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization!r}")
        try:
            from vllm import LLM
        except ImportError as error:
            raise ImportError("VLLMSampler needs vllm: pip install -e .[vllm]") from error
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")

        kwargs: dict[str, object] = dict(
            model=str(path),
            dtype=dtype,
            seed=seed,
            enforce_eager=enforce_eager,
            worker_extension_cls=EXTENSION_CLASS,
            logprobs_mode="raw_logprobs",
        )
        if gpu_memory_utilization is not None:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        has_sleep, self._wake_tags = sleep_support(LLM)
        if enable_sleep_mode and not has_sleep:
            warnings.warn("this vLLM has no sleep mode (LLM.sleep/wake_up): the engine keeps its GPU memory "
                          "during updates; lower gpu_memory_utilization if training runs out of memory",
                          RuntimeWarning, stacklevel=2)
        if enable_sleep_mode and has_sleep:
            kwargs["enable_sleep_mode"] = True
        kwargs.update(llm_kwargs)
        optional = {"worker_extension_cls", "logprobs_mode", "enable_sleep_mode"} - set(llm_kwargs)
        self.llm, dropped = self._construct(LLM, kwargs, optional)
        if "enable_sleep_mode" in dropped and enable_sleep_mode:
            warnings.warn(f"vLLM refused sleep mode ({dropped['enable_sleep_mode']}); the engine keeps its GPU memory "
                          "during updates", RuntimeWarning, stacklevel=2)
        self.sleep_mode = bool(kwargs.get("enable_sleep_mode")) and "enable_sleep_mode" not in dropped
        self._extension = "worker_extension_cls" in kwargs and "worker_extension_cls" not in dropped
        self.weight_bucket_bytes = weight_bucket_bytes
        self._asleep = False
        self._weights_discarded = False
        self.weight_path: str | None = None  # how the last load_weights reached the model
        # prompts are tokenized here and passed as ids: vLLM's own AutoTokenizer would re-split the tiny
        # base's text with Qwen2's regex (azrlib.models.load_tokenizer)
        from azrlib.models import load_tokenizer
        self.tokenizer = load_tokenizer(path)
        self.model_path = path

    @staticmethod
    def _construct(llm_class, kwargs: dict, optional: set[str]):
        """LLM(**kwargs), dropping optional arguments this vLLM rejects: unknown keywords (older
        versions: no logprobs_mode before 0.10, no worker_extension_cls before 0.8.x, no sleep mode
        before 0.7.3) or sleep mode on a platform without it. Returns (llm, {dropped: reason})."""
        dropped: dict[str, str] = {}
        while True:
            try:
                return llm_class(**kwargs), dropped
            except (TypeError, ValueError, NotImplementedError, RuntimeError) as error:
                text = str(error)
                culprit = next((k for k in sorted(optional) if k in kwargs and k in text), None)
                if culprit is None and "sleep" in text.lower() and "enable_sleep_mode" in kwargs \
                        and "enable_sleep_mode" in optional:
                    culprit = "enable_sleep_mode"
                if culprit is None or isinstance(error, RuntimeError) and culprit != "enable_sleep_mode":
                    raise
                dropped[culprit] = f"{type(error).__name__}: {text[:200]}"
                del kwargs[culprit]

    # ---------------------------------------------------------------------------------------
    # Memory: sleep / wake

    def sleep(self) -> bool:
        """Release the engine's GPU memory until the next `load_weights` (or generate/score);
        returns whether anything was released (False without sleep mode)."""
        if not self.sleep_mode or self._asleep:
            return False
        level = 2 if self._wake_tags else 1
        self.llm.sleep(level=level)
        self._asleep = True
        self._weights_discarded = level == 2
        return True

    def wake_up(self) -> None:
        """Re-allocate everything `sleep` released (weights from CPU at level 1)."""
        if not self._asleep:
            return
        if self._weights_discarded:
            raise RuntimeError("vLLM's weights were discarded by sleep(level=2); call load_weights before sampling")
        self.llm.wake_up()
        self._asleep = False

    @property
    def asleep(self) -> bool:
        return self._asleep

    def generate(
        self,
        prompts: list[str],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> list[list[Completion]]:
        from vllm import SamplingParams

        check_generate_args(prompts, n, temperature, top_p, max_new_tokens, stop, seed)
        if not prompts:
            return []
        self.wake_up()
        greedy = temperature < GREEDY_TEMPERATURE
        prompt_ids = self._tokenize(prompts)
        params = [
            SamplingParams(
                n=n,
                temperature=0.0 if greedy else float(temperature),
                top_p=float(top_p),
                max_tokens=max_new_tokens,
                stop=list(stop) if stop else None,
                include_stop_str_in_output=True,
                skip_special_tokens=True,
                seed=None if seed is None else _derive_seed(seed, i),
                logprobs=0,
            )
            for i in range(len(prompts))
        ]
        outputs = self.llm.generate(self._token_prompts(prompt_ids), params, use_tqdm=False)

        results = []
        for i, request in enumerate(outputs):
            samples = sorted(request.outputs, key=lambda out: out.index)
            if len(samples) != n:
                raise RuntimeError(f"vLLM returned {len(samples)} samples for prompt {i}, expected {n}")
            row = []
            for j, out in enumerate(samples):
                token_ids = list(out.token_ids)
                logprobs = self._sampled_logprobs(token_ids, out.logprobs, i)
                if greedy:
                    sampling = [0.0] * len(token_ids)
                elif temperature == 1.0 and top_p == 1.0:
                    sampling = list(logprobs)
                else:
                    sampling = None
                finish_reason, stop_reason = self._finish(out.finish_reason, out.stop_reason, i)
                row.append(Completion(
                    prompt_index=i,
                    sample_index=j,
                    token_ids=token_ids,
                    text=out.text,
                    logprobs=logprobs,
                    finish_reason=finish_reason,
                    sampling_logprobs=sampling,
                    stop_reason=stop_reason,
                    prompt_token_ids=prompt_ids[i],
                ))
            results.append(row)
        return results

    def score(
        self,
        prompts: Sequence[str | Sequence[int]],
        completions_token_ids: Sequence[Sequence[int]],
        temperature: float = 1.0,
    ) -> list[list[float]]:
        from vllm import SamplingParams

        check_score_args(prompts, completions_token_ids, temperature)
        if temperature != 1.0:
            raise NotImplementedError("VLLMSampler.score gives temperature-1 log-probs only "
                                      "(vLLM's prompt log-probs are raw); use HFSampler.score")
        self.wake_up()
        prompt_ids = [self._tokenize([p])[0] if isinstance(p, str) else [int(t) for t in p] for p in prompts]
        scored = [k for k, c in enumerate(completions_token_ids) if len(c) > 0]
        results: list[list[float]] = [[] for _ in prompts]
        if not scored:
            return results
        sequences = [prompt_ids[k] + [int(t) for t in completions_token_ids[k]] for k in scored]
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        outputs = self.llm.generate(self._token_prompts(sequences), params, use_tqdm=False)
        for k, sequence, request in zip(scored, sequences, outputs):
            start = len(prompt_ids[k])
            per_position = request.prompt_logprobs
            values = []
            for position in range(start, len(sequence)):
                entry = per_position[position]
                token = sequence[position]
                if entry is None or token not in entry:
                    raise RuntimeError(f"vLLM returned no prompt log-prob for token {token} at {position}")
                values.append(float(entry[token].logprob))
            results[k] = values
        return results

    def load_weights(self, state_dict: Mapping[str, object] | Iterable[tuple[str, object]]) -> None:
        """Replace the engine's weights with `state_dict` (a mapping, or a stream of (name, tensor)
        pairs, Hugging Face names; consumed once). Wakes a sleeping engine: weights first, then the
        KV cache once they are loaded."""
        items = state_dict.items() if isinstance(state_dict, Mapping) else state_dict
        if self._asleep:
            self.llm.wake_up(tags=["weights"]) if self._wake_tags else self.llm.wake_up()
        sent = 0

        def counted():
            nonlocal sent
            for name, tensor in items:
                sent += 1
                yield name, tensor

        target = _in_process_target(self.llm)
        if target is not None:
            self.weight_path = "in_process"
            _load_in_process(target, counted())
        elif self._extension and callable(getattr(self.llm, "collective_rpc", None)):
            self.weight_path = "collective_rpc"
            self.llm.collective_rpc("azr_reload_begin")
            self._load_in_buckets(counted(), lambda payload: self.llm.collective_rpc("azr_load_weights", args=(payload,)))
            self.llm.collective_rpc("azr_reload_end")
        elif callable(getattr(self.llm, "apply_model", None)):
            self.weight_path = "apply_model"
            self._load_in_buckets(counted(), lambda payload: self.llm.apply_model(functools.partial(_load_serialized, payload)))
        else:
            raise RuntimeError("this vLLM offers no way to load weights (no in-process model, collective_rpc "
                               "with a worker extension, or apply_model)")
        if sent == 0:
            raise ValueError("load_weights got no tensors")
        if self._asleep:
            if self._wake_tags:
                self.llm.wake_up(tags=["kv_cache"])
            self._asleep = False
            self._weights_discarded = False
        # KV blocks cached for shared prefixes were computed with the old weights.
        self.llm.reset_prefix_cache()

    def _load_in_buckets(self, items: Iterable[tuple[str, object]], send) -> None:
        for bucket in _buckets(items, self.weight_bucket_bytes):
            counts = send(_state_dict_bytes(bucket))
            if any(count != len(bucket) for count in counts):
                raise RuntimeError(f"vLLM workers loaded {counts} tensors of a bucket of {len(bucket)}")

    # ---------------------------------------------------------------------------------------

    def _tokenize(self, prompts: Sequence[str]) -> list[list[int]]:
        ids = [list(self.tokenizer(p)["input_ids"]) for p in prompts]
        for i, prompt_ids in enumerate(ids):
            if not prompt_ids:
                raise ValueError(f"prompt {i} tokenises to nothing: there is nothing to condition on")
        return ids

    @staticmethod
    def _token_prompts(prompt_ids: list[list[int]]) -> list[object]:
        from vllm.inputs import TokensPrompt

        return [TokensPrompt(prompt_token_ids=ids) for ids in prompt_ids]

    @staticmethod
    def _sampled_logprobs(token_ids: list[int], per_step: object, prompt_index: int) -> list[float]:
        if per_step is None or len(per_step) != len(token_ids):  # type: ignore[arg-type]
            raise RuntimeError(f"vLLM returned no per-token log-probs for prompt {prompt_index}")
        values = []
        for token, entry in zip(token_ids, per_step):  # type: ignore[call-overload]
            if token not in entry:
                raise RuntimeError(f"vLLM's log-probs for prompt {prompt_index} lack sampled token {token}")
            values.append(float(entry[token].logprob))
        return values

    @staticmethod
    def _finish(finish_reason: str | None, stop_reason: object, prompt_index: int) -> tuple[str, str | None]:
        """vLLM's (finish_reason, stop_reason) -> ours: a stop string is reported as "stop" with
        the string; EOS as "stop" with stop_reason None (or a stop-token id) -> "eos"."""
        if finish_reason == "length":
            return "length", None
        if finish_reason == "stop":
            if isinstance(stop_reason, str):
                return "stop", stop_reason
            return "eos", None
        raise RuntimeError(f"vLLM ended prompt {prompt_index}'s sample with finish_reason {finish_reason!r}")
