"""What a sandbox run returns, how the trainer reads a worker's line, and how the two runs of the
determinism double run are reconciled. Everything here treats worker output as untrusted bytes:
`_parse_result` never raises and attributes a result only to an item the trainer is waiting for.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

STATUSES = ("ok", "error", "timeout", "crashed", "rejected")


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program. `value` is the canonical repr of the return value (ok only)."""

    status: str
    value: str | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _parse_result(line: bytes, job_id: int, pending) -> tuple[str, int | None, ExecResult | None]:
    """One line from a worker, for the job in flight `job_id` whose unreported items are `pending`:
    ("done", None, None) for `[job_id, "done"]`, ("result", i, ExecResult) for
    `[job_id, i, status, value, error, seconds]`, or ("junk", None, None) for anything that cannot
    be attributed to one of those items (another job, a repeated item, broken JSON, an object).
    A line attributed to an item but malformed in any other way is a `crashed` result for that
    item only. Never raises."""
    try:
        msg = json.loads(line)
    except Exception:  # noqa: BLE001 - ValueError, RecursionError, MemoryError...: all junk
        return "junk", None, None
    if type(msg) is not list or not msg or type(msg[0]) is not int or msg[0] != job_id:
        return "junk", None, None
    if len(msg) == 2:
        return ("done", None, None) if msg[1] == "done" and type(msg[1]) is str else ("junk", None, None)
    i = msg[1]
    if len(msg) != 6 or type(i) is not int or i not in pending:
        return "junk", None, None
    status, value, error, seconds = msg[2:]
    if (type(status) is not str or status not in STATUSES
            or type(value) not in (str, type(None)) or type(error) not in (str, type(None))
            or type(seconds) not in (int, float) or not 0 <= seconds < 1e9
            or (status != "ok" and value is not None) or (status == "ok") == (type(error) is str)):
        return "result", i, ExecResult("crashed", None, "the sandbox worker wrote a malformed result", 0.0)
    return "result", i, ExecResult(status, value, error, float(seconds))


def _error_type(r: ExecResult) -> str:
    return (r.error or "").split(":", 1)[0]


def _agree(a: ExecResult, b: ExecResult) -> bool:
    if a.status != b.status:
        return False
    if a.status == "ok":
        return a.value == b.value
    if a.status in ("error", "rejected"):
        return _error_type(a) == _error_type(b)
    return True


def _resolve(a: ExecResult, b: ExecResult) -> ExecResult:
    """Two isolated runs disagree: the worst outcome wins, else the program is nondeterministic."""
    seconds = max(a.seconds, b.seconds)
    for status in ("timeout", "crashed"):
        for r in (a, b):
            if r.status == status:
                return dataclasses.replace(r, seconds=seconds)
    shown = [r.value if r.status == "ok" else f"{r.status}: {r.error}" for r in (a, b)]
    return ExecResult("rejected", None,
                      f"nondeterministic: run 1 gave {shown[0]!s:.80}, run 2 gave {shown[1]!s:.80}", seconds)
