"""`azr tiny-usefulness` numbers against a scripted sampler whose answers are known: solve rates,
the mixed fraction, and which proposals count as valid and new (copies of a reference do not;
induction with 11 inputs only under AZR's shipped parser)."""

from __future__ import annotations

import pytest

from azrlib.rollout.base import Completion
from azrlib.sandbox import Executor, detect_isolation
from azrlib.tasks import templates
from azrlib.tasks.types import Task
from azrlib.tinyworld.usefulness import meets_targets, usefulness

CAPS = detect_isolation()
if not CAPS["bubblewrap"] and not (CAPS["seccomp"] and CAPS["landlock_abi"] > 0):  # pragma: no cover
    pytest.skip("no sandbox isolation available on this machine", allow_module_level=True)


def _triplet(t: str, program: str, x: str, y: str, level: int) -> Task:
    return Task(t, program, (x,), (y,), meta={"level": level})


BENCH = {
    "deduction": [_triplet("deduction", "def f(a):\n    return a + 1", "1", "2", 1),
                  _triplet("deduction", "def f(a):\n    return a * 3", "2", "6", 2)],
    "abduction": [_triplet("abduction", "def f(s):\n    return s[::-1]", "'ab'", "'ba'", 1),
                  _triplet("abduction", "def f(s):\n    return s + 'x'", "'a'", "'ax'", 2)],
    "induction": [Task("induction", "def f(a):\n    return a - 1", tuple(str(i) for i in range(10)),
                       tuple(str(i - 1) for i in range(10)), message="Subtracts one.", meta={"level": 1})],
}
NEW_PROGRAM = "def f(a):\n    return a * a"


class ScriptedSampler:
    """Solver prompts: the gold answer on even samples, a wrong one on odd samples (solve rate 1/2);
    proposer prompts: deduction a new program, abduction a copy of the first reference, induction
    11 valid inputs."""

    def generate(self, prompts, n, temperature, top_p, max_new_tokens, stop, seed):
        out = []
        for i, prompt in enumerate(prompts):
            row = []
            for j in range(n):
                text = self._answer(prompt, j)
                row.append(Completion(i, j, [1, 2], text, [-0.1, -0.1], "stop"))
            out.append(row)
        return out

    def _answer(self, prompt: str, j: int) -> str:
        for t, tasks in BENCH.items():
            for task in tasks:
                if prompt == templates.solve_prompt(task, style="compact"):
                    if j % 2:
                        wrong = Task(t, "def f(a):\n    return 0", ("123",), ("123",))
                        return templates.render_solver_answer(wrong, "guess")
                    return templates.render_solver_answer(task, "trace")
        if "```input" in prompt and "different inputs" in prompt:  # propose induction
            arg = (lambda k: repr(f"a{k}")) if "def f(s)" in prompt else str  # inputs of the shown f's type
            blocks = "".join(templates.fence("input", arg(k)) + "\n" for k in range(11))
            return f" plan </think>\n<answer>\n{blocks}{templates.fence('message', 'Squares it.')}\n</answer>"
        if "f and its output" in prompt:  # propose abduction
            ref = BENCH["abduction"][0]
            proposal = Task("abduction", ref.program, ref.inputs, ref.outputs)
        else:
            proposal = Task("deduction", NEW_PROGRAM, ("4",), ("16",))
        return templates.render_proposal_answer(proposal, "idea")


@pytest.fixture(scope="module")
def ex():
    with Executor(timeout_s=2.0) as executor:
        yield executor


@pytest.mark.parametrize("extra", [False, True])
def test_usefulness_counts_what_the_sampler_did(ex, extra):
    report = usefulness(ScriptedSampler(), ex, BENCH, n=4, n_propose=6, allow_extra_inputs=extra)
    for t in ("deduction", "abduction", "induction"):
        assert report[f"{t}/solve_rate"] == pytest.approx(0.5), t
        assert report[f"{t}/mixed_fraction"] == 1.0
    assert report["deduction/valid_proposals"] == 1.0  # a new, valid program
    assert report["abduction/valid_proposals"] == 0.0  # valid, but a copy of a reference
    assert report["induction/valid_proposals"] == (1.0 if extra else 0.0)  # 11 inputs: AZR's parser keeps 10
    checks = meets_targets(report)
    assert checks["deduction/solve_rate in [0.15, 0.6]"] and checks["induction/solve_rate > 0"]
