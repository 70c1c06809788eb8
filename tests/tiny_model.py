"""Build a tiny random Qwen2 checkpoint (model + byte-level BPE tokenizer) for tests and benchmarks.

`build_tiny_checkpoint(directory)` trains a byte-level BPE tokenizer on synthetic Python-like text
(programs in the style of AZR's `def f(...)` tasks, plus the `<think>`/`<answer>` tags its prompts
use), wraps it as a `PreTrainedTokenizerFast` with Qwen2.5-base special tokens (`<|endoftext|>` is
both pad and eos, as in the Qwen2.5 base checkpoints, so padding must be tracked by the attention
mask and never by token id), builds a randomly initialised `Qwen2ForCausalLM` whose vocabulary is
the tokenizer's, and saves both with `save_pretrained`. Loading that directory back exercises the
same `AutoTokenizer` / `AutoModelForCausalLM` path as a real Qwen checkpoint.

Nothing here is from AZR: it exists so the rollout engines can be tested in seconds on a CPU.
"""

from __future__ import annotations

import random
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Prompts of different lengths (left padding) and shapes for the sampler tests
SAMPLER_PROMPTS = [
    "def f(x):\n    return x + 3",
    "assert f(",
    "<think> the function adds 7 to a </think>\n<answer> f(4) == 11 </answer>\nprint(f('abc'), 12)\n    for i in",
]

_NAMES = ["x", "y", "s", "n", "xs", "d", "a", "b", "total", "out", "i", "j", "k", "acc", "word"]
_WORDS = ["hello", "world", "absolute", "zero", "reasoner", "python", "answer", "think", "abc"]
_LINES = [
    "def f({a}):",
    "    return {a} + {k}",
    "    return [{b} * {k} for {b} in range({a})]",
    "    {b} = sorted({a})",
    "    for {b} in range({k}):",
    "        {c} += {b} * {k}",
    "    if {a} % {k} == 0:",
    "        return '{w}'",
    "    return {{'{w}': {a}, 'n': {k}}}",
    "    {c} = ''.join(reversed({a}))",
    "    while {a} > {k}:",
    "        {a} -= {k}",
    "<think> the function adds {k} to {a} </think>",
    "<answer> f({k}) == {k2} </answer>",
    "assert f({k}) == {k2}",
    "print(f('{w}'), {k})",
]


def synthetic_corpus(num_lines: int = 600, seed: int = 0) -> list[str]:
    """Deterministic Python-like lines to train the tokenizer on (and to build prompts from)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(num_lines):
        template = rng.choice(_LINES)
        a, b, c = rng.sample(_NAMES, 3)
        lines.append(
            template.format(a=a, b=b, c=c, k=rng.randint(0, 99), k2=rng.randint(0, 999), w=rng.choice(_WORDS))
        )
    return lines


def train_tokenizer(vocab_size: int = 512, num_lines: int = 600, seed: int = 0):
    """Byte-level BPE tokenizer (GPT-2/Qwen style) wrapped as a `PreTrainedTokenizerFast`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = synthetic_corpus(num_lines, seed)
    tokenizer.train_from_iterator(["\n".join(corpus[i : i + 8]) for i in range(0, len(corpus), 8)], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        padding_side="left",
    )


def build_tiny_model(
    vocab_size: int,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 2048,
    eos_token_id: int = 0,
    seed: int = 0,
):
    """A randomly initialised fp32 `Qwen2ForCausalLM` (tied embeddings, like the small Qwen2.5s)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
    )
    # A larger init than the default 0.02 so the random model's distribution is far from uniform
    # (log-prob and greedy tests are vacuous on a near-uniform model).
    config.initializer_range = 0.2
    with torch.random.fork_rng():  # seeded weights without touching the caller's RNG state
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config).eval()
    return model


def build_tiny_checkpoint(
    directory: str | Path,
    *,
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int | None = None,
    seed: int = 0,
) -> Path:
    """Train a tokenizer, build a random Qwen2 over its vocabulary, save both to `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(vocab_size=vocab_size, seed=seed)
    model = build_tiny_model(
        len(tokenizer),
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        intermediate_size=intermediate_size,
        eos_token_id=tokenizer.eos_token_id,
        seed=seed,
    )
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory
