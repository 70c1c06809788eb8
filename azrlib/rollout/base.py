"""The rollout interface shared by both engines: what a sample is, and what a sampler does.

A `Sampler` turns prompts into `n` sampled continuations each (`generate`), re-scores given
continuations by teacher forcing (`score`), and takes the trainer's current weights
(`load_weights`). `HFSampler` (transformers, own decoding loop) and `VLLMSampler` (vLLM offline
engine) implement it with the same semantics, so the trainer and the tests never care which one ran.

Log-probabilities. Every `Completion` carries two per-token lists, one float per entry of
`token_ids`:

* `logprobs`: log pi(y_t | x, y_<t) under the *unmodified* model distribution, i.e.
  `log_softmax(raw_logits)` at temperature 1 with no top-p truncation. This is pi_old for PPO/GRPO
  ratios (AZR rolls out at temperature 1, top-p 1, where the two lists coincide) and the quantity
  `score(..., temperature=1)` recomputes by teacher forcing.
* `sampling_logprobs`: log q(y_t | ...) under the distribution the token was actually drawn from:
  `log_softmax(raw_logits / temperature)`, restricted to the top-p nucleus and renormalised; 0.0 for
  greedy decoding (temperature 0 is a point mass). This is what importance weights against the
  behaviour policy and sampled-token entropy estimators need. `None` where an engine cannot provide
  it (see `VLLMSampler`).

Where this departs from AZR / veRL: veRL's vLLM rollout keeps no log-probs and recomputes pi_old
with the actor (`compute_log_prob`, logits divided by the rollout temperature); we return them from
the sampler so a trainer may skip that pass, and `score` is the recomputation when it is wanted.

Token/text conventions (both engines):

* `token_ids` are the generated tokens only (no prompt); an EOS token that ended the sample is the
  last entry (with its log-prob: the policy must learn to emit it), but never appears in `text`
  (special tokens are skipped when decoding).
* With a stop string, generation stops after the token whose decoded text completes it; `text` ends
  with the stop string (AZR's rollouts end with `</answer>`), truncated right after it even when
  that last token decodes to more characters; `finish_reason` is "stop" and `stop_reason` the string.
  If several stop strings complete at the same step, the one ending first in the text wins.
* `finish_reason`: "stop" (a stop string), "eos" (an end-of-sequence token), "length"
  (`max_new_tokens` reached without either), "error" (this prompt could not be sampled, e.g. its
  tokens + max_new_tokens exceed the model's positions: no tokens, `error` says why; the other
  prompts of the call are sampled as usual).
* `temperature` below `GREEDY_TEMPERATURE` (1e-5, vLLM's threshold) means greedy decoding.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

FinishReason = Literal["stop", "length", "eos", "error"]
FINISH_REASONS: tuple[str, ...] = ("stop", "length", "eos", "error")

# Temperatures below this sample greedily (vLLM's _SAMPLING_EPS); dividing logits by them would
# overflow anyway.
GREEDY_TEMPERATURE = 1e-5


@dataclass
class Completion:
    """One sampled continuation of one prompt."""

    prompt_index: int  # position of the prompt in the `prompts` list given to `generate`
    sample_index: int  # 0 .. n-1 among that prompt's samples
    token_ids: list[int]  # generated tokens only; includes a final EOS token when one ended it
    text: str  # decoded `token_ids`, special tokens skipped, cut right after a stop string
    logprobs: list[float]  # log-softmax of the raw (T=1, no top-p) logits at each sampled token
    finish_reason: FinishReason
    # Log-prob under the distribution actually sampled from (temperature, top-p); None if unknown.
    sampling_logprobs: list[float] | None = None
    stop_reason: str | None = None  # the stop string that ended it (finish_reason == "stop")
    prompt_token_ids: list[int] = field(default_factory=list, repr=False)  # tokenised prompt
    error: str | None = None  # why this prompt was not sampled (finish_reason == "error")

    def __post_init__(self) -> None:
        if self.finish_reason not in FINISH_REASONS:
            raise ValueError(f"finish_reason must be one of {FINISH_REASONS}, got {self.finish_reason!r}")
        if len(self.logprobs) != len(self.token_ids):
            raise ValueError(f"{len(self.logprobs)} logprobs for {len(self.token_ids)} tokens")
        if self.sampling_logprobs is not None and len(self.sampling_logprobs) != len(self.token_ids):
            raise ValueError(f"{len(self.sampling_logprobs)} sampling_logprobs for {len(self.token_ids)} tokens")


class Sampler(ABC):
    """Rollout engine interface. Implementations hold a `tokenizer` attribute (a transformers
    tokenizer) so callers can build prompts and decode ids the way the engine does."""

    tokenizer: object

    @abstractmethod
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
        """Sample `n` continuations of every prompt: result[i][j] is sample j of prompts[i].

        `seed` makes a call reproducible (same seed, same arguments, same weights -> same samples);
        None draws fresh randomness."""

    @abstractmethod
    def score(
        self,
        prompts: Sequence[str | Sequence[int]],
        completions_token_ids: Sequence[Sequence[int]],
        temperature: float = 1.0,
    ) -> list[list[float]]:
        """Teacher-forced log p(c_t | prompt, c_<t) of each given continuation, one list per
        (prompt, continuation) pair, computed from `log_softmax(logits / temperature)`.
        Prompts are text (tokenised as `generate` does) or token ids."""

    @abstractmethod
    def load_weights(self, state_dict: Mapping[str, object]) -> None:
        """Replace the policy's weights (names as in the Hugging Face model's `state_dict()`)."""


def check_generate_args(
    prompts: object,
    n: object,
    temperature: object,
    top_p: object,
    max_new_tokens: object,
    stop: object,
    seed: object,
) -> None:
    """Raise a ValueError/TypeError naming the offending argument; shared by both engines."""
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise TypeError(f"prompts must be a list of strings, got {type(prompts).__name__}")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise TypeError(f"prompts[{i}] must be a string, got {type(prompt).__name__}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if stop is not None:
        if isinstance(stop, str) or not isinstance(stop, Sequence):
            raise TypeError(f"stop must be a list of strings or None, got {type(stop).__name__}")
        for s in stop:
            if not isinstance(s, str) or not s:
                raise ValueError(f"stop strings must be non-empty strings, got {s!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")


def check_score_args(prompts: Sequence, completions_token_ids: Sequence, temperature: float) -> None:
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list (of strings or token-id lists), got a single string")
    if len(prompts) != len(completions_token_ids):
        raise ValueError(f"{len(prompts)} prompts but {len(completions_token_ids)} completions")
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"score needs a temperature > 0, got {temperature!r}")


def find_stop(text: str, stops: Sequence[str]) -> tuple[int, str] | None:
    """(end index, stop string) of the stop occurrence that ends first in `text`, or None."""
    best: tuple[int, str] | None = None
    for stop in stops:
        start = text.find(stop)
        if start >= 0 and (best is None or start + len(stop) < best[0]):
            best = (start + len(stop), stop)
    return best
