"""Task buffers, one per task type: where valid proposals are kept and drawn from.

What AZR does (reference_facts section 1): one buffer per task type, seeded from the zero triplet;
proposers get K=6 references sampled uniformly without replacement from their task's buffer;
solver batches take the last step's new tasks first and fill the rest uniformly from the buffer;
every valid proposal is kept; the cap (16384) keeps the oldest, so new tasks are dropped once full.

Choices made here (each a named option):
- `cap_policy="drop_oldest"` (default): when full, the oldest task makes room for the new one, so
  the buffer follows the current policy. `cap_policy="keep_oldest"` is AZR's behaviour.
- `dedup=False` (default, as AZR): when True, a task whose (program, inputs) is already held is
  not added again.
- `solver_batch` backfills from buffer entries that are not among the given newest tasks (so a
  batch does not hold the same new task twice), drawing without replacement; only when there are
  fewer such entries than places left does it take all of them once and then draw the rest with
  replacement. "Entries" are positions in the buffer: with `dedup=False` two equal tasks are two
  entries.

All randomness comes from the `random.Random` passed in, so equal seeds give equal draws.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from azrlib.tasks.types import TASK_TYPES, Task, zero_task

CAP_POLICIES = ("drop_oldest", "keep_oldest")
AZR_BUFFER_CAP = 16384
STATE_VERSION = 1
_COUNTER_NAMES = ("n_added", "n_dropped_full", "n_evicted", "n_duplicates", "n_removed")


def task_key(task: Task) -> tuple[str, tuple[str, ...]]:
    """Identity used for deduplication: the program and its inputs."""
    return task.program, task.inputs


class TaskBuffer:
    """Ordered oldest to newest; seeded with `zero_task(task_type)` unless seed_with_zero=False."""

    def __init__(
        self,
        task_type: str,
        *,
        cap: int = AZR_BUFFER_CAP,
        cap_policy: str = "drop_oldest",
        dedup: bool = False,
        seed_with_zero: bool = True,
    ):
        if task_type not in TASK_TYPES:
            raise ValueError(f"task_type must be one of {TASK_TYPES}, got {task_type!r}")
        if cap_policy not in CAP_POLICIES:
            raise ValueError(f"cap_policy must be one of {CAP_POLICIES}, got {cap_policy!r}")
        if cap < 1:
            raise ValueError("cap must be at least 1")
        self.task_type = task_type
        self.cap = cap
        self.cap_policy = cap_policy
        self.dedup = dedup
        self._tasks: list[Task] = []
        self._key_counts: Counter = Counter()
        # Lifetime counters, for logging how much the cap and dedup throw away.
        self.n_added = 0
        self.n_dropped_full = 0
        self.n_evicted = 0
        self.n_duplicates = 0
        self.n_removed = 0  # tasks whose gold stopped reproducing (`remove`)
        if seed_with_zero:
            self.add(zero_task(task_type))

    # ----------------------------------------------------------------------------------------
    # Contents
    # ----------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks))

    def __contains__(self, task: object) -> bool:
        """True when a task with the same (program, inputs) is held."""
        return isinstance(task, Task) and self._key_counts[task_key(task)] > 0

    @property
    def tasks(self) -> tuple[Task, ...]:
        """Snapshot, oldest first."""
        return tuple(self._tasks)

    def add(self, task: Task) -> bool:
        """Append `task`; False when it was not kept (duplicate under dedup, or buffer full under
        keep_oldest)."""
        if task.task_type != self.task_type:
            raise ValueError(f"a {task.task_type} task cannot go into the {self.task_type} buffer")
        key = task_key(task)
        if self.dedup and self._key_counts[key] > 0:
            self.n_duplicates += 1
            return False
        if len(self._tasks) >= self.cap:
            if self.cap_policy == "keep_oldest":
                self.n_dropped_full += 1
                return False
            self._evict_oldest()
        self._tasks.append(task)
        self._key_counts[key] += 1
        self.n_added += 1
        return True

    def extend(self, tasks: Iterable[Task]) -> int:
        """Add each task in order; returns how many were kept."""
        return sum(self.add(task) for task in tasks)

    def remove(self, task: Task) -> int:
        """Remove every entry with the task's (program, inputs): used when its gold no longer
        reproduces (`Verdict.gold_ok` is False). Returns how many entries went."""
        key = task_key(task)
        before = len(self._tasks)
        self._tasks = [t for t in self._tasks if task_key(t) != key]
        gone = before - len(self._tasks)
        self._key_counts.pop(key, None)
        self.n_removed += gone
        return gone

    def _evict_oldest(self) -> None:
        oldest = self._tasks.pop(0)
        key = task_key(oldest)
        self._key_counts[key] -= 1
        if self._key_counts[key] <= 0:
            del self._key_counts[key]
        self.n_evicted += 1

    # ----------------------------------------------------------------------------------------
    # Sampling
    # ----------------------------------------------------------------------------------------

    def sample_references(self, k: int, rng: random.Random) -> list[Task]:
        """K proposer references, uniformly without replacement (all of them, shuffled, when the
        buffer holds fewer than k)."""
        return rng.sample(self._tasks, min(max(k, 0), len(self._tasks)))

    def solver_batch(self, b: int, rng: random.Random,
                     newest_first: Sequence[Task] = ()) -> list[Task]:
        """`b` tasks for the solver: `newest_first` in the given order (at most b of them), then a
        uniform backfill from the buffer; see the module docstring for when it repeats tasks."""
        batch = list(newest_first)[:max(b, 0)]
        missing = b - len(batch)
        if missing <= 0 or not self._tasks:
            return batch
        newest = set(batch)
        pool = [task for task in self._tasks if task not in newest] or list(self._tasks)
        if len(pool) >= missing:
            return batch + rng.sample(pool, missing)
        everything_once = rng.sample(pool, len(pool))
        return batch + everything_once + rng.choices(pool, k=missing - len(pool))

    # ----------------------------------------------------------------------------------------
    # Persistence
    # ----------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """One `Task.to_json()` per line, oldest first; written to a temporary file in the same
        folder and moved into place, so a crash never leaves a half-written buffer."""
        lines = [json.dumps(task.to_json(), ensure_ascii=False) for task in self._tasks]
        _atomic_write_text(Path(path), "".join(line + "\n" for line in lines))

    @classmethod
    def load(cls, path: str | os.PathLike, task_type: str | None = None,
             **options) -> "TaskBuffer":
        """Buffer holding the tasks of a `save`d file (no zero seed added; `options` are the
        constructor's keywords, and the cap policy applies while loading)."""
        tasks = [Task.from_json(json.loads(line))
                 # split on "\n" only: str.splitlines would also cut at U+2028 inside a task
                 for line in Path(path).read_text(encoding="utf-8").split("\n") if line.strip()]
        if task_type is None:
            if not tasks:
                raise ValueError(f"{path} is empty: pass task_type")
            task_type = tasks[0].task_type
        options.setdefault("seed_with_zero", False)
        buffer = cls(task_type, **options)
        buffer.extend(tasks)
        return buffer

    def state_dict(self) -> dict:
        """Everything needed to restore this buffer exactly (JSON-serialisable)."""
        return {
            "version": STATE_VERSION,
            "task_type": self.task_type,
            "cap": self.cap,
            "cap_policy": self.cap_policy,
            "dedup": self.dedup,
            "tasks": [task.to_json() for task in self._tasks],
            "counters": {name: getattr(self, name) for name in _COUNTER_NAMES},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore settings, tasks (as saved, no cap or dedup applied) and counters."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown buffer state version {state.get('version')!r}")
        if state["task_type"] != self.task_type:
            raise ValueError(f"state is for {state['task_type']}, buffer is {self.task_type}")
        self.cap = int(state["cap"])
        self.cap_policy = state["cap_policy"]
        self.dedup = bool(state["dedup"])
        self._tasks = [Task.from_json(d) for d in state["tasks"]]
        self._key_counts = Counter(task_key(task) for task in self._tasks)
        counters = state.get("counters", {})
        for name in _COUNTER_NAMES:
            setattr(self, name, int(counters.get(name, 0)))

    @classmethod
    def from_state_dict(cls, state: dict) -> "TaskBuffer":
        buffer = cls(state["task_type"], seed_with_zero=False)
        buffer.load_state_dict(state)
        return buffer


def make_buffers(**options) -> dict[str, TaskBuffer]:
    """One buffer per task type, each seeded with its zero task."""
    return {task_type: TaskBuffer(task_type, **options) for task_type in TASK_TYPES}


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
