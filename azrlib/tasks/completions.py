"""Gold completions: what a perfect response after `Assistant: <think>` looks like, for a proposer
(the task's blocks) and for a solver (the answer block), in the block format the parser reads back
(`parsing.parse_proposal`, `parsing.parse_solver_answer`). Used to build supervised data (the tiny
world's documents, the SFT baseline) and scripted policies in tests.
"""

from __future__ import annotations

from azrlib.tasks.types import Task


def fence(tag: str, body: str) -> str:
    """A fenced block exactly as the parser reads it: ```tag, the body, a closing fence."""
    return f"```{tag}\n{body}\n```"


def render_completion(answer_body: str, think_text: str = "") -> str:
    """`<think>` is already in the prompt, so a completion starts inside it:
    ` {think_text} </think>\\n<answer>\\n{answer_body}\\n</answer>`."""
    thought = think_text.strip()
    think_part = f" {thought} " if thought else " "
    return f"{think_part}</think>\n<answer>\n{answer_body}\n</answer>"


def proposal_answer_body(task: Task) -> str:
    """The blocks a proposer answers with: ```python + ```input for deduction/abduction; one
    ```input per input and a ```message for induction."""
    if task.task_type == "induction":
        input_blocks = [fence("input", x) for x in task.inputs]
        return "\n".join(input_blocks + [fence("message", task.message)])
    return "\n".join([fence("python", task.program), fence("input", task.input)])


def solver_answer_body(task: Task) -> str:
    """The block a solver answers with: ```output (deduction), ```input (abduction) or
    ```python (induction)."""
    if task.task_type == "deduction":
        return fence("output", task.output)
    if task.task_type == "abduction":
        return fence("input", task.input)
    return fence("python", task.program)


def render_proposal_answer(task: Task, think_text: str = "") -> str:
    """Gold proposer completion for `task` (parsed back by `parsing.parse_proposal`)."""
    return render_completion(proposal_answer_body(task), think_text)


def render_solver_answer(task: Task, think_text: str = "") -> str:
    """Gold solver completion for `task` (parsed back by `parsing.parse_solver_answer`)."""
    return render_completion(solver_answer_body(task), think_text)
