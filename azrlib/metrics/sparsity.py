"""Update sparsity between two checkpoints: the fraction of parameters an RL run left unchanged.

Follows Mukherjee et al. (2025): sparsity = (entries whose value did not change) / (all entries),
pooled over every parameter tensor (embeddings, norms and biases included), with tied weights
counted once; a tolerance variant counts |tuned - base| <= atol as unchanged (atol 1e-5 by default,
the threshold of the seed paper's script). Both numbers are always reported side by side.

Comparison dtypes (`dtype=`):

* ``"bf16"``: cast both sides to bfloat16 (round to nearest even), then compare. This is
  Mukherjee et al.'s headline convention (they load both models in bf16).
* ``"fp32"``: cast both sides to float32, then compare.
* ``"stored"``: compare in the dtype each file stores; when the two files store a tensor in
  different dtypes, both are upcast to the wider one (to float32 when the widths tie, e.g. bf16 vs
  fp16, since float32 holds both exactly).

bf16 and fp32 can disagree a lot: AZR's released checkpoints are fp32 while their Qwen bases are
bf16, and an update smaller than half a bf16 step at that weight's magnitude disappears when the
tuned weight is rounded to bf16 (counted unchanged) but is visible in fp32 (counted changed).

Equality is value equality (``a == b``): +0 and -0 are equal, NaN never equals anything. Integer
or boolean tensors (rare in checkpoints) are compared exactly in every mode, and the tolerance
variant treats them like the exact one.

Tied weights. The rule, applied before counting:

* a checkpoint without ``lm_head.weight`` (the usual way a tied model is saved) simply has one
  copy, so the embedding is counted once;
* if ``config.json`` of either checkpoint says ``tie_word_embeddings: true`` and a file still holds
  ``lm_head.weight`` next to the embedding, that ``lm_head.weight`` is skipped (it is the embedding
  again);
* a checkpoint that has ``lm_head.weight`` while the other lacks it, with no config saying the
  weights are tied, is a mismatched architecture (an error).

Memory. Files are opened with ``safetensors.safe_open`` (framework "pt"), which memory-maps them
and hands out views without copying. Each tensor is sliced ``read_elements`` entries (whole rows)
at a time and compared ``chunk_elements`` entries at a time in reused float32 scratch buffers, so
the working set is a few small buffers, never a whole model nor a full fp32 copy of a large tensor
(a 150k x 4096 embedding included). Pages of a mapped file that have been read count towards the
process's resident set until the mapping is closed, so only one file per side is open at a time and
it is closed and reopened after ``remap_bytes`` of it have been read. Peak RSS above the
interpreter's own is therefore about 2 x (remap_bytes + one slice), ~100-200 MB with the defaults,
whatever the model size.

Speed. The count uses float arithmetic kernels over one scratch buffer rather than comparisons into
bool tensors, which are several times slower on CPU (see ``_count_chunk``), and chunks are spread
over ``workers`` threads that each run single-threaded torch kernels (see ``compute_sparsity``).
Measured with ``benchmarks/bench_sparsity.py``.

Breakdowns: per module = the last name component before ``.weight``/``.bias``
(``model.layers.3.self_attn.q_proj.weight`` -> ``q_proj``; weights and biases pooled); per layer =
the index in ``layers.<i>.``. Tensors outside layers (embeddings, final norm, lm_head) appear in
the per-module breakdown only.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open

from azrlib.metrics.checkpoint_headers import (  # noqa: F401 - re-exported for callers of this module
    LM_HEAD, Checkpoint, CheckpointError, TensorInfo, _names_to_compare, layer_of, module_of, open_checkpoint,
)
from azrlib.models import resolve_model

COMPARISON_DTYPES = ("stored", "bf16", "fp32")
DEFAULT_ATOL = 1e-5
DEFAULT_CHUNK_ELEMENTS = 1 << 18  # 256K entries: the 1 MB float32 scratch buffer stays in L2
DEFAULT_READ_ELEMENTS = 1 << 24  # rows are sliced from the mapped files about 16M entries at a time
DEFAULT_REMAP_BYTES = 32 << 20  # reopen a mapped file after this many bytes have been read from it


_MODE_TO_DTYPE = {"bf16": torch.bfloat16, "fp32": torch.float32}


# --------------------------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------------------------


@dataclass
class _Tally:
    n_params: int = 0
    n_unchanged: int = 0
    n_unchanged_atol: int = 0

    def add(self, n_params: int, n_unchanged: int, n_unchanged_atol: int) -> None:
        self.n_params += n_params
        self.n_unchanged += n_unchanged
        self.n_unchanged_atol += n_unchanged_atol


@dataclass
class SparsityResult:
    """Unchanged-parameter counts under one comparison dtype."""

    dtype: str  # "stored", "bf16" or "fp32"
    atol: float
    n_params: int
    n_unchanged: int
    n_unchanged_atol: int
    per_module: dict[str, float]
    per_layer: dict[int, float]
    per_module_atol: dict[str, float] = field(default_factory=dict)
    per_layer_atol: dict[int, float] = field(default_factory=dict)
    per_module_n_params: dict[str, int] = field(default_factory=dict)
    stored_dtypes: dict[str, list[str]] = field(default_factory=dict)  # "base"/"tuned" -> dtypes seen
    lm_head_skipped_as_tied: bool = False

    @property
    def sparsity(self) -> float:
        return self.n_unchanged / self.n_params if self.n_params else float("nan")

    @property
    def sparsity_atol(self) -> float:
        return self.n_unchanged_atol / self.n_params if self.n_params else float("nan")

    def to_json_dict(self) -> dict:
        return {
            "sparsity": self.sparsity,
            "n_params": self.n_params,
            "n_unchanged": self.n_unchanged,
            "dtype": self.dtype,
            "atol": self.atol,
            "sparsity_atol": self.sparsity_atol,
            "n_unchanged_atol": self.n_unchanged_atol,
            "per_module": self.per_module,
            "per_layer": {str(k): v for k, v in self.per_layer.items()},
            "per_module_atol": self.per_module_atol,
            "per_layer_atol": {str(k): v for k, v in self.per_layer_atol.items()},
            "per_module_n_params": self.per_module_n_params,
            "stored_dtypes": self.stored_dtypes,
            "lm_head_skipped_as_tied": self.lm_head_skipped_as_tied,
        }


def _wider(a: torch.dtype, b: torch.dtype) -> torch.dtype:
    if a == b:
        return a
    if a.is_floating_point and b.is_floating_point:
        size_a, size_b = a.itemsize, b.itemsize
        if size_a == size_b:
            return torch.float32  # bf16 vs fp16 (or two fp8 kinds): float32 holds both exactly
        return a if size_a > size_b else b
    return torch.promote_types(a, b)


def _represents_exactly(stored: torch.dtype, target: torch.dtype) -> bool:
    """Whether casting `stored` to `target` keeps every value (so comparing in target = comparing as stored)."""
    if stored == target:
        return True
    if not (stored.is_floating_point and target.is_floating_point):
        return False
    exact_into = {
        torch.bfloat16: (torch.float32, torch.float64),
        torch.float16: (torch.float32, torch.float64),
        torch.float32: (torch.float64,),
    }
    return target in exact_into.get(stored, ())


class _MappedFile:
    """A safe_open handle that is reopened after `remap_bytes` have been read, to drop mapped pages."""

    def __init__(self, path: Path, remap_bytes: int):
        self.path = path
        self.remap_bytes = remap_bytes
        self._handle = None
        self._read_since_open = 0

    def rows(self, name: str, start: int, stop: int, row_bytes: int) -> torch.Tensor:
        if self._handle is None or self._read_since_open >= self.remap_bytes:
            self.close()
            self._handle = safe_open(str(self.path), framework="pt")
        self._read_since_open += (stop - start) * row_bytes
        view = self._handle.get_slice(name)
        if len(view.get_shape()) == 0:
            return self._handle.get_tensor(name).reshape(1)
        return view[start:stop]

    def close(self) -> None:
        self._handle = None  # the mapping is released once no view of it remains
        self._read_since_open = 0


class _Scratch:
    """Reused buffers for one chunk; grown on demand, never shrunk."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, torch.dtype], torch.Tensor] = {}

    def get(self, role: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
        buf = self._buffers.get((role, dtype))
        if buf is None or buf.numel() < numel:
            buf = torch.empty(numel, dtype=dtype)
            self._buffers[(role, dtype)] = buf
        return buf[:numel]


def _load_as(src: torch.Tensor, compare_dtype: torch.dtype | None, work: torch.Tensor, stage: _Scratch, role: str) -> None:
    """Write src, rounded to compare_dtype (None: keep stored values), into the float work buffer."""
    if compare_dtype is not None and not _represents_exactly(src.dtype, compare_dtype) and compare_dtype != work.dtype:
        # Lossy cast to a dtype narrower than the work buffer (e.g. fp32 -> bf16): round first.
        rounded = stage.get(role + "_stage", compare_dtype, src.numel())
        rounded.copy_(src)
        work.copy_(rounded)
    else:
        work.copy_(src)


def _count_chunk(
    a: torch.Tensor, b: torch.Tensor, compare_dtype: torch.dtype | None, atol: float, scratch: _Scratch
) -> tuple[int, int]:
    """(exactly equal, within atol) for one flat chunk pair compared in compare_dtype.

    Fast path on scratch buffers: d = |a - b| in the work dtype; the changed entries are counted
    by viewing d as integers (count_nonzero on floats is several times slower); then d <= atol in
    place (1.0 / 0.0) and a sum counts the entries within atol, again much faster on CPU than a
    comparison into a bool tensor. A NaN in d (a NaN entry, or the same infinity on both sides,
    where inf - inf is NaN) sends the chunk to the plain comparison path, which implements value
    equality exactly. Float32 sums of 0/1 values are exact below 2**24 entries per chunk, hence
    float64 for larger chunks.
    """
    numel = a.numel()
    if not (a.dtype.is_floating_point or b.dtype.is_floating_point):
        common = torch.promote_types(a.dtype, b.dtype)
        n_equal = int(torch.count_nonzero(torch.eq(a.to(common), b.to(common))))
        return n_equal, n_equal
    wide = compare_dtype == torch.float64 or (compare_dtype is None and torch.float64 in (a.dtype, b.dtype))
    work_dtype = torch.float64 if wide or numel >= (1 << 24) else torch.float32
    diff = scratch.get("a", work_dtype, numel)
    other = scratch.get("b", work_dtype, numel)
    if compare_dtype is None and a.dtype == work_dtype and b.dtype == work_dtype:
        torch.sub(a, b, out=diff)  # nothing to convert: subtract straight from the mapped views
    else:
        # Two plain conversions and a same-dtype subtraction beat one mixed-dtype subtraction.
        _load_as(a, compare_dtype, diff, scratch, "a")
        _load_as(b, compare_dtype, other, scratch, "b")
        diff.sub_(other)
    diff.abs_()
    if torch.isnan(diff.sum()):
        return _count_chunk_by_comparison(a, b, compare_dtype, atol, work_dtype)
    # After abs a float is zero exactly when its bits are (the sign of -0 is cleared).
    n_changed = int(torch.count_nonzero(diff.view(torch.int64 if work_dtype == torch.float64 else torch.int32)))
    diff.le_(atol)
    n_within = int(diff.sum())
    return numel - n_changed, n_within


def _count_chunk_by_comparison(
    a: torch.Tensor, b: torch.Tensor, compare_dtype: torch.dtype | None, atol: float, work_dtype: torch.dtype
) -> tuple[int, int]:
    """Reference semantics (slower; used for chunks holding NaN or infinities)."""
    if compare_dtype is not None:
        a, b = a.to(compare_dtype), b.to(compare_dtype)
    a, b = a.to(work_dtype), b.to(work_dtype)
    equal = torch.eq(a, b)
    within = torch.le(torch.abs(a - b), atol) | equal  # inf == inf is equal though inf - inf is NaN
    return int(torch.count_nonzero(equal)), int(torch.count_nonzero(within))


def _compare_key(mode: str, dtype_a: torch.dtype, dtype_b: torch.dtype) -> torch.dtype | None:
    """The dtype a mode compares this tensor in; None when that equals comparing the stored values."""
    if not (dtype_a.is_floating_point or dtype_b.is_floating_point):
        return None
    target = _wider(dtype_a, dtype_b) if mode == "stored" else _MODE_TO_DTYPE[mode]
    if _represents_exactly(dtype_a, target) and _represents_exactly(dtype_b, target):
        return None
    return target


def compute_sparsity(
    base: str | Path,
    tuned: str | Path,
    dtypes: Sequence[str] = ("bf16",),
    atol: float = DEFAULT_ATOL,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    remap_bytes: int = DEFAULT_REMAP_BYTES,
    read_elements: int = DEFAULT_READ_ELEMENTS,
    workers: int | None = None,
) -> dict[str, SparsityResult]:
    """Sparsity of `tuned` relative to `base` under each requested comparison dtype, in one pass.

    Each tensor is read once; modes that are equivalent for a tensor (e.g. all three when both
    files store bf16) share one comparison.

    `workers` threads (default: torch.get_num_threads()) each compare whole chunks, with torch's
    own intra-op threading set to 1 for the duration of the call and restored afterwards. Chunks
    are independent, so a worker never waits for another; torch's thread team, by contrast,
    synchronises after every small kernel and stalls badly when another process holds a core.
    """
    dtypes = list(dict.fromkeys(dtypes))
    for mode in dtypes:
        if mode not in COMPARISON_DTYPES:
            raise ValueError(f"unknown comparison dtype {mode!r}; choose from {', '.join(COMPARISON_DTYPES)}")
    if not dtypes:
        raise ValueError("need at least one comparison dtype")
    if atol < 0:
        raise ValueError(f"atol must be >= 0 (got {atol})")
    if chunk_elements < 1 or read_elements < 1:
        raise ValueError("chunk_elements and read_elements must be >= 1")
    n_workers = torch.get_num_threads() if workers is None else workers
    if n_workers < 1:
        raise ValueError(f"workers must be >= 1 (got {workers})")

    base_ckpt, tuned_ckpt = open_checkpoint(base), open_checkpoint(tuned)
    names, lm_head_skipped = _names_to_compare(base_ckpt, tuned_ckpt)

    totals = {mode: _Tally() for mode in dtypes}
    per_module = {mode: {} for mode in dtypes}
    per_layer = {mode: {} for mode in dtypes}
    files: dict[Path, _MappedFile] = {}
    stored_seen: dict[str, set[str]] = {"base": set(), "tuned": set()}

    open_for_side: dict[str, _MappedFile] = {}

    def mapped(side: str, path: Path) -> _MappedFile:
        # One open file per side: moving on to the next shard unmaps the previous one.
        current = open_for_side.get(side)
        if current is not None and current.path != path:
            current.close()
        if path not in files:
            files[path] = _MappedFile(path, remap_bytes)
        open_for_side[side] = files[path]
        return files[path]

    local = threading.local()

    def count_piece(a: torch.Tensor, b: torch.Tensor, compare_keys: list) -> list[tuple[int, int]]:
        scratch = getattr(local, "scratch", None)
        if scratch is None:
            scratch = local.scratch = _Scratch()  # per worker thread
        return [_count_chunk(a, b, key, atol, scratch) for key in compare_keys]

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    pool = ThreadPoolExecutor(n_workers, thread_name_prefix="sparsity") if n_workers > 1 else None
    try:
        for name in names:
            info_a, info_b = base_ckpt.tensors[name], tuned_ckpt.tensors[name]
            stored_seen["base"].add(str(info_a.dtype).removeprefix("torch."))
            stored_seen["tuned"].add(str(info_b.dtype).removeprefix("torch."))
            keys = {mode: _compare_key(mode, info_a.dtype, info_b.dtype) for mode in dtypes}
            counts = {key: [0, 0] for key in set(keys.values())}
            numel = info_a.numel
            n_rows = info_a.shape[0] if info_a.shape else 1
            row_numel = numel // n_rows if n_rows else 0
            rows_per_read = max(1, read_elements // max(1, row_numel))
            file_a, file_b = mapped("base", info_a.file), mapped("tuned", info_b.file)
            for start in range(0, n_rows, rows_per_read):
                stop = min(n_rows, start + rows_per_read)
                rows_a = file_a.rows(name, start, stop, row_numel * info_a.dtype.itemsize).reshape(-1)
                rows_b = file_b.rows(name, start, stop, row_numel * info_b.dtype.itemsize).reshape(-1)
                # Slicing a mapped file costs tens of microseconds, so read many rows at once and
                # compare cache-sized pieces of them (plain views, nearly free).
                offsets = range(0, rows_a.numel(), chunk_elements)
                pieces_a = [rows_a[o : o + chunk_elements] for o in offsets]
                pieces_b = [rows_b[o : o + chunk_elements] for o in offsets]
                compare_keys = list(counts)
                run = map if pool is None or len(pieces_a) == 1 else pool.map
                for piece_counts in run(count_piece, pieces_a, pieces_b, [compare_keys] * len(pieces_a)):
                    for key, (n_equal, n_within) in zip(compare_keys, piece_counts):
                        counts[key][0] += n_equal
                        counts[key][1] += n_within
                del rows_a, rows_b, pieces_a, pieces_b  # drop the views so a reopen can unmap
            module, layer = module_of(name), layer_of(name)
            for mode in dtypes:
                n_equal, n_within = counts[keys[mode]]
                totals[mode].add(numel, n_equal, n_within)
                per_module[mode].setdefault(module, _Tally()).add(numel, n_equal, n_within)
                if layer is not None:
                    per_layer[mode].setdefault(layer, _Tally()).add(numel, n_equal, n_within)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        torch.set_num_threads(previous_threads)
        for handle in files.values():
            handle.close()

    def ratio(t: _Tally, tolerant: bool) -> float:
        return (t.n_unchanged_atol if tolerant else t.n_unchanged) / t.n_params if t.n_params else float("nan")

    results = {}
    for mode in dtypes:
        modules, layers = per_module[mode], dict(sorted(per_layer[mode].items()))
        results[mode] = SparsityResult(
            dtype=mode,
            atol=atol,
            n_params=totals[mode].n_params,
            n_unchanged=totals[mode].n_unchanged,
            n_unchanged_atol=totals[mode].n_unchanged_atol,
            per_module={k: ratio(t, False) for k, t in modules.items()},
            per_layer={k: ratio(t, False) for k, t in layers.items()},
            per_module_atol={k: ratio(t, True) for k, t in modules.items()},
            per_layer_atol={k: ratio(t, True) for k, t in layers.items()},
            per_module_n_params={k: t.n_params for k, t in modules.items()},
            stored_dtypes={side: sorted(seen) for side, seen in stored_seen.items()},
            lm_head_skipped_as_tied=lm_head_skipped,
        )
    return results


def update_sparsity(
    base: str | Path, tuned: str | Path, dtype: str = "bf16", atol: float = DEFAULT_ATOL, **kwargs
) -> SparsityResult:
    """Sparsity under one comparison dtype (bf16 by default, Mukherjee et al.'s convention)."""
    return compute_sparsity(base, tuned, [dtype], atol, **kwargs)[dtype]


# --------------------------------------------------------------------------------------------
# Command line: azr sparsity
# --------------------------------------------------------------------------------------------


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", help="base checkpoint: HF directory (single or sharded safetensors) or a .safetensors file")
    parser.add_argument("tuned", help="tuned checkpoint, same architecture")
    parser.add_argument(
        "--dtype",
        choices=[*COMPARISON_DTYPES, "all"],
        default="bf16",
        help="compare in the stored dtype, bf16 (Mukherjee et al., default), fp32, or all three side by side",
    )
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL, help=f"tolerance variant: |delta| <= atol counts as unchanged (default {DEFAULT_ATOL:g})")
    parser.add_argument("--workers", type=int, default=None, help="comparison threads (default: torch.get_num_threads())")
    parser.add_argument("--json", action="store_true", help="print JSON (with --dtype all: one object per dtype)")


def _print_table(results: dict[str, SparsityResult], base: str, tuned: str) -> None:
    modes = list(results)
    first = results[modes[0]]
    print(f"base  = {base}  (stored: {', '.join(first.stored_dtypes['base'])})")
    print(f"tuned = {tuned}  (stored: {', '.join(first.stored_dtypes['tuned'])})")
    print(f"{first.n_params:,} parameters" + ("; lm_head skipped (tied to the embedding)" if first.lm_head_skipped_as_tied else ""))
    header = f"{'':<24}" + "".join(f"{m + ' exact':>14}{m + ' atol':>14}" for m in modes)
    print(header)
    print(f"{'all parameters':<24}" + "".join(f"{results[m].sparsity:>14.4%}{results[m].sparsity_atol:>14.4%}" for m in modes))
    for module in first.per_module:
        row = f"{module:<24}"
        for m in modes:
            row += f"{results[m].per_module[module]:>14.4%}{results[m].per_module_atol[module]:>14.4%}"
        print(row)
    for layer in first.per_layer:
        row = f"{'layer ' + str(layer):<24}"
        for m in modes:
            row += f"{results[m].per_layer[layer]:>14.4%}{results[m].per_layer_atol[layer]:>14.4%}"
        print(row)
    print(f"(atol = {first.atol:g}; sparsity = fraction of entries unchanged)")
    if len(modes) > 1 or "bf16" in modes:
        print(
            "note: bf16 is Mukherjee et al.'s convention (both models loaded in bf16). Rounding to bf16 hides any\n"
            "update smaller than half a bf16 step at that weight's magnitude, so fp32-stored checkpoints look\n"
            "sparser in bf16 than in fp32."
        )


def run_cli(args: argparse.Namespace) -> int:
    modes = list(COMPARISON_DTYPES) if args.dtype == "all" else [args.dtype]
    try:
        results = compute_sparsity(resolve_model(args.base), resolve_model(args.tuned), modes, atol=args.atol, workers=args.workers)
    except (OSError, ValueError) as exc:
        print(f"azr sparsity: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        if args.dtype == "all":
            print(json.dumps({mode: r.to_json_dict() for mode, r in results.items()}))
        else:
            print(json.dumps(results[args.dtype].to_json_dict()))
    else:
        _print_table(results, args.base, args.tuned)
    return 0
