"""The tiny base's tokenizer: byte-level BPE trained on the pretraining documents, whose
pre-tokenizer keeps the letters of string values and the digits as single tokens, so that a value
tokenizes the same wherever it stands. With GPT-2's splitting a tiny model could not learn to copy
an argument into its trace (`'da'` was `'d`,`a`,`'` in the input and `='`,`da`,`'` in the trace),
and its solve rates were lower (docs/experiments/tiny_base.md). Whitespace is kept byte for byte.
"""

from __future__ import annotations

import random
import re
from collections import Counter

EOS = "<|endoftext|>"
_LITERAL = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")


def code_words(documents: list[str], min_count: int = 20) -> list[str]:
    """Words (letter runs of 2+) that occur at least `min_count` times outside string literals:
    keywords, identifiers, method names and the words of the messages. Only these may become
    multi-letter tokens; the letters of string values stay one token each."""
    counts: Counter = Counter()
    for doc in documents:
        counts.update(re.findall(r"[A-Za-z_]{2,}", _LITERAL.sub(" ", doc)))
    return sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-len(w), w))


def split_pattern(words: list[str]) -> str:
    """The pre-tokenizer's regex. Every piece is decided by its own characters, never by what
    precedes it, so a value tokenizes the same in a prompt, a trace and an answer: `'da'` is
    `'`, `d`, `a`, `'` everywhere. Digits are single tokens too; a piece may carry one leading
    space; fences stay one piece."""
    alternation = "|".join(re.escape(w) for w in words)
    keyword = rf" ?\b(?:{alternation})\b|" if words else ""
    return keyword + r"```| ?[A-Za-z_]| ?[0-9]| ?[^A-Za-z0-9_\s]|\s+"


def train_tokenizer(documents: list[str], vocab_size: int, seed: int = 0):
    """Byte-level BPE on the documents (shuffled by `seed`): merges only inside whitespace runs
    and `code_words` (see `split_pattern`); no normalizer, so whitespace survives exactly."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split_pattern(code_words(documents))), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    docs = list(documents)
    random.Random(seed).shuffle(docs)
    tok.train_from_iterator(docs, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, bos_token=None,
                                   unk_token=None, clean_up_tokenization_spaces=False)


def check_reload(out, documents: list[str], tokenizer) -> None:
    """The saved tokenizer, loaded the way every later stage loads it, must split text exactly as
    the one the model was trained with. Bare `AutoTokenizer` would not: transformers maps qwen2
    checkpoints to `Qwen2Tokenizer`, which replaces the pre-tokenizer with Qwen2's regex;
    `azrlib.models.load_tokenizer` keeps the saved one."""
    from azrlib.models import load_tokenizer

    loaded = load_tokenizer(out)
    for doc in documents:
        if loaded(doc, add_special_tokens=False)["input_ids"] != tokenizer(doc, add_special_tokens=False)["input_ids"]:
            raise RuntimeError(f"the tokenizer saved in {out} tokenizes differently after loading:\n{doc[:200]}")
