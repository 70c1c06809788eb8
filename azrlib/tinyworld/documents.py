"""Pretraining documents: prompt + gold completion in all six forms, with
`templates.propose_prompt/solve_prompt(style="compact")` and `render_*_answer`; every document is
parsed back with `parsing.parse_proposal` / `parse_solver_answer` before it is kept
(`verify_documents` additionally checks solver answers with `verify.verify_answers`).

Where this departs from AZR: the `<think>` part of the gold completions is synthetic (execution
traces for deduction, candidate-and-check lines for abduction, an argument-types-and-check note for
induction, the description as the proposer's plan), and its length grows with the program's level,
which the RQ2 response-length analysis relies on. With `numbered_inputs`, induction proposals
number their ten input blocks (text between blocks, which the parser ignores)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, Sequence

from azrlib.tasks import parsing, templates
from azrlib.tasks.types import TASK_TYPES, Task
from azrlib.tasks.validation import AZR_BANNED_MODULES
from azrlib.tinyworld.ops import _KIND_WORDS
from azrlib.tinyworld.validate import Corpus

DOCUMENT_FORMS = ("propose_deduction", "propose_abduction", "propose_induction",
                  "solve_deduction", "solve_abduction", "solve_induction")


@dataclass(frozen=True)
class Document:
    """One pretraining document: a prompt (ending with `Assistant: <think>`) and its gold
    completion. `text` is what the model is trained on; `task` is the task the completion answers
    (for proposer forms: the proposed task)."""

    form: str
    prompt: str
    completion: str
    task: Task
    level: int

    @property
    def text(self) -> str:
        return self.prompt + self.completion


def _abduction_think(task: Task, other_pairs: Sequence[tuple[str, str]], rng: random.Random) -> str:
    """Candidate-and-check lines: wrong candidates (other inputs of the same program, with their
    true, different outputs) before the right one; about (level - 1) / 2 of them, so harder
    programs get longer searches."""
    wrong = [(x, y) for x, y in other_pairs if y != task.output and x != task.input]
    n_wrong = min(len(wrong), sum(rng.random() < 0.5 for _ in range(task.meta["level"] - 1)))
    lines = [f"try {x} -> {y}, no" for x, y in rng.sample(wrong, n_wrong)]
    lines.append(f"try {task.input} -> {task.output}, yes")
    return "\n".join(lines)


def _induction_think(task: Task, arg_kinds: Sequence[str]) -> str:
    """What f takes, then one shown pair checked against the program (the hint is in the prompt)."""
    shown, _ = templates.split_induction_pairs(task)
    x, y = shown[-1]
    takes = " and ".join(_KIND_WORDS[k] for k in arg_kinds)
    return f"f takes {takes}\ncheck f({x}) = {y}"


def _proposer_think(task: Task) -> str:
    if task.task_type == "induction":
        return f"vary the inputs; hint: {task.message}"
    return f"idea: {task.message}"


def _check_document(doc: Document) -> str | None:
    """None when the completion parses back to the document's task, else the reason."""
    task = doc.task
    if doc.form.startswith("propose"):
        parsed = parsing.parse_proposal(task.task_type, doc.completion, require_format=True)
        if not parsed.ok:
            return parsed.reason
        if task.task_type == "induction":
            same = parsed.inputs == task.inputs and parsed.message == task.message
        else:
            same = parsed.program == task.program and parsed.input == task.input
        return None if same else "proposal differs"
    parsed = parsing.parse_solver_answer(task.task_type, doc.completion, require_format=True)
    if not parsed.ok:
        return parsed.reason
    expected = {"deduction": task.output, "abduction": task.input, "induction": task.program}[task.task_type]
    return None if parsed.answer == expected else "answer differs"


# the think of a numbered induction proposal: short, because the numbers cost ~30 tokens and the
# tiny preset caps proposals at 320 (the unnumbered think repeats the message, ~35 tokens)
NUMBERED_THINK = "ten inputs, then the hint"


def numbered_proposal_answer(task: Task, think_text: str = NUMBERED_THINK) -> str:
    """An induction proposal whose ten ```input blocks are numbered (`#1` ... `#10`, each on the
    line before its block): a counting aid for a tiny model, which otherwise writes 9 or 11-13
    blocks once it is trained longer. Departs from AZR's gold format only in the text between
    blocks, which the parser ignores (`parsing.find_blocks`), and in a short think
    (`NUMBERED_THINK`) instead of the message repeated; prompts are unchanged."""
    blocks = [f"#{i}\n" + templates.fence("input", x) for i, x in enumerate(task.inputs, 1)]
    return templates.render_completion("\n".join(blocks + [templates.fence("message", task.message)]), think_text)


def build_documents(corpus: Corpus, seed: int = 0, style: str = "compact", proposer_ratio: float = 0.5,
                    num_references: int = 2, banned_modules: Sequence[str] = AZR_BANNED_MODULES,
                    induction_proposer_ratio: float | None = None, numbered_inputs: bool = False) -> list[Document]:
    """Documents in all six forms: one solver document per corpus task, and about
    `proposer_ratio` proposer documents per solver document of each type (references: K random
    corpus triplets of that type; proposal: another corpus task); `induction_proposer_ratio`
    (None: `proposer_ratio`) overrides it for induction; with it, a program drawn again for an
    induction proposal gets its inputs in another order. Shuffled; deterministic for a seed.
    `numbered_inputs`: induction proposals number their input blocks (`#1` ... `#10` on the line
    before each ```input) after a short think, a counting aid (see `numbered_proposal_answer`).
    Every document is parsed back; one that does not round-trip raises (a bug here)."""
    rng = random.Random(f"tinyworld-docs:{seed}")
    docs: list[Document] = []
    for task in corpus.tasks["deduction"]:
        think = task.meta.get("trace", "")
        docs.append(Document("solve_deduction", templates.solve_prompt(task, style=style),
                             templates.render_solver_answer(task, think), task, task.meta["level"]))
    for task in corpus.tasks["abduction"]:
        think = _abduction_think(task, corpus.pairs.get(task.meta["key"], ()), rng)
        docs.append(Document("solve_abduction", templates.solve_prompt(task, style=style),
                             templates.render_solver_answer(task, think), task, task.meta["level"]))
    for task in corpus.tasks["induction"]:
        docs.append(Document("solve_induction", templates.solve_prompt(task, style=style),
                             templates.render_solver_answer(task, _induction_think(task, task.meta["arg_kinds"])), task,
                             task.meta["level"]))
    for task_type in TASK_TYPES:
        pool = corpus.tasks[task_type]
        references_pool = corpus.tasks["deduction" if task_type == "induction" else task_type]
        if not pool or len(references_pool) <= num_references:
            continue
        # with an explicit induction ratio, a program drawn again gets its ten inputs in another
        # order (a new document); without one the corpus stays the committed base's
        reorder_repeats = task_type == "induction" and induction_proposer_ratio is not None
        used: set[int] = set()
        for _ in range(round((induction_proposer_ratio if reorder_repeats else proposer_ratio) * len(pool))):
            proposal = rng.choice(pool)
            if reorder_repeats and id(proposal) in used:
                order = random.Random(f"tinyworld-reorder:{seed}:{len(docs)}").sample(
                    range(len(proposal.inputs)), len(proposal.inputs))
                proposal = Task("induction", proposal.program, tuple(proposal.inputs[i] for i in order),
                                tuple(proposal.outputs[i] for i in order), message=proposal.message,
                                meta=dict(proposal.meta))
            else:
                used.add(id(proposal))
            if task_type == "induction":
                prompt = templates.propose_prompt("induction", style=style, program_for_induction=proposal,
                                                  banned_modules=banned_modules)
            else:
                references = []
                while len(references) < num_references:
                    ref = rng.choice(references_pool)
                    if ref.meta["key"] != proposal.meta["key"] and ref not in references:
                        references.append(ref)
                prompt = templates.propose_prompt(task_type, references, style=style, banned_modules=banned_modules)
            if numbered_inputs and task_type == "induction":
                completion = numbered_proposal_answer(proposal, NUMBERED_THINK)
            else:
                completion = templates.render_proposal_answer(proposal, _proposer_think(proposal))
            docs.append(Document(f"propose_{task_type}", prompt, completion, proposal, proposal.meta["level"]))
    for doc in docs:
        problem = _check_document(doc)
        if problem is not None:
            raise AssertionError(f"{doc.form} document does not round-trip ({problem}):\n{doc.text}")
    rng.shuffle(docs)
    return docs


def pretraining_documents(corpus: Corpus, seed: int = 0, style: str = "compact", **kwargs) -> list[str]:
    """Texts (prompt + gold completion) of `build_documents`."""
    return [d.text for d in build_documents(corpus, seed, style, **kwargs)]


def verify_documents(executor, docs: Sequence[Document]) -> list[bool]:
    """Per document: its completion parses back to its task and, for solver documents, the parsed
    answer verifies with `verify_answers` (proposer documents: the parse check only)."""
    ok = [_check_document(d) is None for d in docs]
    solver = [k for k, d in enumerate(docs) if d.form.startswith("solve") and ok[k]]
    answers = [parsing.parse_solver_answer(docs[k].task.task_type, docs[k].completion).answer for k in solver]
    from azrlib.tasks.verify import verify_answers  # import here: only checks need the verifier

    verdicts = verify_answers(executor, [docs[k].task for k in solver], answers)
    for k, verdict in zip(solver, verdicts):
        ok[k] = verdict.correct
    return ok


def document_stats(docs: Sequence[Document]) -> dict:
    """Count and mean prompt/completion length (characters) per form and per (form, level)."""
    out: dict = {}
    for form in DOCUMENT_FORMS:
        chosen = [d for d in docs if d.form == form]
        if not chosen:
            continue
        row = {"n": len(chosen), "prompt_chars": _mean(len(d.prompt) for d in chosen),
               "completion_chars": _mean(len(d.completion) for d in chosen), "by_level": {}}
        for level in sorted({d.level for d in chosen}):
            at = [d for d in chosen if d.level == level]
            row["by_level"][level] = {"n": len(at), "prompt_chars": _mean(len(d.prompt) for d in at),
                                      "completion_chars": _mean(len(d.completion) for d in at)}
        out[form] = row
    return out


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return round(sum(values) / len(values), 1) if values else 0.0
