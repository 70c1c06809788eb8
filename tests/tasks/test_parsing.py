"""Parsing of completions: answer span, format, blocks, proposals, solver answers; fuzzing."""

import keyword

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azrlib.tasks import parsing as P
from azrlib.tasks import templates as T
from azrlib.tasks.types import TASK_TYPES, Task


def answer(body: str, think: str = "reasoning") -> str:
    """A completion as generated after the prompt's `<think>`."""
    return f" {think} </think>\n<answer>\n{body}\n</answer>"


def ten_inputs(n: int = 10) -> str:
    return "\n".join(T.fence("input", str(i)) for i in range(n))


TRIPLET = T.fence("python", "def f(a):\n    return a") + "\n" + T.fence("input", "'x'")


# ------------------------------------------------------------------------------------------
# Answer span and format
# ------------------------------------------------------------------------------------------

def test_last_answer_wins():
    assert P.extract_answer("<answer>first</answer> more <answer> second </answer>") == "second"


def test_answer_absent_or_unclosed_gives_none():
    assert P.extract_answer("no tags here") is None
    assert P.extract_answer("<answer>never closed") is None
    assert P.extract_answer("</answer> before <answer>") is None


def test_unclosed_last_answer_falls_back_to_last_complete_pair():
    assert P.extract_answer("<answer>a</answer> then <answer>b") == "a"


def test_format_needs_think_then_answer():
    assert P.format_ok("<think>x</think> <answer>y</answer>")
    assert not P.format_ok("<answer>y</answer>")
    assert not P.format_ok("<think>x</think> text <answer>y</answer>")


def test_format_of_completion_after_prompt_think():
    completion = " x </think>\n<answer>y</answer>"
    assert not P.format_ok(completion)
    assert P.format_ok(completion, prompt_ends_with_think=True)


# ------------------------------------------------------------------------------------------
# Blocks
# ------------------------------------------------------------------------------------------

def test_blocks_first_last_all():
    text = "```input\n1\n```\ntext\n```input\n2\n```\n```output\n3\n```"
    assert P.find_blocks(text, "input") == ["1", "2"]
    assert (P.first_block(text, "input"), P.last_block(text, "input")) == ("1", "2")
    assert P.first_block(text, "message") is None


def test_blocks_tolerate_crlf_whitespace_and_missing_final_fence():
    text = "```input  \r\n   'a b'  \r\n```\r\n```output\n  [1, 2]"
    assert P.find_blocks(text, "input") == ["'a b'"]
    assert P.find_blocks(text, "output") == ["[1, 2]"]


def test_python_tag_variants_and_dedent():
    text = "```Python\n    def f(a):\n        return a\n```\n```py\nx = 1\n```"
    assert P.find_blocks(text, "python") == ["def f(a):\n    return a", "x = 1"]


def test_indexed_tags_are_not_plain_inputs():
    assert P.find_blocks("```input_0\n1\n```\n```input\n2\n```", "input") == ["2"]


def test_closing_fence_is_not_read_as_an_untagged_opening():
    assert P.find_blocks("```input\n1\n```\nprose\n```", "") == []


# ------------------------------------------------------------------------------------------
# Program rules
# ------------------------------------------------------------------------------------------

def test_first_function_is_renamed_f_with_recursion_and_references():
    code = "def solve(n):\n    return n if n < 2 else solve(n - 1) + sum(map(solve, [0]))"
    check = P.check_program(code)
    assert check.ok and check.renamed_from == "solve"
    assert check.program == "def f(n):\n    return n if n < 2 else f(n - 1) + sum(map(f, [0]))"


def test_renaming_leaves_comments_strings_and_attributes_alone():
    code = "def go(s):  # go( stays\n    return s.go('go(') + 'é'"
    assert P.check_program(code).program == "def f(s):  # go( stays\n    return s.go('go(') + 'é'"


def test_renaming_handles_columns_after_non_ascii_text():
    code = "def g(s):\n    t = 'ééé'; return g(t) if s else 0"
    assert P.check_program(code).program == "def f(s):\n    t = 'ééé'; return f(t) if s else 0"


def test_syntax_error_reason():
    check = P.check_program("def f(a):\nreturn a")
    assert (check.ok, check.reason) == (False, "syntax_error") and check.detail


def test_regex_path_when_syntax_check_is_off():
    check = P.check_program("def g(a:\n    return g(a)", syntax_check=False)
    assert check.ok and check.program == "def f(a:\n    return f(a)"


def test_no_function_reason():
    assert P.check_program("x = 1").reason == "no_function"
    assert P.check_program("class A:\n    def m(self):\n        return 1",
                           allow_helpers=True).reason == "no_function"


def test_nested_function_or_method_counts_as_multiple():
    nested = "def f(a):\n    def g(b):\n        return b\n    return g(a)"
    method = "class A:\n    def m(self):\n        return 1\n\ndef f(a):\n    return A().m()"
    assert P.check_program(nested).reason == "multiple_functions"
    assert P.check_program(method).reason == "multiple_functions"


def test_allow_helpers_keeps_existing_f_or_renames_first_top_level():
    helpers = "def g(b):\n    return b\n\ndef f(a):\n    return g(a)"
    assert P.check_program(helpers, allow_helpers=True).program == helpers
    renamed = P.check_program("def h(a):\n    return k(a)\n\ndef k(b):\n    return b",
                              allow_helpers=True)
    assert renamed.renamed_from == "h" and renamed.program.startswith("def f(a):")


# ------------------------------------------------------------------------------------------
# Proposals
# ------------------------------------------------------------------------------------------

def test_triplet_proposal_takes_first_python_and_first_input():
    later = T.fence("python", "def g(b):\n    return b") + "\n" + T.fence("input", "2")
    body = TRIPLET + "\n" + later
    parsed = P.parse_proposal("deduction", answer(body))
    assert parsed.ok and parsed.program == "def f(a):\n    return a" and parsed.input == "'x'"


def test_untagged_fence_counts_as_the_program():
    body = "```\ndef g(a):\n    return a\n```\n" + T.fence("input", "1")
    parsed = P.parse_proposal("abduction", answer(body))
    assert parsed.ok and parsed.program == "def f(a):\n    return a"


def test_proposal_reason_codes():
    cases = {
        "no_answer": " thinking only </think>",
        "no_python_block": answer(T.fence("input", "1")),
        "no_input_block": answer(T.fence("python", "def f(a):\n    return a")),
        "syntax_error": answer(T.fence("python", "def f(a) return a") + T.fence("input", "1")),
        "no_function": answer(T.fence("python", "f = lambda a: a") + T.fence("input", "1")),
        "multiple_functions": answer(T.fence("python", "def f(a):\n    return a\ndef g():\n"
                                                       "    return 1") + T.fence("input", "1")),
    }
    for reason, completion in cases.items():
        parsed = P.parse_proposal("deduction", completion)
        assert (parsed.ok, parsed.reason) == (False, reason), reason


def test_require_format_rejects_answer_without_think_close():
    completion = f"<answer>\n{TRIPLET}\n</answer>"
    assert P.parse_proposal("deduction", completion).ok
    assert P.parse_proposal("deduction", completion, require_format=True).reason == "format"


def test_induction_proposal_needs_exactly_ten_inputs_and_a_message():
    message = T.fence("message", "adds one")
    assert P.parse_proposal("induction", answer(ten_inputs(10) + message)).inputs == tuple(
        str(i) for i in range(10))
    for n in (9, 11):
        parsed = P.parse_proposal("induction", answer(ten_inputs(n) + message))
        assert (parsed.ok, parsed.reason) == (False, "wrong_input_count")
    assert P.parse_proposal("induction", answer(ten_inputs(10))).reason == "no_message"
    empty_message = answer(ten_inputs(10) + T.fence("message", "  "))
    assert P.parse_proposal("induction", empty_message).reason == "no_message"


def test_allow_extra_inputs_keeps_the_last_ten_like_azr():
    parsed = P.parse_proposal("induction", answer(ten_inputs(12) + T.fence("message", "m")),
                              allow_extra_inputs=True)
    assert parsed.ok and parsed.inputs == tuple(str(i) for i in range(2, 12))


# ------------------------------------------------------------------------------------------
# Solver answers
# ------------------------------------------------------------------------------------------

def test_solver_takes_last_block():
    body = T.fence("output", "1") + "\nwait\n" + T.fence("output", "2")
    parsed = P.parse_solver_answer("deduction", answer(body))
    assert (parsed.ok, parsed.answer, parsed.source) == (True, "2", "block")


def test_solver_fallbacks_untagged_then_raw():
    untagged = P.parse_solver_answer("abduction", answer("```\n'abc', 3\n```"))
    raw = P.parse_solver_answer("deduction", answer("  [1, 2]  "))
    assert (untagged.answer, untagged.source) == ("'abc', 3", "untagged_block")
    assert (raw.answer, raw.source) == ("[1, 2]", "raw")


def test_solver_without_fallbacks_reports_missing_block():
    for task_type, reason in (("deduction", "no_output_block"), ("abduction", "no_input_block"),
                              ("induction", "no_python_block")):
        parsed = P.parse_solver_answer(task_type, answer("42"), fallbacks=False)
        assert parsed.reason == reason


def test_solver_empty_and_missing_answers():
    blank = answer(T.fence("output", " "))
    assert P.parse_solver_answer("deduction", blank).reason == "empty_answer"
    assert P.parse_solver_answer("deduction", "no answer at all").reason == "no_answer"


def test_induction_solver_program_is_checked_and_renamed():
    renamed = answer(T.fence("python", "def g(a):\n    return a"))
    parsed = P.parse_solver_answer("induction", renamed)
    assert parsed.ok and parsed.answer == "def f(a):\n    return a" and parsed.renamed_from == "g"
    broken = P.parse_solver_answer("induction", answer(T.fence("python", "def f(a) return")))
    assert broken.reason == "syntax_error"


# ------------------------------------------------------------------------------------------
# Fuzzing: no input string makes a parser raise, and every reason code is documented
# ------------------------------------------------------------------------------------------

FRAGMENTS = ["<think>", "</think>", "<answer>", "</answer>", "```", "```python", "```python\n",
             "```input\n", "```output\n", "```message\n", "```py", "\n", "\r\n", " ", "def f(",
             "def g(", "    ", "return ", "):", "class A:", "'", '"', "é", "\x00", "\\", "(", "[",
             "async def h(", "lambda", "\u2028"]

fragment_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)),
                         max_size=40).map("".join)
any_text = st.one_of(st.text(), fragment_text)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_documented(result):
    assert result.reason in P.REASON_CODES
    assert result.reason != "parser_error", result.detail
    assert result.ok == (result.reason == "ok")


@FUZZ
@given(any_text)
def test_fuzz_parsers_never_raise(text):
    P.extract_answer(text)
    P.format_ok(text)
    P.format_ok(text, prompt_ends_with_think=True)
    for tag in ("python", "input", "output", "message", ""):
        P.find_blocks(text, tag)
    for task_type in TASK_TYPES:
        assert_documented(P.parse_proposal(task_type, text))
        assert_documented(P.parse_solver_answer(task_type, text))
        assert_documented(P.parse_proposal(task_type, answer(text), allow_helpers=True,
                                           syntax_check=False, require_format=True))


@FUZZ
@given(any_text)
def test_fuzz_program_check_never_raises(code):
    for allow_helpers in (False, True):
        for syntax_check in (False, True):
            check = P.check_program(code, allow_helpers=allow_helpers, syntax_check=syntax_check)
            assert_documented(check)


# ------------------------------------------------------------------------------------------
# Round trips: gold completions rendered by templates parse back to the same task
# ------------------------------------------------------------------------------------------

# Text that can sit in a block: no fence or answer tags inside, no surrounding whitespace.
block_text = (st.text(alphabet=st.characters(blacklist_characters="`<\r",
                                             blacklist_categories=("Cs",)), min_size=1)
              .map(str.strip).filter(bool))
identifier = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: s not in ("f", "a") and not keyword.iskeyword(s))
python_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8)
value_repr = python_values.map(repr).filter(lambda s: "```" not in s and "<" not in s)


@st.composite
def programs(draw):
    name, arg = draw(identifier), draw(identifier)
    constant = draw(value_repr)
    return f"def f({arg}):\n    # {name}\n    return ({arg}, {constant})"


@FUZZ
@given(programs(), value_repr, st.sampled_from(["deduction", "abduction"]), st.text(max_size=20))
def test_round_trip_triplet_proposal(program, given_input, task_type, think):
    task = Task(task_type, program, (given_input,), ("0",))
    parsed = P.parse_proposal(task_type, T.render_proposal_answer(task, think.replace("<", "")))
    assert parsed.ok and (parsed.program, parsed.inputs) == (program, (given_input,))


@FUZZ
@given(st.lists(value_repr, min_size=10, max_size=10), block_text)
def test_round_trip_induction_proposal(inputs, message):
    task = Task("induction", "def f(a):\n    return a", tuple(inputs), tuple(inputs), message)
    parsed = P.parse_proposal("induction", T.render_proposal_answer(task))
    assert parsed.ok and (parsed.inputs, parsed.message) == (tuple(inputs), message)


@FUZZ
@given(programs(), value_repr, value_repr)
def test_round_trip_solver_answers(program, given_input, output):
    for task_type in TASK_TYPES:
        task = Task(task_type, program, (given_input,), (output,), message="m")
        completion = T.render_solver_answer(task, think_text="let me see")
        parsed = P.parse_solver_answer(task_type, completion, fallbacks=False)
        expected = {"deduction": output, "abduction": given_input, "induction": program}
        assert parsed.ok and parsed.answer == expected[task_type]
        assert P.format_ok(completion, prompt_ends_with_think=True)


@FUZZ
@given(identifier, block_text)
def test_round_trip_renames_any_first_function_name(name, message):
    program = f"def {name}(a):\n    return {name}(a - 1) if a else 0"
    task = Task("deduction", program, ("3",), ("0",), message)
    parsed = P.parse_proposal("deduction", T.render_proposal_answer(task))
    assert parsed.ok and parsed.program == "def f(a):\n    return f(a - 1) if a else 0"
