"""Prompt templates: wrapper, contents per role, styles and AZR's swapped-criteria option."""

import pytest

from azrlib.tasks import templates as T
from azrlib.tasks.parsing import format_ok
from azrlib.tasks.types import Task, zero_task


def triplet(task_type: str, i: int) -> Task:
    return Task(task_type, f"def f(x):\n    return x * {i} + {1000 + i}",
                (f"{2000 + i}",), (f"{3000 + i}",))


def induction_task(n: int = 10) -> Task:
    inputs = tuple(f"'in_{i}'" for i in range(n))
    outputs = tuple(f"'out_{i}'" for i in range(n))
    return Task("induction", "def f(s):\n    return s.replace('in', 'out')", inputs, outputs,
                message="Swap a prefix")


def user_text(prompt: str, style: str = "azr") -> str:
    return prompt[len(T.system_sentence(style)):-len(T.PROMPT_SUFFIX)]


def all_prompts(style: str) -> dict[str, str]:
    refs = [triplet("deduction", i) for i in range(3)]
    return {
        "propose_deduction": T.propose_prompt("deduction", refs, style=style),
        "propose_abduction": T.propose_prompt("abduction", refs, style=style),
        "propose_induction": T.propose_prompt("induction", style=style,
                                              program_for_induction=triplet("deduction", 0)),
        "solve_deduction": T.solve_prompt(triplet("deduction", 0), style=style),
        "solve_abduction": T.solve_prompt(triplet("abduction", 0), style=style),
        "solve_induction": T.solve_prompt(induction_task(), style=style),
    }


@pytest.mark.parametrize("style", T.STYLES)
def test_every_prompt_is_wrapped_and_ends_with_open_think(style):
    for name, prompt in all_prompts(style).items():
        assert prompt.startswith(T.system_sentence(style) + "\nUser: "), name
        assert prompt.endswith("\nAssistant: <think>"), name


@pytest.mark.parametrize("style", T.STYLES)
def test_system_sentence_names_both_tag_pairs(style):
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        assert tag in T.system_sentence(style)


@pytest.mark.parametrize("style", T.STYLES)
@pytest.mark.parametrize("task_type", ["deduction", "abduction"])
def test_triplet_proposer_shows_every_reference_triplet(style, task_type):
    refs = [triplet(task_type, i) for i in range(T.DEFAULT_NUM_REFERENCES[style])]
    prompt = T.propose_prompt(task_type, refs, style=style)
    for ref in refs:
        assert T.fence("python", ref.program) in prompt
        assert T.fence("input", ref.input) in prompt
        assert T.fence("output", ref.output) in prompt


def test_azr_style_numbers_k_references():
    refs = [triplet("deduction", i) for i in range(6)]
    prompt = T.propose_prompt("deduction", refs)
    assert [prompt.count(f"<reference_{i}>") for i in range(7)] == [1] * 6 + [0]


def test_compact_style_is_much_shorter_for_every_prompt():
    # The wrapper is shared, so compare what the User says.
    azr, compact = all_prompts("azr"), all_prompts("compact")
    for name in azr:
        assert len(compact[name]) < len(azr[name]), name
        assert len(user_text(compact[name], "compact")) * 2 < len(user_text(azr[name])), name


@pytest.mark.parametrize("task_type", ["deduction", "abduction"])
def test_proposer_states_requirements_and_answer_blocks(task_type):
    prompt = T.propose_prompt(task_type, [triplet(task_type, 0)])
    for needle in ("`f`", "return a value", "deterministic", "random", "printing",
                   "10 seconds", "imports at the very top", "```python", "```input"):
        assert needle in prompt, needle


def test_banned_modules_are_listed_and_can_be_left_out():
    with_list = T.propose_prompt("deduction", [zero_task("deduction")],
                                 banned_modules=("zzmodule", "qqmodule"))
    without = T.propose_prompt("deduction", [zero_task("deduction")], banned_modules=())
    assert "zzmodule, qqmodule" in with_list
    assert "Banned words" not in without


def test_azr_style_swaps_the_difficulty_criteria_by_default():
    ded = T.propose_prompt("deduction", [zero_task("deduction")])
    abd = T.propose_prompt("abduction", [zero_task("abduction")])
    assert T.CRITERION_INPUT_HARD in ded and T.CRITERION_OUTPUT_HARD not in ded
    assert T.CRITERION_OUTPUT_HARD in abd and T.CRITERION_INPUT_HARD not in abd


def test_unswapped_criteria_match_each_task():
    ded = T.propose_prompt("deduction", [zero_task("deduction")], azr_swap_criteria=False)
    abd = T.propose_prompt("abduction", [zero_task("abduction")], azr_swap_criteria=False)
    assert T.CRITERION_OUTPUT_HARD in ded and T.CRITERION_INPUT_HARD not in ded
    assert T.CRITERION_INPUT_HARD in abd and T.CRITERION_OUTPUT_HARD not in abd


def test_compact_style_swap_option_moves_the_goal_sentence():
    plain = T.propose_prompt("deduction", [zero_task("deduction")], style="compact")
    swapped = T.propose_prompt("deduction", [zero_task("deduction")], style="compact",
                               azr_swap_criteria=True)
    assert "output hard to predict" in plain and "input hard to find" not in plain
    assert "input hard to find" in swapped and "output hard to predict" not in swapped


def test_allow_helpers_changes_the_function_rule():
    strict = T.propose_prompt("deduction", [zero_task("deduction")])
    relaxed = T.propose_prompt("deduction", [zero_task("deduction")], allow_helpers=True)
    assert "exactly one function" in strict and "exactly one function" not in relaxed
    assert "helper functions" in relaxed


@pytest.mark.parametrize("style", T.STYLES)
def test_induction_proposer_shows_program_and_asks_for_inputs_and_message(style):
    program = triplet("deduction", 7)
    prompt = T.propose_prompt("induction", style=style, program_for_induction=program,
                              num_inputs=10)
    assert T.fence("python", program.program) in prompt
    assert "10" in prompt and "```input" in prompt and "```message" in prompt


def test_induction_proposer_falls_back_to_first_reference_and_needs_a_program():
    ref = triplet("deduction", 4)
    assert ref.program in T.propose_prompt("induction", [ref])
    with pytest.raises(ValueError):
        T.propose_prompt("induction", [])


@pytest.mark.parametrize("style", T.STYLES)
def test_deduction_solver_sees_input_but_not_output(style):
    task = triplet("deduction", 5)
    prompt = T.solve_prompt(task, style=style)
    assert task.program in prompt and task.input in prompt and task.output not in prompt
    assert "```output" in prompt


@pytest.mark.parametrize("style", T.STYLES)
def test_abduction_solver_sees_output_but_not_input(style):
    task = triplet("abduction", 5)
    prompt = T.solve_prompt(task, style=style)
    assert task.program in prompt and task.output in prompt and task.input not in prompt
    assert "```input" in prompt


@pytest.mark.parametrize("style", T.STYLES)
def test_induction_solver_sees_shown_pairs_and_message_but_not_program_or_hidden(style):
    task = induction_task()
    prompt = T.solve_prompt(task, style=style, n_shown=5)
    shown, hidden = T.split_induction_pairs(task, 5)
    for inp, out in shown:
        assert inp in prompt and out in prompt
    for inp, out in hidden:
        assert inp not in prompt and out not in prompt
    assert task.message in prompt and task.program not in prompt


def test_induction_split_is_first_n_shown_last_hidden():
    shown, hidden = T.split_induction_pairs(induction_task(10), 5)
    assert shown == [(f"'in_{i}'", f"'out_{i}'") for i in range(5)]
    assert hidden == [(f"'in_{i}'", f"'out_{i}'") for i in range(5, 10)]


def test_induction_split_keeps_at_least_one_hidden_pair():
    shown, hidden = T.split_induction_pairs(zero_task("induction"), 5)  # six pairs
    assert (len(shown), len(hidden)) == (5, 1)
    shown, hidden = T.split_induction_pairs(induction_task(3), 5)
    assert (len(shown), len(hidden)) == (2, 1)


@pytest.mark.parametrize("task_type", ["deduction", "abduction", "induction"])
def test_gold_completions_pass_the_format_check_after_the_prompt(task_type):
    task = induction_task() if task_type == "induction" else triplet(task_type, 1)
    for completion in (T.render_proposal_answer(task, "plan"), T.render_solver_answer(task)):
        assert format_ok(completion, prompt_ends_with_think=True)
        prompt = T.solve_prompt(task)
        assert format_ok(prompt + completion)


def test_gold_completion_carries_the_thinking_text():
    completion = T.render_solver_answer(triplet("deduction", 1), think_text="  trace it  ")
    assert completion.startswith(" trace it </think>\n<answer>\n```output\n")
    assert completion.endswith("\n```\n</answer>")


def test_unknown_style_or_task_type_is_refused():
    with pytest.raises(ValueError):
        T.propose_prompt("deduction", [], style="tiny")
    with pytest.raises(ValueError):
        T.propose_prompt("code_o", [])
    with pytest.raises(ValueError):
        T.solve_prompt(zero_task("deduction"), style="tiny")
