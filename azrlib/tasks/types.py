"""The task records every layer above the sandbox passes around.

AZR names: `code_o` = deduction, `code_i` = abduction, `code_f` = induction.
A deduction/abduction task is a triplet (program, input, output); an induction task is a program
with 10 input/output pairs (5 shown to the solver, 5 hidden checks) and a message.
`input` strings are argument text exactly as written by the model (e.g. `'abc', [1, 2]`), and
`output` strings are the sandbox's canonical repr of `f(<input>)`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

TASK_TYPES = ("deduction", "abduction", "induction")
ROLES = ("propose", "solve")
AZR_NAMES = {"deduction": "code_o", "abduction": "code_i", "induction": "code_f"}

ZERO_PROGRAM = "def f(a):\n    return a"
ZERO_INPUT = '"Hello world"'


@dataclass(frozen=True)
class Task:
    """One verified task. For deduction/abduction `inputs`/`outputs` hold exactly one pair."""

    task_type: str
    program: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    message: str = ""
    step: int = -1  # training step that proposed it (-1: seed)
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if self.task_type not in TASK_TYPES:
            raise ValueError(f"task_type must be one of {TASK_TYPES}, got {self.task_type!r}")
        if len(self.inputs) != len(self.outputs) or not self.inputs:
            raise ValueError("a task needs as many outputs as inputs, and at least one pair")

    @property
    def input(self) -> str:
        return self.inputs[0]

    @property
    def output(self) -> str:
        return self.outputs[0]

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["inputs"] = list(self.inputs)
        d["outputs"] = list(self.outputs)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Task":
        return cls(
            task_type=d["task_type"],
            program=d["program"],
            inputs=tuple(d["inputs"]),
            outputs=tuple(d["outputs"]),
            message=d.get("message", ""),
            step=int(d.get("step", -1)),
            meta=dict(d.get("meta", {})),
        )


def zero_task(task_type: str) -> Task:
    """AZR's zero triplet (identity function on "Hello world"); the induction seed uses six inputs
    of different types with the message AZR gives it."""
    if task_type == "induction":
        inputs = ('"Hello world"', "1", "[1, 2, 3]", "{'a': 1}", "(1, 'b')", "3.5")
        outputs = ("'Hello world'", "1", "[1, 2, 3]", "{'a': 1}", "(1, 'b')", "3.5")
        return Task("induction", ZERO_PROGRAM, inputs, outputs,
                    message="Write a function that returns whatever you input")
    return Task(task_type, ZERO_PROGRAM, (ZERO_INPUT,), ("'Hello world'",))
