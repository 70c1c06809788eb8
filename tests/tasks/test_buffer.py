"""Task buffers: seeding, cap policies, sampling, dedup, persistence."""

import json
import random

import pytest

from azrlib.tasks.buffer import TaskBuffer, make_buffers
from azrlib.tasks.types import TASK_TYPES, Task, zero_task


def task(i: int, task_type: str = "deduction", step: int = 0) -> Task:
    return Task(task_type, f"def f(x):\n    return x + {i}", ("1",), (str(1 + i),), step=step)


def filled(n: int, **options) -> TaskBuffer:
    buffer = TaskBuffer("deduction", seed_with_zero=False, **options)
    buffer.extend(task(i) for i in range(n))
    return buffer


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_new_buffer_holds_only_the_zero_task(task_type):
    assert TaskBuffer(task_type).tasks == (zero_task(task_type),)


def test_references_are_distinct_and_uniform_without_replacement():
    buffer = filled(20)
    rng = random.Random(0)
    for _ in range(50):
        refs = buffer.sample_references(6, rng)
        assert len(refs) == 6 and len(set(refs)) == 6 and all(r in buffer for r in refs)


def test_references_from_a_small_buffer_are_all_of_it():
    buffer = filled(3)
    assert sorted(buffer.sample_references(6, random.Random(1)), key=str) == sorted(buffer.tasks,
                                                                                   key=str)


def test_same_seed_gives_same_draws():
    buffer = filled(30)
    draws = [(buffer.sample_references(6, rng), buffer.solver_batch(10, rng, [task(99)]))
             for rng in (random.Random(7), random.Random(7))]
    assert draws[0] == draws[1]


def test_drop_oldest_keeps_the_newest_cap_tasks():
    buffer = filled(8, cap=5)
    assert buffer.tasks == tuple(task(i) for i in range(3, 8))
    assert buffer.n_evicted == 3


def test_keep_oldest_drops_new_tasks_once_full_like_azr():
    buffer = filled(5, cap=5, cap_policy="keep_oldest")
    assert buffer.add(task(99)) is False
    assert buffer.tasks == tuple(task(i) for i in range(5)) and buffer.n_dropped_full == 1


def test_unknown_cap_policy_is_refused():
    with pytest.raises(ValueError):
        TaskBuffer("deduction", cap_policy="random")


def test_dedup_by_program_and_inputs():
    buffer = filled(3, dedup=True)
    same_program_other_step = task(1, step=9)
    assert buffer.add(same_program_other_step) is False and len(buffer) == 3
    assert filled(3).add(same_program_other_step) is True


def test_evicted_task_can_come_back_under_dedup():
    buffer = filled(3, cap=3, dedup=True)
    buffer.add(task(50))  # evicts task(0)
    assert task(0) not in buffer and buffer.add(task(0)) is True


def test_wrong_task_type_is_refused():
    with pytest.raises(ValueError):
        TaskBuffer("deduction").add(task(0, task_type="abduction"))


def test_solver_batch_puts_newest_first_then_fills_without_repeats():
    buffer = filled(20)
    newest = [task(100), task(101)]
    buffer.extend(newest)
    batch = buffer.solver_batch(8, random.Random(3), newest_first=newest)
    assert batch[:2] == newest and len(batch) == 8 and len(set(batch)) == 8


def test_solver_batch_truncates_newest_to_batch_size():
    newest = [task(100 + i) for i in range(5)]
    assert filled(10).solver_batch(3, random.Random(0), newest) == newest[:3]


def test_solver_batch_repeats_only_when_the_buffer_is_too_small():
    buffer = filled(3)
    batch = buffer.solver_batch(7, random.Random(0))
    assert len(batch) == 7 and set(batch) == set(buffer.tasks)


def test_save_load_round_trip(tmp_path):
    buffer = TaskBuffer("induction", dedup=True)
    odd = Task("induction", "def f(s):\n    return s + '\u2028é'", ("'a'", "'b'"),
               ("'a\\u2028é'", "'b\\u2028é'"), message="appends", step=3, meta={"p": 0.5})
    buffer.add(odd)
    path = tmp_path / "sub" / "induction.jsonl"
    buffer.save(path)
    loaded = TaskBuffer.load(path)
    assert loaded.task_type == "induction" and loaded.tasks == buffer.tasks
    assert loaded.tasks[1].meta == {"p": 0.5}
    assert [p.name for p in path.parent.iterdir()] == ["induction.jsonl"]  # no temp file left


def test_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "b.jsonl"
    filled(5).save(path)
    filled(2).save(path)
    assert len(path.read_text().splitlines()) == 2


def test_state_dict_round_trip_is_exact_and_json_serialisable():
    buffer = filled(6, cap=4, cap_policy="drop_oldest", dedup=True)
    buffer.add(task(5))  # a duplicate, counted
    state = json.loads(json.dumps(buffer.state_dict()))
    restored = TaskBuffer.from_state_dict(state)
    assert restored.tasks == buffer.tasks
    assert (restored.cap, restored.cap_policy, restored.dedup) == (4, "drop_oldest", True)
    assert (restored.n_evicted, restored.n_duplicates) == (2, 1)
    assert restored.add(task(5)) is False  # dedup index rebuilt


def test_make_buffers_gives_one_seeded_buffer_per_type():
    buffers = make_buffers(cap=10)
    assert set(buffers) == set(TASK_TYPES)
    assert all(b.tasks == (zero_task(t),) and b.cap == 10 for t, b in buffers.items())
