"""Tiny world: program generator, validated corpus, traces, pretraining documents, benchmark."""

from __future__ import annotations

import ast
import statistics

import pytest

from azrlib.sandbox import Executor, detect_isolation
from azrlib.tasks import parsing, templates
from azrlib.tasks.types import TASK_TYPES
from azrlib.tasks.validation import ValidationConfig, static_check, validate_induction, validate_triplets
from azrlib.tinyworld import corpus as C

CAPS = detect_isolation()
if not CAPS["bubblewrap"] and not (CAPS["seccomp"] and CAPS["landlock_abi"] > 0):  # pragma: no cover
    pytest.skip("no sandbox isolation available on this machine", allow_module_level=True)

CORPUS_SEED, N_PROGRAMS = 11, 300
BENCH_PER_TYPE = 24  # 6 per level


@pytest.fixture(scope="module")
def ex():
    with Executor(timeout_s=2.0) as executor:
        yield executor


@pytest.fixture(scope="module")
def corpus(ex):
    return C.build_corpus(ex, N_PROGRAMS, seed=CORPUS_SEED)


@pytest.fixture(scope="module")
def docs(corpus):
    return C.build_documents(corpus, seed=0)


@pytest.fixture(scope="module")
def benchmark(ex, corpus):
    return C.build_benchmark(ex, seed=5, per_type=BENCH_PER_TYPE, exclude=corpus)


# ------------------------------------------------------------------------------------------
# Generator
# ------------------------------------------------------------------------------------------

def test_generation_is_deterministic_per_seed_and_index():
    first = C.generate_programs(150, seed=3)
    assert first == C.generate_programs(150, seed=3)
    assert first[:40] == C.generate_programs(40, seed=3)  # each program has its own rng
    assert first[100:110] == C.generate_programs(10, seed=3, start=100)
    other = C.generate_programs(150, seed=4)
    assert sum(a.program != b.program for a, b in zip(first, other)) > 100


def test_every_program_compiles_defines_f_and_takes_its_inputs():
    specs = C.generate_programs(600, seed=21)
    assert {s.level for s in specs} == set(C.LEVELS)
    for spec in specs:
        tree = ast.parse(spec.program)
        compile(tree, "<generated>", "exec")
        assert [type(n) for n in tree.body] == [ast.FunctionDef] and tree.body[0].name == "f"
        assert 1 <= len(tree.body[0].args.args) == len(spec.arg_kinds) <= 3
        assert static_check(spec.program, ValidationConfig()) == ("ok", "")
        assert len(spec.inputs) == len(set(spec.inputs)) >= 1
        for text in spec.inputs:
            call = ast.parse(f"f({text})", mode="eval").body
            assert len(call.args) == len(spec.arg_kinds)
            ast.literal_eval(ast.Tuple(call.args, ast.Load()))  # plain literals only
        assert spec.message.strip() and "```" not in spec.message
        assert spec.key == C.normalize_program(spec.program)


def test_normalization_ignores_names_and_layout_but_not_constants():
    a = "def f(x):\n    y = x + 1\n    return y"
    b = "def f(n):\n    tmp = (n + 1)\n    return tmp"
    c = "def f(n):\n    tmp = n + 2\n    return tmp"
    assert C.normalize_program(a) == C.normalize_program(b) != C.normalize_program(c)
    assert C.program_skeleton(a) == C.program_skeleton(c)
    assert C.holdout_key(a, 1, "one_op") == C.normalize_program(a) == C.holdout_key(a, 3, "while_down")
    assert C.holdout_key(a, 3, "chain") == C.program_skeleton(a)


def test_levels_increase_program_length():
    specs = C.generate_programs(1200, seed=2)
    means = [statistics.mean(len(s.program) for s in specs if s.level == lvl) for lvl in C.LEVELS]
    assert means == sorted(means) and len(set(means)) == len(means), means


# ------------------------------------------------------------------------------------------
# Traces
# ------------------------------------------------------------------------------------------

def test_trace_of_a_loop_with_a_condition(ex):
    program = ("def f(xs, k):\n    total = 0\n    for v in xs:\n        if v > k:\n"
               "            total += v\n    return total * 2")
    task = C.Task("deduction", program, ("[1, 5, 7], 4",), ("24",))
    assert C.compute_traces(ex, [task]) == [
        "xs=[1, 5, 7], k=4\ntotal=0\nv=1: v > k -> False\nv=5: v > k -> True; total=5\n"
        "v=7: v > k -> True; total=12\nreturn 24"]


def test_trace_shows_intermediate_values_and_is_capped(ex):
    nested = C.Task("deduction", "def f(s):\n    return len(s[::-1].upper()) * 2", ("'abc'",), ("6",))
    long = C.Task("deduction", "def f(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t",
                  ("50",), ("1225",))
    nested_trace, long_trace = C.compute_traces(ex, [nested, long])
    assert nested_trace == ("s='abc'\ns[::-1] -> 'cba'\ns[::-1].upper() -> 'CBA'\n"
                            "len(s[::-1].upper()) -> 3\nreturn 6")
    lines = long_trace.split("\n")
    assert len(lines) == C.MAX_TRACE_LINES + 2 and "..." in lines and lines[-1] == "return 1225"


def test_trace_disagreeing_with_the_output_is_dropped(ex):
    wrong = C.Task("deduction", "def f(a):\n    return a + 1", ("1",), ("3",))
    assert C.compute_traces(ex, [wrong]) == [None]


# ------------------------------------------------------------------------------------------
# Corpus
# ------------------------------------------------------------------------------------------

def test_corpus_has_every_type_and_level(corpus):
    stats = corpus.stats
    assert stats["trace_failures"] == 0
    assert 0 < stats["kept_programs"] <= stats["unique_train_side"] <= N_PROGRAMS
    for task_type in TASK_TYPES:
        assert {t.meta["level"] for t in corpus.tasks[task_type]} == set(C.LEVELS), task_type
    keys = [s.key for s in corpus.specs]
    assert len(keys) == len(set(keys))
    assert all(not C.is_benchmark_side(s.holdout_key, s.level) for s in corpus.specs)
    for task in corpus.tasks["deduction"] + corpus.tasks["abduction"]:
        assert len(task.output) <= C.MAX_OUTPUT_CHARS
    for task in corpus.tasks["induction"]:
        assert len(task.inputs) == C.N_INDUCTION_PAIRS == len(set(task.inputs))
        assert len(set(task.outputs)) >= C.MIN_INDUCTION_DISTINCT_OUTPUTS and task.message


def test_recorded_outputs_equal_a_fresh_sandbox_run(ex, corpus):
    pairs = [(t.program, x, y) for ts in corpus.tasks.values() for t in ts for x, y in zip(t.inputs, t.outputs)]
    runs = ex.run_many([(p, x) for p, x, _ in pairs])
    assert [r.value for r in runs] == [y for _, _, y in pairs]


def test_kept_tasks_pass_the_project_validators(ex, corpus):
    triplets = corpus.tasks["deduction"] + corpus.tasks["abduction"]
    results = validate_triplets(ex, [(t.task_type, t.program, t.input) for t in triplets], ValidationConfig())
    assert all(r.ok for r in results)
    assert [r.task.output for r in results] == [t.output for t in triplets]
    induction = corpus.tasks["induction"]
    results = validate_induction(ex, [(t.program, list(t.inputs), t.message) for t in induction], ValidationConfig())
    assert all(r.ok and r.task.outputs == t.outputs for r, t in zip(results, induction))


def test_levels_increase_trace_length(corpus):
    means = [statistics.mean(len(t.meta["trace"]) for t in corpus.tasks["deduction"] if t.meta["level"] == lvl)
             for lvl in C.LEVELS]
    assert means == sorted(means) and len(set(means)) == len(means), means


# ------------------------------------------------------------------------------------------
# Documents
# ------------------------------------------------------------------------------------------

def test_documents_cover_all_forms_and_parse_back(docs):
    assert {d.form for d in docs} == set(C.DOCUMENT_FORMS)
    for doc in docs:
        assert doc.text == doc.prompt + doc.completion
        assert doc.prompt.startswith(templates.system_sentence("compact")) and doc.prompt.endswith(templates.PROMPT_SUFFIX)
        assert parsing.format_ok(doc.completion, prompt_ends_with_think=True)
        task = doc.task
        if doc.form.startswith("propose"):
            parsed = parsing.parse_proposal(task.task_type, doc.completion)
            assert parsed.ok
            if task.task_type == "induction":
                assert parsed.inputs == task.inputs and parsed.message == task.message
                assert templates.fence("python", task.program) in doc.prompt
            else:
                assert (parsed.program, parsed.input) == (task.program, task.input)
                assert doc.prompt.count("```python") == 3  # the format example and K=2 references
        else:
            parsed = parsing.parse_solver_answer(task.task_type, doc.completion)
            expected = {"deduction": task.output, "abduction": task.input, "induction": task.program}
            assert parsed.ok and parsed.answer == expected[task.task_type]
            if task.task_type == "deduction":
                assert task.meta["trace"] in doc.completion
            if task.task_type == "induction":  # hidden pairs stay hidden
                _, hidden = templates.split_induction_pairs(task)
                assert all(templates.fence("input", x) not in doc.prompt for x, _ in hidden)


def test_solver_gold_answers_verify(ex, docs):
    assert all(C.verify_documents(ex, docs))


@pytest.mark.slow  # a second corpus build (test-fast still checks it: a pretrain resume compares fingerprints)
def test_documents_are_deterministic(ex, corpus):
    again = C.build_corpus(ex, N_PROGRAMS, seed=CORPUS_SEED)
    assert C.pretraining_documents(again, seed=0) == C.pretraining_documents(corpus, seed=0)
    assert C.pretraining_documents(corpus, seed=1) != C.pretraining_documents(corpus, seed=0)


def test_induction_proposer_ratio_sets_only_the_induction_proposals(corpus):
    def count(docs):
        return {form: sum(d.form == form for d in docs) for form in C.DOCUMENT_FORMS}
    base = count(C.build_documents(corpus, seed=0, proposer_ratio=0.25))
    more = count(C.build_documents(corpus, seed=0, proposer_ratio=0.25, induction_proposer_ratio=1.0))
    n_induction = len(corpus.tasks["induction"])
    assert base["propose_induction"] == round(0.25 * n_induction)
    assert more["propose_induction"] == n_induction
    # a program drawn again comes with its inputs in another order, not as a copy
    texts = [d.text for d in C.build_documents(corpus, seed=0, proposer_ratio=0.25, induction_proposer_ratio=2.0)
             if d.form == "propose_induction"]
    assert len(texts) == 2 * n_induction and len(set(texts)) == len(texts)
    assert {f: n for f, n in more.items() if f != "propose_induction"} == \
        {f: n for f, n in base.items() if f != "propose_induction"}


def test_document_stats(docs):
    stats = C.document_stats(docs)
    assert set(stats) == set(C.DOCUMENT_FORMS)
    assert sum(row["n"] for row in stats.values()) == len(docs)


def test_default_documents_are_the_committed_base_recipe(docs, corpus):
    """The committed data/tiny_base was pretrained on the documents `azr pretrain-tiny`'s default
    recipe builds: refactors must keep them byte for byte (hashes of this 300-program corpus, taken
    from the code that built each base: b60c894 for the committed one)."""
    import hashlib

    from azrlib.tinyworld.pretrain import PretrainConfig

    def digest(documents):
        return hashlib.sha256("\x00".join(d.prompt + "\x01" + d.completion for d in documents).encode()).hexdigest()
    cfg = PretrainConfig()  # the documents as pretrain_tiny builds them from the default recipe
    recipe = C.build_documents(corpus, seed=0, proposer_ratio=cfg.proposer_ratio,
                               induction_proposer_ratio=cfg.induction_proposer_ratio, numbered_inputs=cfg.numbered_inputs)
    assert len(recipe) == 1226 and digest(recipe) == "3f287631ed126518f4c5b90fd1882bfb5b4a43c1936f8d9fe28aa286407cfbab"
    # the builder's own defaults (proposer ratio 0.5) and the base before 2026-12-03 (ratio 0.25 alone)
    assert len(docs) == 1419 and digest(docs) == "68bba3c119acf211fa294a5d9d20b6536d11fe8625ddfe8ff3375aafe4f76937"
    quarter = C.build_documents(corpus, seed=0, proposer_ratio=0.25)
    assert digest(quarter) == "78deeb1c1131709868a9769adaa83e08053f0ecd1e8d97626dbb233dd3dabfaf"


def test_numbered_inputs_change_only_induction_proposals_and_parse_back(corpus):
    plain = C.build_documents(corpus, seed=0, proposer_ratio=0.25)
    numbered = C.build_documents(corpus, seed=0, proposer_ratio=0.25, numbered_inputs=True)
    assert len(plain) == len(numbered)
    changed = 0
    for a, b in zip(plain, numbered):
        assert a.form == b.form and a.prompt == b.prompt and a.task == b.task
        if a.form != "propose_induction":
            assert a.completion == b.completion
            continue
        changed += 1
        labels = [line for line in b.completion.splitlines() if line.startswith("#")]
        assert labels == [f"#{i}" for i in range(1, C.N_INDUCTION_PAIRS + 1)]
        think, answer = b.completion.split(" </think>", 1)
        assert think.strip() == C.NUMBERED_THINK  # short: the numbers cost ~30 tokens
        assert "\n".join(line for line in answer.splitlines() if line not in labels) == a.completion.split(" </think>", 1)[1]
        parsed = parsing.parse_proposal("induction", b.completion, require_format=True)
        assert parsed.ok and parsed.inputs == a.task.inputs and parsed.message == a.task.message
    assert changed > 0


# ------------------------------------------------------------------------------------------
# Benchmark and RLVR tasks
# ------------------------------------------------------------------------------------------

def test_benchmark_is_balanced_and_disjoint_from_the_corpus(benchmark, corpus):
    corpus_keys = corpus.keys()
    corpus_holdout = {s.holdout_key for s in corpus.specs}
    for task_type in TASK_TYPES:
        tasks = benchmark[task_type]
        assert len(tasks) == BENCH_PER_TYPE
        levels = [t.meta["level"] for t in tasks]
        assert all(levels.count(lvl) == BENCH_PER_TYPE // len(C.LEVELS) for lvl in C.LEVELS)
        for task in tasks:
            assert task.task_type == task_type and task.meta["key"] not in corpus_keys
            assert C.holdout_key(task.program, task.meta["level"], task.meta["family"]) not in corpus_holdout
            if task_type == "induction":
                shown, hidden = templates.split_induction_pairs(task)
                assert (len(shown), len(hidden)) == (5, 5) and task.message
            else:
                assert len(task.inputs) == 1


def test_benchmark_is_deterministic_and_survives_jsonl(ex, benchmark, corpus, tmp_path):
    again = C.build_benchmark(ex, seed=5, per_type=BENCH_PER_TYPE, exclude=corpus)
    assert {t: [x.to_json() for x in v] for t, v in again.items()} == \
        {t: [x.to_json() for x in v] for t, v in benchmark.items()}
    path = tmp_path / "bench.jsonl"
    C.save_benchmark(path, benchmark)
    loaded = C.load_benchmark(path)
    assert {t: [x.to_json() for x in v] for t, v in loaded.items()} == \
        {t: [x.to_json() for x in v] for t, v in benchmark.items()}


def test_rlvr_tasks_are_verified_and_never_benchmark_programs(ex):
    tasks = C.rlvr_tasks(ex, 30, seed=C.TASK_SOURCE.rlvr_seed)
    assert len(tasks) == 30 and {t.task_type for t in tasks} == set(TASK_TYPES)
    assert all(not C.is_benchmark_side(C.holdout_key(t.program, t.meta["level"], t.meta["family"]), t.meta["level"])
               for t in tasks)
    runs = ex.run_many([(t.program, t.input) for t in tasks])
    assert [r.value for r in runs] == [t.output for t in tasks]
