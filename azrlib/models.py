"""Model names -> loadable local directories: local paths, hub ids from the Hugging Face cache, and
the public checkpoints the paper's analyses use.

    from azrlib.models import resolve_model
    resolve_model("runs/coder3b/checkpoints/step_000050")       # a local directory: as is
    resolve_model("andrewzh/Absolute_Zero_Reasoner-Coder-7b")    # the cached snapshot's directory

Resolution order (the first that exists wins):
1. an existing file or directory, as given or relative to the project root;
2. for a hub id (`owner/name`): `$AZR_MODELS_DIR/owner/name` or `$AZR_MODELS_DIR/name` (a folder of
   pre-downloaded models, e.g. made with `hf download ID --local-dir ...`);
3. the Hugging Face cache (`HF_HUB_CACHE` / `HF_HOME`), looked up with `local_files_only`: nothing is
   downloaded at run time, so a run never depends on the network and always names the files it read.
Anything else raises `ModelNotFoundError` (a FileNotFoundError) naming the id and how to fetch it.

Public checkpoints (`PUBLIC_CHECKPOINTS`): the AZR-Coder models are stored in fp32 while their Qwen
bases are stored in bf16. That difference matters for RQ4 (update sparsity): compared in fp32, the
AZR checkpoints look dense; compared in bf16 (Mukherjee et al.'s convention) they look sparser.
Hub ids are case-insensitive on the hub; a known id in any casing resolves to its canonical casing
(the cache folder uses the casing it was downloaded with).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR_ENV = "AZR_MODELS_DIR"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# Names that are clearly paths, never hub ids, even though they contain one "/".
_PATH_PREFIXES = (".", "/", "~", "data/", "runs/", "figures/", "tests/")


@dataclass(frozen=True)
class PublicCheckpoint:
    hub_id: str
    stored_dtype: str  # dtype of the published safetensors
    base: str | None  # the checkpoint it was trained from (None for a base model)
    size_gb: float  # download size, roughly
    note: str


PUBLIC_CHECKPOINTS: dict[str, PublicCheckpoint] = {c.hub_id: c for c in (
    PublicCheckpoint("Qwen/Qwen2.5-Coder-3B", "bfloat16", None, 6.2, "AZR's 3B base (coder3b preset)"),
    PublicCheckpoint("Qwen/Qwen2.5-Coder-7B", "bfloat16", None, 15.2, "AZR's 7B base (coder7b preset)"),
    PublicCheckpoint("andrewzh/Absolute_Zero_Reasoner-Coder-3b", "float32", "Qwen/Qwen2.5-Coder-3B", 12.4,
                     "AZR self-play result on Qwen2.5-Coder-3B (stored fp32)"),
    PublicCheckpoint("andrewzh/Absolute_Zero_Reasoner-Coder-7b", "float32", "Qwen/Qwen2.5-Coder-7B", 30.5,
                     "AZR self-play result on Qwen2.5-Coder-7B (stored fp32)"),
)}


ALLOW_PARTIAL_ENV = "AZR_ALLOW_PARTIAL_BASE"


class PartialBaseError(ValueError):
    """A base whose pretraining was cut short, used where a finished base is expected."""


def refuse_partial_base(path: str | Path) -> str:
    """`path`, unless it holds a base whose pretraining stopped early (`pretrain.json` with
    `"complete": false`, as `azr pretrain-tiny` writes when its time guard cuts the schedule):
    such weights are not the recipe's result. AZR_ALLOW_PARTIAL_BASE=1 lets one through."""
    import json

    record = Path(path) / "pretrain.json"
    if record.is_file() and json.loads(record.read_text()).get("complete", True) is False:
        if os.environ.get(ALLOW_PARTIAL_ENV) != "1":
            raise PartialBaseError(f"{path} is a partial base (pretrain.json: complete=false, its pretraining was "
                                   f"cut short): finish it with `azr pretrain-tiny --out {path} ... --resume`, or "
                                   f"set {ALLOW_PARTIAL_ENV}=1 to train from it anyway")
    return str(path)


class ModelNotFoundError(FileNotFoundError):
    """A model name that is neither a local path nor available offline; the message says how to get it."""


def canonical_id(name: str) -> str:
    """The canonical casing of a known public checkpoint id; other names unchanged."""
    for hub_id in PUBLIC_CHECKPOINTS:
        if hub_id.lower() == name.lower():
            return hub_id
    return name


def is_hub_id(name: str) -> bool:
    return bool(_HUB_ID.match(name)) and not name.startswith(_PATH_PREFIXES) and not name.endswith(
        (".safetensors", ".json", ".yaml"))


def existing_local_path(name: str | Path) -> Path | None:
    """`name` as an existing path: as given (after `~`), or relative to the project root; else None."""
    path = Path(str(name)).expanduser()
    if path.exists():
        return path
    if not path.is_absolute() and (PROJECT_ROOT / path).exists():
        return PROJECT_ROOT / path
    return None


def resolve_model(name: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None) -> str:
    """A local path for `name` (see the module docstring); raises ModelNotFoundError otherwise."""
    text = str(name)
    local = existing_local_path(text)
    if local is not None:
        return str(local)
    if not is_hub_id(text):
        raise ModelNotFoundError(f"model directory not found: {text}")
    hub_id = canonical_id(text)
    local = os.environ.get(MODELS_DIR_ENV)
    if local:
        for candidate in (Path(local) / hub_id, Path(local) / hub_id.split("/")[1]):
            if (candidate / "config.json").is_file():
                return str(candidate)
    snapshot = _cached_snapshot(hub_id, revision, cache_dir)
    if snapshot is not None:
        return snapshot
    raise ModelNotFoundError(_not_found_message(hub_id, cache_dir))


def resolve_model_or_exit(name: str | Path, prog: str) -> str:
    """`resolve_model` for command lines: a missing model ends the program with the message."""
    try:
        return resolve_model(name)
    except ModelNotFoundError as error:
        raise SystemExit(f"{prog}: {error}") from None


def _cached_snapshot(hub_id: str, revision: str | None, cache_dir: str | Path | None) -> str | None:
    """The cached snapshot directory of `hub_id`, if it holds a config and weights; None otherwise."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # transformers always brings huggingface_hub; be explicit anyway
        return None
    try:
        directory = Path(snapshot_download(hub_id, revision=revision, cache_dir=cache_dir, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError, OSError):
        return None
    # A partial download (config only, or an interrupted shard set) must not pass as a model.
    if not (directory / "config.json").is_file():
        return None
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        import json

        shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        if not shards or not all((directory / s).is_file() for s in shards):
            return None
    elif not any(directory.glob("*.safetensors")) and not any(directory.glob("*.bin")):
        return None
    return str(directory)


def _not_found_message(hub_id: str, cache_dir: str | Path | None) -> str:
    from_cache = cache_dir or os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
    known = PUBLIC_CHECKPOINTS.get(hub_id)
    about = f" ({known.note}; ~{known.size_gb:g} GB, stored {known.stored_dtype})" if known else ""
    return (f"model {hub_id!r}{about} is not a local directory and is not in the Hugging Face cache "
            f"({from_cache}). Download it where there is network access with `hf download {hub_id}` "
            f"(or `huggingface-cli download {hub_id}`; copy the cache over if needed), or with "
            f"`hf download {hub_id} --local-dir DIR` and pass DIR (or set {MODELS_DIR_ENV} to DIR's parent).")


def load_tokenizer(name_or_path: str | Path, **kwargs):
    """`AutoTokenizer.from_pretrained`, except that the pre-tokenizer, normalizer and decoder saved
    in the checkpoint's tokenizer.json are what tokenizes.

    Why: transformers 5 maps `model_type: qwen2` to `Qwen2Tokenizer` whatever tokenizer_config.json
    declares, and that class rebuilds the pre-tokenizer with Qwen2's regex. For a real Qwen
    checkpoint the two agree and AutoTokenizer's tokenizer is returned unchanged. For the tiny base,
    whose value-level pre-tokenizer keeps `[1, 5]` as `[`, `1`, `,`, ` 5`, `]`, the override silently
    tokenized every prompt differently from pretraining (until 2026-11-26 every tiny-base number
    was measured that way). When tokenizer.json's pipeline differs from the loaded one, the
    checkpoint is loaded as saved (`TokenizersBackend`)."""
    import json

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(name_or_path), **kwargs)
    saved = _tokenizer_json(name_or_path, kwargs)
    if saved is None or not getattr(tok, "is_fast", False):
        return tok
    stored = json.loads(Path(saved).read_text(encoding="utf-8"))
    loaded = json.loads(tok.backend_tokenizer.to_str())
    if all(stored.get(k) == loaded.get(k) for k in ("pre_tokenizer", "normalizer", "decoder")):
        return tok
    from transformers.tokenization_utils_tokenizers import TokenizersBackend

    return TokenizersBackend.from_pretrained(str(name_or_path), **kwargs)


def _tokenizer_json(name_or_path: str | Path, kwargs: dict) -> str | None:
    local = Path(name_or_path) / "tokenizer.json"
    if local.is_file():
        return str(local)
    if Path(name_or_path).exists():
        return None
    try:
        from transformers.utils import cached_file
        return cached_file(str(name_or_path), "tokenizer.json", _raise_exceptions_for_missing_entries=False,
                           local_files_only=True, revision=kwargs.get("revision"), cache_dir=kwargs.get("cache_dir"))
    except Exception:  # not cached: AutoTokenizer has already said what it could load
        return None
