"""Reading a results directory laid out as docs/results_layout.md says (the contract between
`make reproduce` and the notebooks). Only the files listed there are read; nothing imports torch.

    rd = ResultsDir("data/reference/tiny")     # relative to the repository root
    rd.seeds, rd.run_names(), rd.missing_runs()
    rd.metrics("selfplay_s1")                  # DataFrame, one row per step
    rd.eval_rows("base", "tinyworld")          # per-sample rows of `azr eval`
    rd.rq2_rows(), rd.sparsity("rlvr_s1")
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path

import pandas as pd
import yaml

from azrlib.report.paths import display_path, resolve

# Run kinds in the order tables and legends list them.
RUN_KINDS = ("selfplay", "frozen", "band", "azr_code", "rlvr", "sft")
_RUN_RE = re.compile(r"^(?P<kind>selfplay|frozen|band|azr_code|rlvr|sft)_s(?P<seed>\d+)$")


class ResultsError(FileNotFoundError):
    """A results directory lacks a file the contract promises; the message names it."""


def parse_run_name(name: str) -> tuple[str, int] | None:
    """`selfplay_s3` -> ("selfplay", 3); None for names outside the contract."""
    m = _RUN_RE.match(name)
    return (m["kind"], int(m["seed"])) if m else None


def run_sort_key(name: str) -> tuple:
    parsed = parse_run_name(name)
    if parsed is None:
        return (len(RUN_KINDS), 0, name)
    return (RUN_KINDS.index(parsed[0]), parsed[1], name)


def expected_runs(seeds: list[int]) -> list[str]:
    """The runs the contract promises for these seeds (selfplay, band, frozen and rlvr for every
    seed; azr_code and sft for the first seed only)."""
    if not seeds:
        raise ValueError("no seeds")
    first = seeds[0]
    names = [f"{kind}_s{k}" for kind in ("selfplay", "band", "frozen", "rlvr") for k in seeds]
    names += [f"{kind}_s{first}" for kind in ("azr_code", "sft")]
    return sorted(names, key=run_sort_key)


def read_jsonl(path: str | Path) -> list[dict]:
    """JSON objects, one per line; blank lines and a partial last line (a killed writer) skipped."""
    rows = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                continue
            raise ValueError(f"{display_path(path)}:{i + 1}: not valid JSON") from None
    return rows


def metrics_frame(rows: list[dict]) -> pd.DataFrame:
    """metrics.jsonl rows as a DataFrame indexed by nothing, sorted by step; a step logged twice
    (a resumed run) keeps its last record."""
    if not rows:
        return pd.DataFrame({"step": pd.Series([], dtype="int64")})
    df = pd.DataFrame(rows)
    if "step" not in df:
        raise ValueError("metrics rows have no 'step' key")
    df = df.drop_duplicates("step", keep="last").sort_values("step", kind="stable").reset_index(drop=True)
    df["step"] = df["step"].astype("int64")
    return df


class ResultsDir:
    """One results directory (runs/<preset>/ or data/reference/<preset>/)."""

    def __init__(self, path: str | Path):
        self.path = resolve(path)
        if not self.path.is_dir():
            raise ResultsError(f"results directory not found: {display_path(self.path)} "
                               "(run `make reproduce PRESET=P`, or point results_dir at data/reference/tiny)")

    def __repr__(self) -> str:
        return f"ResultsDir({display_path(self.path)!r})"

    def _file(self, *parts: str) -> Path:
        p = self.path.joinpath(*parts)
        if not p.exists():
            raise ResultsError(f"{display_path(self.path)}/{'/'.join(parts)} is missing (see docs/results_layout.md)")
        return p

    # ------------------------------------------------------------------ manifest

    @cached_property
    def manifest(self) -> dict:
        return json.loads(self._file("manifest.json").read_text())

    @property
    def has_manifest(self) -> bool:
        return (self.path / "manifest.json").is_file()

    @cached_property
    def seeds(self) -> list[int]:
        """The preset's seeds: the manifest's list, else the seeds of the self-play runs present."""
        if self.has_manifest and self.manifest.get("seeds"):
            return [int(s) for s in self.manifest["seeds"]]
        found = sorted({seed for name in self.run_names() for kind, seed in [parse_run_name(name) or ("", -1)]
                        if kind == "selfplay"})
        if not found:
            raise ResultsError(f"{display_path(self.path)}: no manifest seeds and no selfplay_s<k> runs")
        return found

    @property
    def first_seed(self) -> int:
        return self.seeds[0]

    def manifest_runs(self) -> dict[str, dict]:
        """Run name -> its config overrides, as the manifest lists them (a list of {name,
        overrides, ...} objects, or a name -> overrides mapping)."""
        runs = self.manifest.get("runs", []) if self.has_manifest else []
        out: dict[str, dict] = {}
        if isinstance(runs, dict):
            for name, spec in runs.items():
                out[str(name)] = dict(spec) if isinstance(spec, dict) else {"overrides": spec}
        else:
            for spec in runs:
                if isinstance(spec, str):
                    out[spec] = {}
                else:
                    out[str(spec.get("name") or spec.get("run"))] = dict(spec)
        return out

    # ------------------------------------------------------------------ training runs

    def run_names(self) -> list[str]:
        """Runs under train/ that have a metrics.jsonl, in the contract's order."""
        train = self.path / "train"
        if not train.is_dir():
            return []
        names = [p.name for p in train.iterdir() if (p / "metrics.jsonl").is_file()]
        return sorted(names, key=run_sort_key)

    def runs_of(self, kind: str) -> list[str]:
        return [n for n in self.run_names() if (parse_run_name(n) or ("",))[0] == kind]

    def expected_runs(self) -> list[str]:
        """The runs the manifest planned (a preset may leave a kind out), else the contract's."""
        planned = list(self.manifest_runs())
        return sorted(planned, key=run_sort_key) if planned else expected_runs(self.seeds)

    def missing_runs(self) -> list[str]:
        present = set(self.run_names())
        return [n for n in self.expected_runs() if n not in present]

    def run_path(self, name: str) -> Path:
        return self._file("train", name)

    def metrics(self, name: str) -> pd.DataFrame:
        return metrics_frame(read_jsonl(self._file("train", name, "metrics.jsonl")))

    def tasks(self, name: str) -> list[dict]:
        return read_jsonl(self._file("train", name, "tasks.jsonl"))

    def environment(self, name: str) -> dict:
        return json.loads(self._file("train", name, "environment.json").read_text())

    def config(self, name: str) -> dict:
        return yaml.safe_load(self._file("train", name, "config.yaml").read_text()) or {}

    # ------------------------------------------------------------------ evaluations

    def eval_models(self) -> list[str]:
        d = self.path / "eval"
        return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []

    def eval_benchmarks(self, model: str) -> list[str]:
        d = self.path / "eval" / model
        return sorted(p.name[: -len(".jsonl")] for p in d.glob("*.jsonl")) if d.is_dir() else []

    def eval_rows(self, model: str, benchmark: str) -> list[dict]:
        return read_jsonl(self._file("eval", model, f"{benchmark}.jsonl"))

    # ------------------------------------------------------------------ RQ2, RQ4

    def rq2_rows(self) -> list[dict]:
        return read_jsonl(self._file("rq2", "questions.jsonl"))

    def sparsity_runs(self) -> list[str]:
        d = self.path / "sparsity"
        return sorted((p.stem for p in d.glob("*.json")), key=run_sort_key) if d.is_dir() else []

    def sparsity(self, run: str) -> dict:
        return json.loads(self._file("sparsity", f"{run}.json").read_text())
