"""The six AZR prompts (propose/solve x deduction/abduction/induction) and their gold completions.

Every prompt is wrapped R1-style, without a chat template: one system sentence saying that the
assistant thinks inside <think> </think> and answers inside <answer> </answer>, then
`User: {prompt}\\nAssistant: <think>`. Generation continues right after that `<think>`, so a
completion looks like `... reasoning ... </think>\\n<answer>\\n...blocks...\\n</answer>`.

What each role sees and answers (AZR names: code_o = deduction, code_i = abduction, code_f =
induction):

| prompt | shows | answer blocks |
|---|---|---|
| propose deduction/abduction | rules, K triplets (```python/input/output) | ```python + ```input |
| propose induction | one program from the buffer | `num_inputs` (10) ```input + one ```message |
| solve deduction | ```python + ```input | ```output |
| solve abduction | ```python + ```output | ```input |
| solve induction | shown ```input_i / ```output_i pairs + ```message | ```python defining `f` |

Two styles, same wrapper and same block formats:
- `"azr"`: instructions of AZR's length and structure (K=6 references by default), written in our
  own words.
- `"compact"`: a few lines of instructions for a tiny (1-5M parameter) model with a short context
  (K=2 references by default).

Where this departs from AZR (each one is a named option or a documented choice):
- `azr_swap_criteria` (default True for style "azr", False for "compact"): AZR's deduction
  proposer prompt asks for a program whose *input* is hard to recover, and its abduction proposer
  prompt asks for one whose *output* is hard to predict; the two "evaluation criteria" sentences are
  swapped relative to the task each prompt describes. True reproduces that; False gives each
  prompt the sentence that matches its task.
- `allow_helpers` (default False): AZR's prompt invites nested definitions and classes while its
  parser rejects any program with more than one `def` (methods included). Our prompt states the rule
  the parser (`parsing.parse_proposal(..., allow_helpers=...)`) will apply, so the two agree.
- The induction proposer sees the program followed by a sentence saying each input is called as
  `f(<input>)`; AZR appends an (unrunnable) line `f(<|YOUR INPUT WILL BE PLUGGED HERE|>)` inside
  the code block instead.
- Induction pairs shown to the solver: the first `n_shown` (default 5) pairs are shown and the rest
  are hidden checks (`split_induction_pairs`), so the split is deterministic. `n_shown` is capped
  at `len(pairs) - 1` so at least one hidden check remains whenever a task has two or more pairs.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from azrlib.tasks.completions import (  # noqa: F401 - re-exported
    fence, proposal_answer_body, render_completion, render_proposal_answer, render_solver_answer, solver_answer_body,
)
from azrlib.tasks.types import TASK_TYPES, Task

STYLES = ("azr", "compact")
DEFAULT_NUM_REFERENCES = {"azr": 6, "compact": 2}
DEFAULT_NUM_INDUCTION_INPUTS = 10
DEFAULT_N_SHOWN = 5
DEFAULT_SWAP_CRITERIA = {"azr": True, "compact": False}

# AZR's banned import list (reference_facts section 1). The validator enforces its own copy; the
# prompt only tells the model about it, so callers should pass the validator's list.
DEFAULT_BANNED_MODULES: tuple[str, ...] = (
    "logging", "random", "multiprocessing", "pebble", "subprocess", "threading",
    "datetime", "time", "hashlib", "hmac", "bcrypt", "calendar",
)

SYSTEM_SENTENCE = (
    "This is a dialogue between a User and an Assistant. The User sets a task and the Assistant "
    "completes it. Before replying, the Assistant reasons the problem through privately and only "
    "then states its answer. The reasoning goes inside <think> </think> tags and the answer inside "
    "<answer> </answer> tags, as in: <think> reasoning goes here </think> <answer> answer goes "
    "here </answer>."
)

PROMPT_SUFFIX = "Assistant: <think>"


# --------------------------------------------------------------------------------------------
# Small building blocks
# --------------------------------------------------------------------------------------------

# The compact style keeps the R1 structure with a one-line system sentence: for the tiny model
# every prompt token costs pretraining compute, and the long sentence carries no task information.
COMPACT_SYSTEM_SENTENCE = "Think in <think> </think>, then answer in <answer> </answer>."


def system_sentence(style: str = "azr") -> str:
    return COMPACT_SYSTEM_SENTENCE if style == "compact" else SYSTEM_SENTENCE


def wrap_prompt(user_text: str, style: str = "azr") -> str:
    """R1-style wrapper shared by all six prompts; ends with `Assistant: <think>`."""
    return f"{system_sentence(style)}\nUser: {user_text}\n{PROMPT_SUFFIX}"


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")


def _check_task_type(task_type: str) -> None:
    if task_type not in TASK_TYPES:
        raise ValueError(f"task_type must be one of {TASK_TYPES}, got {task_type!r}")


def split_induction_pairs(
    task: Task, n_shown: int = DEFAULT_N_SHOWN
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(shown, hidden) input/output pairs of an induction task: the first `n_shown` are shown,
    the rest are hidden checks. `n_shown` is capped at len(pairs) - 1 (but at least 1) so a task
    with two or more pairs always keeps a hidden check."""
    pairs = list(zip(task.inputs, task.outputs))
    n = max(1, min(n_shown, len(pairs) - 1))
    return pairs[:n], pairs[n:]


# --------------------------------------------------------------------------------------------
# Proposer prompts, style "azr"
# --------------------------------------------------------------------------------------------

# The two "evaluation criteria" difficulty sentences; which prompt gets which is decided by
# `azr_swap_criteria`.
CRITERION_OUTPUT_HARD = (
    "Difficulty: predicting the output from your program and your input should be hard. Go for "
    "depth of algorithm or logic, for example custom data structures (trees, heaps, stacks, "
    "queues, graphs) or involved control flow (recursion, dynamic programming, divide and "
    "conquer, greedy choices, backtracking)"
)
CRITERION_INPUT_HARD = (
    "Difficulty: recovering your ```input``` from 1) your ```python``` program and 2) the "
    "deterministic ```output``` it gives on that input should be hard. Go for depth of algorithm "
    "or logic, for example custom data structures (trees, heaps, stacks, queues, graphs) or "
    "involved control flow (recursion, dynamic programming, divide and conquer, greedy choices, "
    "backtracking)"
)

_AZR_TASK_INTRO = {
    "deduction": (
        "## Task: Write a New Python Program Together With One Input for It\n\n"
        "Taking the reference programs below as examples, write a new and original Python program "
        "that takes careful, multi-step algorithmic reasoning to work out what it returns for a "
        "given input. Submit the program and one input for it; we run the program on that input "
        "to obtain the output. A test taker is then shown the program and the input and must "
        "predict the output, so think of this as a reasoning exam."
    ),
    "abduction": (
        "## Task: Write a New Python Program Together With One Input for It\n\n"
        "Taking the reference programs below as examples, write a new and original Python program "
        "that takes careful, multi-step algorithmic reasoning to work out an input that leads to a "
        "given output. Submit the program and one input for it; we run the program on that input "
        "to obtain the output. A test taker is then shown the program and that output and must "
        "come up with any input that makes the program return it, so think of this as a "
        "reasoning exam."
    ),
}

_AZR_AVOID_LIST = (
    "- Stay away from:\n"
    "  * random numbers or random choices\n"
    "  * dates, clocks or timing\n"
    "  * input/output such as reading files or network requests\n"
    "  * printing or logging\n"
    "  * any state outside the program"
)


def _azr_program_requirements(allow_helpers: bool, multi_step: bool = True,
                              heading: str = "### Program Requirements:") -> str:
    if allow_helpers:
        structure = ("- Name the entry function `f` (e.g. `def f(...): ...`); helper functions and "
                     "classes are allowed if they are defined above `f`")
    else:
        structure = ("- Define exactly one function and name it `f` (e.g. `def f(...): ...`); "
                     "programs with any other function, method or nested function are rejected")
    lines = [
        heading,
        structure,
        "- `f` must return a value",
        "- `f` takes at least one argument",
        "- `f` must be deterministic: the same input always gives the same output",
    ]
    if multi_step:
        lines.append("- Solving the task should mean tracking state through several "
                     "transformations of the data, so that it takes many reasoning steps")
    lines += [
        _AZR_AVOID_LIST,
        "- The program must finish within 10 seconds on an ordinary CPU",
        "- Put all imports at the very top of the program",
    ]
    return "\n".join(lines)


_AZR_INPUT_REQUIREMENTS = (
    "### Input Requirements:\n"
    "- Give exactly one input for your function\n"
    "- Separate multiple arguments with commas\n"
    "- Put quotes around string arguments"
)

_EXAMPLE_PROGRAM = ("def f(words: list, limit: int):\n"
                    "    # your logic here\n"
                    "    return result")
_EXAMPLE_INPUT = "['apple', 'kiwi', 'fig'], 3"


def _azr_answer_format_triplet() -> str:
    return "\n".join([
        "### Answer Format:",
        "- Write your program as:",
        fence("python", "def f(...):\n    # your code\n    return ..."),
        "- Write your input as:",
        fence("input", "arg1, arg2, ..."),
        "",
        "### Example of the Format:",
        fence("python", _EXAMPLE_PROGRAM),
        "",
        fence("input", _EXAMPLE_INPUT),
    ])


def _difficulty_criterion(task_type: str, swap: bool) -> str:
    matching = CRITERION_OUTPUT_HARD if task_type == "deduction" else CRITERION_INPUT_HARD
    other = CRITERION_INPUT_HARD if task_type == "deduction" else CRITERION_OUTPUT_HARD
    return other if swap else matching


def _azr_criteria_triplet(task_type: str, swap: bool, banned_modules: Sequence[str]) -> str:
    lines = [
        "### Evaluation Criteria:",
        "- Runs: your program must run without error on your input",
        "- " + _difficulty_criterion(task_type, swap),
        "- Originality: the program must be clearly different from the reference programs",
    ]
    if banned_modules:
        lines.append("- Banned words: do not use any of these words anywhere, not even in "
                     "comments: " + ", ".join(banned_modules))
    return "\n".join(lines)


def render_reference(task: Task, index: int, style: str = "azr") -> str:
    """One reference triplet: ```python, ```input, ```output (first pair of the task).
    Style "azr" numbers and tags each reference; "compact" leaves the bare blocks."""
    blocks = "\n".join([fence("python", task.program), fence("input", task.input),
                        fence("output", task.output)])
    if style == "compact":
        return blocks
    return f"<reference_{index}>\n{blocks}\n</reference_{index}>"


def _render_references(references: Sequence[Task], style: str) -> str:
    return "\n".join(render_reference(t, i, style) for i, t in enumerate(references))


def _azr_propose_triplet(task_type: str, references: Sequence[Task], swap: bool,
                         banned_modules: Sequence[str], allow_helpers: bool) -> str:
    return "\n\n".join([
        _AZR_TASK_INTRO[task_type],
        _azr_program_requirements(allow_helpers),
        _AZR_INPUT_REQUIREMENTS,
        _azr_answer_format_triplet(),
        _azr_criteria_triplet(task_type, swap, banned_modules),
        "Start with a clear plan: decide what will make your program hard, how it differs from the "
        "reference programs and why it is original. Then write the final program and its input.",
        "### Reference Programs:\n" + _render_references(references, "azr"),
    ])


def _azr_propose_induction(program: str, num_inputs: int) -> str:
    input_examples = "\n".join([fence("input", "'Maria', {'age': 31, 'city': 'Lisbon'}"),
                                fence("input", "'Tom', {'age': 58, 'city': 'Oslo'}")])
    return "\n\n".join([
        f"## Task: Write {num_inputs} Inputs for the Program Below That Produce Varied Outputs, "
        "Plus a Message About the Program",
        f"For the Python program below, write {num_inputs} inputs that together make it produce a "
        "varied set of outputs. Some of your inputs, with the outputs the program gives for them, "
        "will be shown to a test taker who must reconstruct the program from them, so think of "
        "this as a reasoning exam. You can also leave the test taker a message to help them.",
        "### Input Requirements:\n"
        f"- Give {num_inputs} valid inputs for the program\n"
        "- In each input, separate multiple arguments with commas\n"
        "- Put quotes around string arguments\n"
        "- Wrap each input in its own ```input``` block",
        "### Message Requirements:\n"
        "- Leave the test taker a message that helps them work out the program\n"
        "- Wrap the message in a ```message``` block\n"
        "- The message can take any form, for example a coding problem statement or a plain "
        "description of what the program does\n"
        "- Do not put the program's code in the message",
        "### Answer Format:\n- Write each input as:\n" + fence("input", "arg1, arg2, ...")
        + "\n- Write the message as:\n" + fence("message", "your message"),
        "### Example of the Format:\n" + input_examples + "\n"
        + fence("message", "Give the person's name followed by the city they live in."),
        "### Evaluation Criteria:\n"
        "- Runs: the program must run without error on each of your inputs\n"
        "- Coverage: the inputs and their outputs should span the program's behaviour well "
        "enough to pin the program down\n"
        "- Variety: the inputs should differ clearly from one another\n"
        "- Challenge: the inputs and the message together should make the test hard, but not "
        "impossible",
        "Start with a clear plan: understand the program, then decide how your inputs cover its "
        "behaviour and why they make a hard but fair test. Then write the inputs and the message. "
        "Remember: each input in its own ```input``` block, the message in a ```message``` block.",
        "### Program:\n" + fence("python", program)
        + "\nEach of your inputs is passed to the program as `f(<your input>)`.",
    ])


# --------------------------------------------------------------------------------------------
# Proposer prompts, style "compact"
# --------------------------------------------------------------------------------------------

_COMPACT_GOAL = {
    "deduction": "make the output hard to predict from f and the input.",
    "abduction": "make an input hard to find from f and its output.",
}


def _compact_propose_triplet(task_type: str, references: Sequence[Task], swap: bool,
                             banned_modules: Sequence[str], allow_helpers: bool) -> str:
    other = "abduction" if task_type == "deduction" else "deduction"
    goal = _COMPACT_GOAL[other if swap else task_type]
    shown_to_solver = "f and the input" if task_type == "deduction" else "f and its output"
    one_function = "helpers allowed above f" if allow_helpers else "only one function"
    rules = (f"Rules: {one_function}; f returns a value; deterministic; no random, time, I/O or "
             "print; fast; imports at top.")
    lines = [
        f"Write a new Python function f and one input for it. A solver will see {shown_to_solver}; "
        + goal,
        rules,
    ]
    if banned_modules:
        lines.append("Banned words: " + ", ".join(banned_modules) + ".")
    lines += [
        "Answer with:",
        fence("python", "def f(...):\n    return ..."),
        fence("input", "arg1, arg2"),
        "Examples:",
        _render_references(references, "compact"),
    ]
    return "\n".join(lines)


def _compact_propose_induction(program: str, num_inputs: int) -> str:
    return "\n".join([
        f"Write {num_inputs} different inputs for f, each in its own ```input block, and a "
        "```message block with a hint about what f does (no code).",
        fence("python", program),
    ])


# --------------------------------------------------------------------------------------------
# Public: proposer prompt
# --------------------------------------------------------------------------------------------

def propose_prompt(
    task_type: str,
    references: Sequence[Task] = (),
    style: str = "azr",
    banned_modules: Sequence[str] = DEFAULT_BANNED_MODULES,
    program_for_induction: Task | None = None,
    *,
    num_inputs: int = DEFAULT_NUM_INDUCTION_INPUTS,
    azr_swap_criteria: bool | None = None,
    allow_helpers: bool = False,
) -> str:
    """Full proposer prompt (wrapper included), ending with `Assistant: <think>`.

    Deduction/abduction show every task in `references` (the caller samples K of them, see
    `DEFAULT_NUM_REFERENCES`). Induction shows `program_for_induction`, or `references[0]` when
    that is None (as AZR does). `azr_swap_criteria=None` uses the style's default
    (`DEFAULT_SWAP_CRITERIA`)."""
    _check_style(style)
    _check_task_type(task_type)
    swap = DEFAULT_SWAP_CRITERIA[style] if azr_swap_criteria is None else azr_swap_criteria
    if task_type == "induction":
        source = program_for_induction if program_for_induction is not None else (
            references[0] if references else None)
        if source is None:
            raise ValueError("an induction proposal needs program_for_induction (or a reference)")
        build = _azr_propose_induction if style == "azr" else _compact_propose_induction
        return wrap_prompt(build(source.program, num_inputs), style)
    build = _azr_propose_triplet if style == "azr" else _compact_propose_triplet
    return wrap_prompt(build(task_type, list(references), swap, tuple(banned_modules),
                             allow_helpers), style)


# --------------------------------------------------------------------------------------------
# Solver prompts
# --------------------------------------------------------------------------------------------

def _azr_solve_deduction(task: Task) -> str:
    return "\n\n".join([
        "# Task: Work Out the Output of a Python Program for a Given Input\n"
        "Read the program and the input below, reason step by step, and work out what the program "
        "returns when called with that input. Put your answer in an ```output``` block. If the "
        "output is a string, put quotes around it; if the function returns several values, write "
        "them as a tuple.",
        "# Program:\n" + fence("python", task.program),
        "# Input:\n" + fence("input", task.input),
        "# Example of the Answer Format:\n" + fence("output", "[3, 'b', {'k': 1}]"),
    ])


def _azr_solve_abduction(task: Task) -> str:
    return "\n\n".join([
        "# Task: Find an Input That Makes a Python Program Return a Given Output\n"
        "Read the program and the output below, reason step by step, and give one input for which "
        "the program returns exactly that output. Put your input in an ```input``` block. Put "
        "quotes around string arguments and separate multiple arguments with commas.",
        "# Program:\n" + fence("python", task.program),
        "# Output:\n" + fence("output", task.output),
        "# Answer Format:\n" + fence("input", "arg1, arg2, ..."),
        "# Example of the Answer Format:\n" + fence("input", _EXAMPLE_INPUT),
    ])


def _render_shown_pairs(pairs: Iterable[tuple[str, str]], indexed: bool) -> str:
    blocks = []
    for i, (inp, out) in enumerate(pairs):
        in_tag, out_tag = (f"input_{i}", f"output_{i}") if indexed else ("input", "output")
        blocks += [fence(in_tag, inp), fence(out_tag, out)]
    return "\n".join(blocks)


def _azr_solve_induction(task: Task, n_shown: int) -> str:
    shown, _hidden = split_induction_pairs(task, n_shown)
    return "\n\n".join([
        "# Task: Reconstruct the Function Behind These Inputs and Outputs\n"
        "Below are some inputs, the outputs a hidden Python function returns for them, and a "
        "message about the function. Reason step by step and write a program that behaves like "
        "the hidden one: it will also be checked on further inputs you cannot see. Go through the "
        "pairs one by one to test your function, and revise it until every pair works. Your final "
        "program is what gets evaluated; put it in a ```python``` block.",
        _azr_program_requirements(allow_helpers=True, multi_step=False,
                                  heading="# Program Requirements:"),
        "# Inputs and Outputs:\n" + _render_shown_pairs(shown, indexed=True),
        "# Message:\n" + fence("message", task.message),
        "# Example of the Answer Format:\n" + fence("python", "def f(a):\n    return a"),
        "Name your entry function `f`!",
    ])


def _compact_solve(task: Task, n_shown: int) -> str:
    if task.task_type == "deduction":
        return "\n".join(["Give what f returns for the input, in an ```output block.",
                          fence("python", task.program), fence("input", task.input)])
    if task.task_type == "abduction":
        return "\n".join(["Give an input for which f returns the output, in an ```input block.",
                          fence("python", task.program), fence("output", task.output)])
    shown, _hidden = split_induction_pairs(task, n_shown)
    return "\n".join(["Write f that maps each input to its output, in a ```python block.",
                      _render_shown_pairs(shown, indexed=False),
                      fence("message", task.message)])


def solve_prompt(task: Task, style: str = "azr", n_shown: int = DEFAULT_N_SHOWN) -> str:
    """Full solver prompt (wrapper included), ending with `Assistant: <think>`. For induction only
    the shown pairs (`split_induction_pairs(task, n_shown)[0]`) appear."""
    _check_style(style)
    if style == "compact":
        return wrap_prompt(_compact_solve(task, n_shown), style)
    if task.task_type == "deduction":
        return wrap_prompt(_azr_solve_deduction(task))
    if task.task_type == "abduction":
        return wrap_prompt(_azr_solve_abduction(task))
    return wrap_prompt(_azr_solve_induction(task, n_shown))
