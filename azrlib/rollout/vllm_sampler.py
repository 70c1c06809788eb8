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

Status: vLLM was not installed where this was written, so this module follows vLLM's documented
API and source (LLM, SamplingParams, TokensPrompt, collective_rpc, worker_extension_cls,
reset_prefix_cache), and its glue code was run only against a stand-in `vllm` package backed by
HFSampler. The `vllm`-marked tests are the check to run where vLLM is installed.

Seeds: vLLM seeds each request; for a call seed s, prompt i gets a seed mixed from (s, i) with
numpy's SeedSequence and its n samples get that seed + j (vLLM derives a parallel-sampling child's
seed as seed + index). Same seed and arguments -> same samples; different seeds give unrelated
streams, even for consecutive seeds.

Weight sync (`load_weights`): vLLM keeps the model inside its worker process(es), so the trainer's
state dict is serialised with `safetensors.torch.save` and sent with `LLM.collective_rpc` to a
method of `WeightSyncWorkerExtension` (installed with `worker_extension_cls`), which calls the
vLLM model's own `load_weights` (it maps Hugging Face names onto vLLM's fused qkv/gate-up
parameters and skips a tied lm_head); then the prefix cache is reset, since cached KV blocks were
computed with the old weights. State dicts over `_INLINE_WEIGHT_BYTES` go through a temporary
safetensors file instead of the RPC message. veRL syncs weights in place through shared GPU memory
(FSDP -> vLLM sharding manager); that path needs a GPU and is not reproduced.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from azrlib.rollout.base import (
    GREEDY_TEMPERATURE,
    Completion,
    Sampler,
    check_generate_args,
    check_score_args,
)

EXTENSION_CLASS = "azrlib.rollout.vllm_sampler.WeightSyncWorkerExtension"
_INLINE_WEIGHT_BYTES = 1 << 30


class WeightSyncWorkerExtension:
    """Mixed into vLLM's worker class (`worker_extension_cls`); its methods run inside the worker
    process and are called with `LLM.collective_rpc(name, args=...)`."""

    def azr_load_weights(self, payload: bytes | str) -> int:
        """Load safetensors bytes (or a path to a safetensors file) into the worker's model;
        returns the number of tensors loaded."""
        from safetensors.torch import load, load_file

        weights = load_file(payload) if isinstance(payload, str) else load(payload)
        runner = self.model_runner  # type: ignore[attr-defined]
        model = runner.model if getattr(runner, "model", None) is not None else runner.get_model()
        model.load_weights(weights=weights.items())
        return len(weights)


def _derive_seed(seed: int, prompt_index: int) -> int:
    import numpy as np

    # 31 bits keeps seed + sample index a valid seed everywhere vLLM passes it on.
    return int(np.random.SeedSequence([seed, prompt_index]).generate_state(1, dtype=np.uint32)[0] >> 1)


def _state_dict_bytes(state_dict: Mapping[str, object]) -> bytes:
    """safetensors bytes of a state dict; tensors sharing storage (tied embeddings) are cloned,
    since safetensors refuses aliases."""
    import torch
    from safetensors.torch import save

    seen: set[int] = set()
    tensors = {}
    for name, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"state_dict[{name!r}] is a {type(tensor).__name__}, not a tensor")
        tensor = tensor.detach().to("cpu").contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen:
            tensor = tensor.clone()
        seen.add(pointer)
        tensors[name] = tensor
    return save(tensors)


class VLLMSampler(Sampler):
    """Sampler on `vllm.LLM`.

    model_path: local Hugging Face checkpoint directory.
    dtype: vLLM dtype ("float32" for exact log-prob comparisons; "bfloat16" or "auto" for speed).
    seed: engine seed (vLLM's global seed; per-call seeds are passed per request).
    llm_kwargs: passed to `vllm.LLM` (e.g. gpu_memory_utilization, max_model_len,
        tensor_parallel_size, enforce_eager).
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        dtype: str = "float32",
        seed: int = 0,
        enforce_eager: bool = True,
        **llm_kwargs: object,
    ) -> None:
        path = Path(model_path)
        if not path.is_dir():
            raise FileNotFoundError(f"model directory {str(path)!r} does not exist")
        try:
            from vllm import LLM
        except ImportError as error:
            raise ImportError("VLLMSampler needs vllm: pip install -e .[vllm]") from error
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")

        kwargs = dict(
            model=str(path),
            dtype=dtype,
            seed=seed,
            enforce_eager=enforce_eager,
            worker_extension_cls=EXTENSION_CLASS,
            logprobs_mode="raw_logprobs",
        )
        kwargs.update(llm_kwargs)
        try:
            self.llm = LLM(**kwargs)
        except TypeError as error:
            # vLLM < 0.10 has no logprobs_mode; its V1 engine always returns raw log-probs.
            if "logprobs_mode" not in str(error) or "logprobs_mode" in llm_kwargs:
                raise
            del kwargs["logprobs_mode"]
            self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.model_path = path

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

    def load_weights(self, state_dict: Mapping[str, object]) -> None:
        payload = _state_dict_bytes(state_dict)
        if len(payload) <= _INLINE_WEIGHT_BYTES:
            counts = self.llm.collective_rpc("azr_load_weights", args=(payload,))
        else:
            with tempfile.TemporaryDirectory(prefix="azr_weights_") as directory:
                file = Path(directory) / "model.safetensors"
                file.write_bytes(payload)
                counts = self.llm.collective_rpc("azr_load_weights", args=(str(file),))
        if any(count != len(state_dict) for count in counts):
            raise RuntimeError(f"vLLM workers loaded {counts} tensors of {len(state_dict)}")
        # KV blocks cached for shared prefixes were computed with the old weights.
        self.llm.reset_prefix_cache()

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
