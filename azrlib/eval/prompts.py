"""Prompt styles for benchmark evaluation, and how an answer is taken out of a completion.

Three styles, none using a chat template (base models are prompted with plain text):

`azr` (AZR's R1-style wrapper, `templates.wrap_prompt`, ending in `Assistant: <think>`; stop at
`</answer>`):
- code (HumanEval, HumanEval+, MBPP+): evalplus's instruction and the problem in a ```python block;
  answer: the last ```python (else untagged) block inside `<answer>` (the whole text without one);
- CRUXEval-O / -I: AZR's own solver prompts (`templates.solve_prompt`, deduction / abduction);
  answer: `parsing.parse_solver_answer` (last ```output / ```input block, with its fallbacks);
- math: the problem + "Please reason step by step, and put your final answer within \\boxed{}.";
  answer: the last `\\boxed{}` inside `<answer>`, else the `<answer>` text;
- tiny world: `solve_prompt(style="azr")`, answer as CRUXEval.

`qwen-boxed` (plain text, Qwen2.5-Math's instruction for math):
- code: evalplus's instruction, the problem, and evalplus's response prefix ending in an open
  ```python fence; answer: the completion up to the closing fence;
- CRUXEval: the program and a request for the completed `assert f(...) == ...` in a ```python
  block; answer: the output (-O) or the arguments (-I) of that assertion (a bare value or call too);
- math: the problem + the same \\boxed{} sentence; answer: the last `\\boxed{}`;
- tiny world: not defined (ValueError).

`plain` (completion style):
- code: the problem text alone (HumanEval: signature + docstring), stopped by evalplus's
  direct-completion stop strings; answer: prompt + completion;
- CRUXEval: the program, then `assert f(<input>) == ` (-O) or `# f(??) == <output>` and
  `assert f(` (-I); one line is completed and parsed as the assertion;
- math: the problem text alone; answer: the last `\\boxed{}`, else the last number;
- tiny world: `solve_prompt(style="compact")`, the tiny world's training format.

Where this departs from the reference harnesses:
- AZR's code evaluation runs evalplus's `codegen` (chat template for instruct models, direct completion
  for base ones); `azr` here wraps evalplus's instruction in AZR's R1 wrapper instead, and `plain`
  is evalplus's direct completion. AZR's math harness (derived from Qwen2.5-Math's) has its own
  templates, which are not reproduced: `azr` math here is the R1 wrapper around the problem and
  the \\boxed{} sentence.
- `qwen-boxed` is Qwen2.5-Math's instruction as plain text, without the `<|im_start|>` markers: the
  samplers decode with special tokens skipped, so an `<|im_end|>` stop string could never match.
- CRUXEval's reference prompts are few-shot; ours are zero-shot.
- A code answer that does not define the entry point is read as a function body and appended to the
  prompt (HumanEval only); a full program gets the prompt's import lines put in front, because
  HumanEval prompts import `List` & co. that models rarely repeat.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass

from azrlib.eval.benchmarks import Problem
from azrlib.tasks.parsing import extract_answer, last_block, parse_solver_answer
from azrlib.tasks.templates import solve_prompt, wrap_prompt

PROMPT_STYLES = ("azr", "qwen-boxed", "plain")

# evalplus/codegen's instruction and response prefix for instruction-following models.
EVALPLUS_INSTRUCTION = ("Please provide a self-contained Python script that solves the following problem "
                        "in a markdown code block:")
EVALPLUS_RESPONSE_PREFIX = ("Below is a Python script with a self-contained function that solves the problem "
                            "and passes corresponding tests:")
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

# evalplus's stop strings for direct completion (provider/utility.py: EOS + extra_eos_for_direct_completion).
_DIRECT_COMPLETION_STOPS = ["\nif __name__", "\ndef main(", "\nprint("]
_HUMANEVAL_EXTRA_STOPS = ["\ndef ", "\nclass ", "\nimport ", "\nfrom ", "\nassert "]
_MBPP_EXTRA_STOPS = ['\n"""', "\nassert"]

_ANSWER_STOP = "</answer>"


@dataclass(frozen=True)
class Extraction:
    """What was taken out of a completion. `answer` is None when nothing usable was found; for
    code it is the program to run, for CRUXEval the output / argument text, for math the answer
    text, for tiny world what `parse_solver_answer` returned."""

    answer: str | None
    reason: str = "ok"


def _check_style(style: str) -> None:
    if style not in PROMPT_STYLES:
        raise ValueError(f"prompt style must be one of {PROMPT_STYLES}, got {style!r}")


def _unsupported(problem: Problem, style: str) -> ValueError:
    return ValueError(f"prompt style {style!r} is not defined for {problem.benchmark}; use azr or plain")


# --------------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------------

def _code_block(text: str) -> str:
    return f"```python\n{text.strip()}\n```"


def build_prompt(problem: Problem, style: str) -> str:
    """The full prompt text the model continues."""
    _check_style(style)
    kind = problem.kind
    if kind in ("humaneval", "evalplus"):
        if style == "plain":
            return problem.text
        if style == "azr":
            return wrap_prompt(f"{EVALPLUS_INSTRUCTION}\n{_code_block(problem.text)}")
        return f"{EVALPLUS_INSTRUCTION}\n{_code_block(problem.text)}\n{EVALPLUS_RESPONSE_PREFIX}\n```python\n"
    if kind in ("cruxeval-o", "cruxeval-i"):
        task = problem.task
        if style == "azr":
            return solve_prompt(task, style="azr")
        program = task.program.rstrip()
        if style == "plain":
            if kind == "cruxeval-o":
                return f"{program}\nassert f({task.input}) == "
            return f"{program}\n# f(??) == {task.output}\nassert f("
        if kind == "cruxeval-o":
            question = (f"What does the function return when it is called as f({task.input})? Reason step "
                        f"by step, then finish with the completed assertion in a ```python code block:\n"
                        f"```python\nassert f({task.input}) == <the returned value as a Python literal>\n```")
        else:
            question = (f"Find an input for which the function returns {task.output}. Reason step by step, "
                        f"then finish with the completed assertion in a ```python code block:\n"
                        f"```python\nassert f(<the arguments>) == {task.output}\n```")
        return f"You are given a Python function.\n{_code_block(program)}\n{question}\n"
    if kind == "math":
        if style == "azr":
            return wrap_prompt(f"{problem.text.strip()}\n{BOXED_INSTRUCTION}")
        if style == "qwen-boxed":
            return f"{problem.text.strip()}\n{BOXED_INSTRUCTION}\n"
        return f"{problem.text.strip()}\n"
    if kind == "tinyworld":
        if style == "qwen-boxed":
            raise _unsupported(problem, style)
        return solve_prompt(problem.task, style="azr" if style == "azr" else "compact")
    raise ValueError(f"unknown problem kind {kind!r}")


def stop_strings(problem: Problem, style: str) -> list[str]:
    """Stop strings to pass to the sampler for this benchmark and style."""
    _check_style(style)
    if style == "azr":
        return [_ANSWER_STOP]
    if problem.kind in ("humaneval", "evalplus"):
        if style == "qwen-boxed":
            return ["\n```"]
        extra = _MBPP_EXTRA_STOPS if problem.benchmark == "mbpp+" else _HUMANEVAL_EXTRA_STOPS
        return _DIRECT_COMPLETION_STOPS + extra
    if problem.kind in ("cruxeval-o", "cruxeval-i") and style == "plain":
        return ["\n"]
    if problem.kind == "tinyworld":
        return [_ANSWER_STOP]
    return []


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------

def last_boxed(text: str) -> str | None:
    r"""Content of the last `\boxed{...}` (or `\fbox{...}`), braces matched; None without one."""
    for marker in ("\\boxed", "\\fbox"):
        start = text.rfind(marker)
        while start >= 0:
            i = start + len(marker)
            while i < len(text) and text[i] == " ":
                i += 1
            if i < len(text) and text[i] == "{":
                depth = 0
                for j in range(i, len(text)):
                    if text[j] == "{":
                        depth += 1
                    elif text[j] == "}":
                        depth -= 1
                        if depth == 0:
                            return text[i + 1:j].strip()
                # unbalanced: try an earlier \boxed
            elif text.startswith("\\boxed ", start):  # `\boxed 5` (no braces)
                rest = text[start + len("\\boxed "):].strip().split()
                if rest:
                    return rest[0].rstrip(".$")
            start = text.rfind(marker, 0, start)
    return None


_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")


def last_number(text: str) -> str | None:
    found = _NUMBER_RE.findall(text)
    return found[-1].replace(",", "") if found else None


def _strip_stop(text: str, stops: list[str]) -> str:
    for stop in stops:
        if stop and text.endswith(stop):
            return text[: -len(stop)]
    return text


def _defines(code: str, name: str) -> bool:
    try:
        with warnings.catch_warnings():  # model code's invalid escapes are not our warnings
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name
               for node in ast.walk(tree))


def _import_lines(prompt: str) -> str:
    lines = [line for line in prompt.splitlines() if re.match(r"^(?:import|from)\s+\w", line)]
    return "\n".join(lines)


def code_candidate(problem: Problem, code: str) -> str:
    """A full program from an answer's code: a body is appended to the prompt (HumanEval); a full
    program gets the prompt's import lines in front."""
    if problem.entry_point and not _defines(code, problem.entry_point) and problem.benchmark != "mbpp+":
        return problem.text + code
    imports = _import_lines(problem.text)
    return f"{imports}\n{code}" if imports else code


def _answer_span(completion: str) -> str:
    span = extract_answer(completion)
    return completion if span is None else span


def _code_from_blocks(text: str) -> str | None:
    code = last_block(text, "python")
    if code is None:
        code = last_block(text, "")
    return code if code and code.strip() else None


def _assertion_parts(source: str) -> tuple[str, str] | None:
    """(argument text, expected text) of the last `assert f(<args>) == <expected>` in `source`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    found = None
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare)
                and len(node.test.ops) == 1 and isinstance(node.test.ops[0], ast.Eq)
                and isinstance(node.test.left, ast.Call)):
            call = node.test.left
            parts = [ast.get_source_segment(source, a) for a in call.args + call.keywords]
            if any(p is None for p in parts):
                continue
            expected = ast.get_source_segment(source, node.test.comparators[0])
            if expected is not None:
                found = (", ".join(parts), expected)
    return found


def _cruxeval_answer(problem: Problem, code: str) -> Extraction:
    parts = _assertion_parts(code)
    is_output = problem.kind == "cruxeval-o"
    if parts is not None:
        return Extraction(parts[1] if is_output else parts[0])
    text = code.strip()
    if not text:
        return Extraction(None, "empty_answer")
    if not is_output:
        # a bare call `f(args)` answers with its arguments
        try:
            node = ast.parse(text, mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            node = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "f":
            args = [ast.get_source_segment(text, a) for a in node.args + node.keywords]
            if all(a is not None for a in args):
                return Extraction(", ".join(args))
    return Extraction(text)


def extract(problem: Problem, style: str, completion: str) -> Extraction:
    """The answer in a completion (the text generated after the prompt)."""
    _check_style(style)
    kind = problem.kind
    stops = stop_strings(problem, style)
    if kind in ("humaneval", "evalplus"):
        if style == "plain":
            return Extraction(problem.text + _strip_stop(completion, stops))
        if style == "qwen-boxed":
            code = completion.split("```", 1)[0]
            if not code.strip():
                return Extraction(None, "no_code")
            return Extraction(code_candidate(problem, code.rstrip()))
        code = _code_from_blocks(_answer_span(completion))
        if code is None:
            return Extraction(None, "no_code_block")
        return Extraction(code_candidate(problem, code))
    if kind in ("cruxeval-o", "cruxeval-i"):
        if style == "azr":
            parsed = parse_solver_answer(problem.task.task_type, completion)
            return Extraction(parsed.answer if parsed.ok else None, parsed.reason)
        if style == "plain":
            line = _strip_stop(completion, stops).split("\n", 1)[0]
            # the prompt's last line, which the completion continues
            prefix = f"assert f({problem.task.input}) == " if kind == "cruxeval-o" else "assert f("
            parts = _assertion_parts(prefix + line)
            if parts is None:
                return Extraction(None, "no_assertion")
            return Extraction(parts[1] if kind == "cruxeval-o" else parts[0])
        code = _code_from_blocks(completion)
        if code is None:
            return Extraction(None, "no_code_block")
        return _cruxeval_answer(problem, code)
    if kind == "math":
        text = _answer_span(completion) if style == "azr" else completion
        boxed = last_boxed(text)
        if boxed is not None:
            return Extraction(boxed)
        if style == "azr" and extract_answer(completion):
            return Extraction(extract_answer(completion), "unboxed_answer")
        if style == "plain":
            number = last_number(completion)
            if number is not None:
                return Extraction(number, "last_number")
        return Extraction(None, "no_boxed")
    if kind == "tinyworld":
        if style == "qwen-boxed":
            raise _unsupported(problem, style)
        parsed = parse_solver_answer(problem.task.task_type, completion)
        return Extraction(parsed.answer if parsed.ok else None, parsed.reason)
    raise ValueError(f"unknown problem kind {kind!r}")
