"""Parse model completions: the answer span, fenced blocks, proposals and solver answers.

Nothing here raises on model text: every parse returns a frozen result object with `ok` and a short
`reason` code from `REASON_CODES`. (A wrong `task_type` argument is a programming error and does
raise `ValueError`.) Completions are what the model wrote after the prompt's `Assistant: <think>`,
so `format_ok(completion, prompt_ends_with_think=True)` puts the `<think>` back before checking.

Follows AZR (utils/code_utils/parsers.py and the reward manager) where it matters for rewards:
- answer = text between the last `<answer>` and the `</answer>` after it;
- format = `(?s)<think>.*?</think>\\s*<answer>.*?</answer>` found anywhere (`re.search`);
- proposals: first ```python block (an untagged fence counts, as AZR's code pattern accepts it) and
  first ```input block; rejected when there is no `def` or more than one `def` at any indentation
  (methods and nested functions count); the first function is renamed to `f`;
- solver answers: the last ```output / ```input / ```python block, with fallbacks.

Where it departs (named options or documented choices):
- Renaming is done on the text at the positions the AST gives (the definition and every `Name`
  node of the old name), so comments and formatting survive and `obj.old(...)` or `"old("` inside
  strings are left alone; AZR rewrites every `old(` with a regex. The regex is our fallback when
  the AST positions cannot be used.
- Syntax errors are reported (`syntax_error`) unless `syntax_check=False`, in which case the regex
  path counts and renames functions as AZR does and the validator finds the error later.
- A program whose only functions are methods or nested functions has no callable `f`: reported as
  `no_function` (AZR would rename the method and fail at execution).
- `allow_helpers=True` accepts several functions: an existing top-level `f` is kept, otherwise the
  first top-level function is renamed `f`.
- Induction proposals need exactly `num_inputs` (10) ```input blocks. AZR's shipped parser in fact
  accepts 10 or more and keeps the last 10; `allow_extra_inputs=True` reproduces that.
- Text inside a block that itself contains a ``` fence cannot be recovered (AZR shares this).
- The format check is not applied to proposals/answers unless `require_format=True`; the reward
  code decides what a format failure costs.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from azrlib.tasks.types import TASK_TYPES

REASON_CODES: dict[str, str] = {
    "ok": "parsed successfully",
    "format": "no <think>...</think> <answer>...</answer> structure (only with require_format)",
    "no_answer": "no complete <answer>...</answer> span",
    "empty_answer": "the solver's answer is empty",
    "no_python_block": "no ```python block (nor an untagged fence)",
    "no_input_block": "no ```input block",
    "no_output_block": "no ```output block (solver, fallbacks off)",
    "wrong_input_count": "induction proposal without exactly num_inputs ```input blocks",
    "no_message": "induction proposal without a non-empty ```message block",
    "syntax_error": "the program does not parse as Python",
    "no_function": "the program defines no function (or none at top level)",
    "multiple_functions": "more than one def at any indentation (allow_helpers off)",
    "parser_error": "unexpected internal failure of the parser (a bug)",
}

FORMAT_RE = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)

# A fence, its tag (possibly empty), and its body up to the next fence or the end of the text
# (a missing closing fence at the end is tolerated). Blocks are found left to right without
# overlap, so a closing fence is never mistaken for an opening one.
_BLOCK_RE = re.compile(
    r"```[ \t]*(?P<tag>[A-Za-z0-9_+.\-]*)[ \t]*\n?(?P<body>.*?)(?:(?P<close>```)|\Z)", re.DOTALL)
_PYTHON_TAGS = frozenset({"python", "py", "python3"})
# AZR's way of counting functions: a `def` at the start of any line, at any indentation.
_DEF_RE = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(", re.MULTILINE)

_DEF_PREFIX_RE = re.compile(r"(?:async\s+)?def\s+")

_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"
_FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)


# --------------------------------------------------------------------------------------------
# Answer span and format
# --------------------------------------------------------------------------------------------

def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def extract_answer(text: str) -> str | None:
    """Stripped text between the last `<answer>` and the `</answer>` that follows it; when the
    last `<answer>` is never closed, the last complete pair counts. None without a complete pair."""
    text = _as_text(text)
    end = text.rfind(_ANSWER_CLOSE)
    if end < 0:
        return None
    start = text.rfind(_ANSWER_OPEN, 0, end)
    if start < 0:
        return None
    return text[start + len(_ANSWER_OPEN):end].strip()


def format_ok(text: str, prompt_ends_with_think: bool = False) -> bool:
    """AZR's format test. With `prompt_ends_with_think=True` the text is a completion that began
    right after the prompt's `<think>`, which is put back before the check."""
    text = _as_text(text)
    if prompt_ends_with_think:
        text = "<think>" + text
    return FORMAT_RE.search(text) is not None


# --------------------------------------------------------------------------------------------
# Fenced blocks
# --------------------------------------------------------------------------------------------

def _canonical_tag(tag: str) -> str:
    tag = tag.lower()
    return "python" if tag in _PYTHON_TAGS else tag


def _clean_code(body: str) -> str:
    """Drop blank lines around the code and a common indentation (models sometimes indent the
    whole block); otherwise the text is kept as written (dedent empties whitespace-only lines)."""
    lines = body.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return textwrap.dedent("\n".join(lines)).rstrip()


def iter_blocks(text: str) -> list[tuple[str, str]]:
    """All fenced blocks as (canonical tag, raw body), left to right. CRLF becomes LF; the tags
    `python`, `py` and `python3` (any case) all read as `python`; an untagged fence has tag ''.
    A stray fence at the very end with nothing after it is not a block."""
    text = _as_text(text).replace("\r\n", "\n")
    return [(_canonical_tag(m.group("tag")), m.group("body")) for m in _BLOCK_RE.finditer(text)
            if m.group("close") or m.group("body").strip()]


def find_blocks(text: str, tag: str) -> list[str]:
    """Bodies of all blocks with this tag ('python', 'input', 'output', 'message', '' for an
    untagged fence, or any other tag), cleaned: code is dedented, other bodies are stripped."""
    wanted = _canonical_tag(tag)
    clean = _clean_code if wanted in ("python", "") else str.strip
    return [clean(body) for block_tag, body in iter_blocks(text) if block_tag == wanted]


def first_block(text: str, tag: str) -> str | None:
    blocks = find_blocks(text, tag)
    return blocks[0] if blocks else None


def last_block(text: str, tag: str) -> str | None:
    blocks = find_blocks(text, tag)
    return blocks[-1] if blocks else None


# --------------------------------------------------------------------------------------------
# Program rules: one function, named f
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProgramCheck:
    ok: bool
    reason: str
    program: str  # renamed program when ok, the text as given otherwise
    renamed_from: str | None = None
    detail: str = ""


def _try_parse(code: str) -> tuple[ast.Module | None, str]:
    try:
        return ast.parse(code), ""
    except Exception as exc:  # SyntaxError, ValueError (NUL bytes), RecursionError, MemoryError
        return None, f"{type(exc).__name__}: {exc}"


def _char_col(line: str, byte_col: int) -> int:
    """AST column offsets count UTF-8 bytes; text edits need characters."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="replace"))


def _name_positions(code_lines: list[str], tree: ast.Module, old: str) -> list[tuple[int, int]]:
    """(line index, char column) of every occurrence of the identifier `old` that the AST knows:
    definitions named `old` and `Name` nodes (calls, references, assignments)."""
    positions = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == old:
            line = code_lines[node.lineno - 1]
            positions.append((node.lineno - 1, _char_col(line, node.col_offset)))
        elif isinstance(node, _FUNCTION_NODES) and node.name == old:
            line = code_lines[node.lineno - 1]
            after_def = _DEF_PREFIX_RE.match(line, _char_col(line, node.col_offset))
            if after_def is None:
                raise ValueError("definition not found where the AST puts it")
            positions.append((node.lineno - 1, after_def.end()))
    return positions


def _rename_with_ast(code: str, tree: ast.Module, old: str, new: str) -> str:
    lines = code.split("\n")
    for line_index, col in sorted(set(_name_positions(lines, tree, old)), reverse=True):
        line = lines[line_index]
        following = line[col + len(old):col + len(old) + 1]
        if line[col:col + len(old)] != old or (following.isidentifier() or following.isdigit()):
            raise ValueError("AST position does not hold the name")
        lines[line_index] = line[:col] + new + line[col + len(old):]
    return "\n".join(lines)


def _rename_with_regex(code: str, old: str, new: str) -> str:
    """AZR's approach, slightly narrowed: rename the definition and calls `old(`, but not
    attribute calls `x.old(`."""
    name = re.escape(old)
    code = re.sub(rf"\bdef(\s+){name}(\s*)\(", rf"def\g<1>{new}\g<2>(", code)
    return re.sub(rf"(?<![\w.]){name}(\s*)\(", rf"{new}\g<1>(", code)


def rename_function(code: str, old: str, new: str = "f") -> str:
    """Rename a function (definition and uses) in the text: via AST positions when the code
    parses and the edit re-parses, otherwise via regex."""
    tree, _ = _try_parse(code)
    if tree is not None:
        try:
            renamed = _rename_with_ast(code, tree, old, new)
            if _try_parse(renamed)[0] is not None:
                return renamed
        except Exception:  # positions unusable (odd line endings, f-string quirks): use regex
            pass
    return _rename_with_regex(code, old, new)


def _check_with_regex(code: str, allow_helpers: bool) -> ProgramCheck:
    names = _DEF_RE.findall(code)
    if not names:
        return ProgramCheck(False, "no_function", code)
    if len(names) > 1 and not allow_helpers:
        return ProgramCheck(False, "multiple_functions", code, detail=", ".join(names))
    already_named_f = ("f" in names) if allow_helpers else (names[0] == "f")
    if already_named_f:
        return ProgramCheck(True, "ok", code)
    return ProgramCheck(True, "ok", _rename_with_regex(code, names[0], "f"), renamed_from=names[0])


def check_program(code: str, *, allow_helpers: bool = False,
                  syntax_check: bool = True) -> ProgramCheck:
    """AZR's program rules: at least one `def`; exactly one unless `allow_helpers`; the entry
    function (an existing top-level `f` when helpers are allowed, else the first top-level
    function) is renamed `f`. See the module docstring for the departures."""
    code = _as_text(code)
    tree, error = _try_parse(code)
    if tree is None:
        if syntax_check:
            return ProgramCheck(False, "syntax_error", code, detail=error)
        return _check_with_regex(code, allow_helpers)
    functions = [node for node in ast.walk(tree) if isinstance(node, _FUNCTION_NODES)]
    if not functions:
        return ProgramCheck(False, "no_function", code)
    if len(functions) > 1 and not allow_helpers:
        names = sorted(functions, key=lambda n: (n.lineno, n.col_offset))
        return ProgramCheck(False, "multiple_functions", code,
                            detail=", ".join(n.name for n in names))
    top_level = [node for node in tree.body if isinstance(node, _FUNCTION_NODES)]
    if not top_level:
        return ProgramCheck(False, "no_function", code, detail="no top-level function")
    if any(node.name == "f" for node in top_level):
        return ProgramCheck(True, "ok", code)
    entry = top_level[0].name
    return ProgramCheck(True, "ok", rename_function(code, entry, "f"), renamed_from=entry)


# --------------------------------------------------------------------------------------------
# Proposals
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProposalParse:
    ok: bool
    reason: str
    task_type: str
    program: str | None = None  # None for induction (the program comes from the buffer)
    inputs: tuple[str, ...] = ()
    message: str = ""
    renamed_from: str | None = None
    detail: str = ""

    @property
    def input(self) -> str | None:
        return self.inputs[0] if self.inputs else None


def _check_task_type(task_type: str) -> None:
    if task_type not in TASK_TYPES:
        raise ValueError(f"task_type must be one of {TASK_TYPES}, got {task_type!r}")


def _answer_or_failure(text: str, require_format: bool, prompt_ends_with_think: bool,
                       ) -> tuple[str | None, str]:
    if require_format and not format_ok(text, prompt_ends_with_think):
        return None, "format"
    answer = extract_answer(text)
    return (None, "no_answer") if answer is None else (answer, "ok")


def _parse_triplet_proposal(task_type: str, answer: str, allow_helpers: bool,
                            syntax_check: bool) -> ProposalParse:
    program = first_block(answer, "python")
    if program is None:
        program = first_block(answer, "")
    if program is None:
        return ProposalParse(False, "no_python_block", task_type)
    given_input = first_block(answer, "input")
    if given_input is None:
        return ProposalParse(False, "no_input_block", task_type, program=program)
    check = check_program(program, allow_helpers=allow_helpers, syntax_check=syntax_check)
    return ProposalParse(check.ok, check.reason, task_type, program=check.program,
                         inputs=(given_input,), renamed_from=check.renamed_from,
                         detail=check.detail)


def _parse_induction_proposal(answer: str, num_inputs: int,
                              allow_extra_inputs: bool) -> ProposalParse:
    inputs = find_blocks(answer, "input")
    if allow_extra_inputs and len(inputs) > num_inputs:
        inputs = inputs[-num_inputs:]
    if len(inputs) != num_inputs:
        return ProposalParse(False, "wrong_input_count", "induction", inputs=tuple(inputs),
                             detail=f"{len(inputs)} inputs, expected {num_inputs}")
    message = first_block(answer, "message")
    if not message:
        return ProposalParse(False, "no_message", "induction", inputs=tuple(inputs))
    return ProposalParse(True, "ok", "induction", inputs=tuple(inputs), message=message)


def parse_proposal(
    task_type: str,
    completion: str,
    *,
    num_inputs: int = 10,
    allow_helpers: bool = False,
    syntax_check: bool = True,
    allow_extra_inputs: bool = False,
    require_format: bool = False,
    prompt_ends_with_think: bool = True,
) -> ProposalParse:
    """Deduction/abduction: program (first ```python block, renamed to `f`) and input (first
    ```input block). Induction: exactly `num_inputs` ```input blocks and a ```message block."""
    _check_task_type(task_type)
    try:
        text = _as_text(completion)
        answer, reason = _answer_or_failure(text, require_format, prompt_ends_with_think)
        if answer is None:
            return ProposalParse(False, reason, task_type)
        if task_type == "induction":
            return _parse_induction_proposal(answer, num_inputs, allow_extra_inputs)
        return _parse_triplet_proposal(task_type, answer, allow_helpers, syntax_check)
    except Exception as exc:  # never let model text crash a training step
        return ProposalParse(False, "parser_error", task_type, detail=repr(exc))


# --------------------------------------------------------------------------------------------
# Solver answers
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SolverParse:
    ok: bool
    reason: str
    task_type: str
    answer: str | None = None  # output text, input text, or (renamed) program
    source: str = ""  # where the answer came from: "block", "untagged_block" or "raw"
    renamed_from: str | None = None
    detail: str = ""


_SOLVER_TAG = {"deduction": "output", "abduction": "input", "induction": "python"}
_MISSING_BLOCK = {"deduction": "no_output_block", "abduction": "no_input_block",
                  "induction": "no_python_block"}


def _solver_answer_text(task_type: str, answer: str, fallbacks: bool) -> tuple[str | None, str]:
    tagged = last_block(answer, _SOLVER_TAG[task_type])
    if tagged is not None:
        return tagged, "block"
    if not fallbacks:
        return None, ""
    untagged = last_block(answer, "")
    if untagged is not None:
        return (untagged if task_type == "induction" else untagged.strip()), "untagged_block"
    raw = _clean_code(answer) if task_type == "induction" else answer.strip()
    return raw, "raw"


def parse_solver_answer(
    task_type: str,
    completion: str,
    *,
    fallbacks: bool = True,
    allow_helpers: bool = True,
    syntax_check: bool = True,
    require_format: bool = False,
    prompt_ends_with_think: bool = True,
) -> SolverParse:
    """The last ```output (deduction), ```input (abduction) or ```python (induction) block of the
    answer. With `fallbacks`, the last untagged block and then the whole answer text stand in for
    a missing block. Induction programs go through `check_program` (helpers allowed by default,
    since only the behaviour of `f` is checked)."""
    _check_task_type(task_type)
    try:
        text = _as_text(completion)
        answer, reason = _answer_or_failure(text, require_format, prompt_ends_with_think)
        if answer is None:
            return SolverParse(False, reason, task_type)
        value, source = _solver_answer_text(task_type, answer, fallbacks)
        if value is None:
            return SolverParse(False, _MISSING_BLOCK[task_type], task_type)
        if not value.strip():
            return SolverParse(False, "empty_answer", task_type, answer=value, source=source)
        if task_type != "induction":
            return SolverParse(True, "ok", task_type, answer=value, source=source)
        check = check_program(value, allow_helpers=allow_helpers, syntax_check=syntax_check)
        return SolverParse(check.ok, check.reason, task_type, answer=check.program, source=source,
                           renamed_from=check.renamed_from, detail=check.detail)
    except Exception as exc:  # never let model text crash a training step
        return SolverParse(False, "parser_error", task_type, detail=repr(exc))
