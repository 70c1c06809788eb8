"""Reading checkpoint headers for the sparsity count: which tensors a safetensors checkpoint holds
(single file, sharded with an index, or one file), in what dtype and shape, without reading any
tensor data; which names two checkpoints share under the tied-weights rule (`sparsity.py`'s
docstring); and the per-module / per-layer breakdown keys.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

LM_HEAD = "lm_head.weight"

_SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
for _name, _attr in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2")):
    if hasattr(torch, _attr):
        _SAFETENSORS_DTYPES[_name] = getattr(torch, _attr)

_LAYER_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.")


class CheckpointError(ValueError):
    """A checkpoint path is unusable or two checkpoints do not have the same architecture."""


# --------------------------------------------------------------------------------------------
# Finding tensors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorInfo:
    file: Path
    dtype: torch.dtype
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count


@dataclass
class Checkpoint:
    """Tensor names (in on-disk order) and where each lives; no tensor data is read."""

    path: Path
    tensors: dict[str, TensorInfo]
    config: dict | None

    @property
    def ties_embeddings(self) -> bool:
        if not self.config:
            return False
        text_config = self.config.get("text_config") or {}
        return bool(self.config.get("tie_word_embeddings") or text_config.get("tie_word_embeddings"))


def _safetensors_files(path: Path) -> list[Path]:
    if path.is_file():
        if path.suffix != ".safetensors":
            raise CheckpointError(f"{path}: expected a .safetensors file or a checkpoint directory")
        return [path]
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such file or directory")
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{index}: not a safetensors index (needs a 'weight_map' object): {exc}") from None
        files = [path / name for name in dict.fromkeys(weight_map.values())]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{index} names shard(s) that do not exist: {', '.join(missing)}")
        return files
    single = path / "model.safetensors"
    if single.is_file():
        return [single]
    candidates = sorted(path.glob("*.safetensors"))
    if len(candidates) == 1:
        return candidates
    raise CheckpointError(
        f"{path}: found neither model.safetensors nor model.safetensors.index.json"
        + (f" (and {len(candidates)} other .safetensors files, which is ambiguous)" if candidates else "")
    )


def open_checkpoint(path: str | Path) -> Checkpoint:
    """Read the headers of a checkpoint directory (single file or sharded) or one .safetensors file."""
    path = Path(path)
    tensors: dict[str, TensorInfo] = {}
    for file in _safetensors_files(path):
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.offset_keys():  # on-disk order, so reading is sequential
                view = handle.get_slice(name)
                dtype_name = view.get_dtype()
                if dtype_name not in _SAFETENSORS_DTYPES:
                    raise CheckpointError(f"{file}: tensor {name!r} has unsupported dtype {dtype_name}")
                if name in tensors:
                    raise CheckpointError(f"{path}: tensor {name!r} appears in both {tensors[name].file.name} and {file.name}")
                tensors[name] = TensorInfo(file, _SAFETENSORS_DTYPES[dtype_name], tuple(view.get_shape()))
    config = None
    config_path = (path if path.is_dir() else path.parent) / "config.json"
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text())
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{config_path}: not valid JSON ({exc})") from None
    return Checkpoint(path, tensors, config)


def _is_embedding(name: str) -> bool:
    return name.endswith("embed_tokens.weight") or name.endswith("wte.weight")


def _names_to_compare(base: Checkpoint, tuned: Checkpoint) -> tuple[list[str], bool]:
    """Names counted (base order) after the tied-weights rule; also whether lm_head was skipped."""
    tied = base.ties_embeddings or tuned.ties_embeddings
    has_embedding = any(_is_embedding(n) for n in base.tensors)
    skip_lm_head = tied and has_embedding and (LM_HEAD in base.tensors or LM_HEAD in tuned.tensors)
    base_names = [n for n in base.tensors if not (skip_lm_head and n == LM_HEAD)]
    tuned_names = {n for n in tuned.tensors if not (skip_lm_head and n == LM_HEAD)}

    only_base = [n for n in base_names if n not in tuned_names]
    only_tuned = sorted(tuned_names.difference(base_names))
    if only_base or only_tuned:
        parts = []
        if only_base:
            parts.append(f"only in base: {', '.join(only_base[:5])}" + (f" (+{len(only_base) - 5} more)" if len(only_base) > 5 else ""))
        if only_tuned:
            parts.append(f"only in tuned: {', '.join(only_tuned[:5])}" + (f" (+{len(only_tuned) - 5} more)" if len(only_tuned) > 5 else ""))
        hint = ""
        if LM_HEAD in only_base or LM_HEAD in only_tuned:
            hint = " (if lm_head is tied to the embedding, config.json should say tie_word_embeddings: true)"
        raise CheckpointError(f"checkpoints have different tensors; {'; '.join(parts)}{hint}")
    for name in base_names:
        shape_a, shape_b = base.tensors[name].shape, tuned.tensors[name].shape
        if shape_a != shape_b:
            raise CheckpointError(f"tensor {name!r} has shape {list(shape_a)} in base but {list(shape_b)} in tuned")
    return base_names, skip_lm_head


def module_of(name: str) -> str:
    """Breakdown key: the last name component before .weight/.bias (q_proj, embed_tokens, norm...)."""
    parts = name.split(".")
    if len(parts) >= 2 and parts[-1] in ("weight", "bias"):
        return parts[-2]
    return parts[-1]


def layer_of(name: str) -> int | None:
    match = _LAYER_RE.search(name)
    return int(match.group(1)) if match else None
