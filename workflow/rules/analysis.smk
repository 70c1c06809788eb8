# What the notebooks read: pass@k samples of base and every evaluated seed on both tiny-world
# splits (RQ1, RQ5), the invisible-leash resampling of the base, RQ2's questions per self-play
# seed, RQ3's fixed-prompt entropy per checkpoint, RQ4's sparsity per checkpoint (with budgets).


def _model_input(name):
    return "data/base.json" if name == "base" else f"{final_checkpoint(name)}/config.json"


def _eval_args(wildcards):
    s = S
    args = ["--benchmark", wildcards.bench, "--n", s.eval_n, "--temperature", s.eval_temperature,
            "--top-p", s.eval_top_p, "--max-new-tokens", s.eval_max_new_tokens, "--prompt-style", s.eval_prompt_style,
            "--engine", s.eval_engine, "--batch-size", s.eval_batch_size, "--seed", 0]
    if wildcards.bench in TINYWORLD_SPLITS:
        args = ["--benchmark", "tinyworld", *args[2:], "--data", R / "data" / f"{wildcards.bench}_eval.jsonl"]
    else:
        args += (["--data", s.eval_data] if s.eval_data else []) + (["--limit", s.eval_limit] if s.eval_limit else [])
    return shlex.join(map(str, args))


rule eval:
    """`azr eval`: eval_n samples per problem of a model on a benchmark, each checked in the sandbox."""
    input:
        model=lambda wc: _model_input(wc.model),
        tasks=lambda wc: [f"data/{wc.bench}_eval.jsonl"] if wc.bench in TINYWORLD_SPLITS else [],
    output:
        rows="eval/{model}/{bench}.jsonl",
        meta="eval/{model}/{bench}.jsonl.meta.json",
    wildcard_constraints:
        model="|".join(MODELS),
    params:
        model_dir=lambda wc: MODELS[wc.model],
        args=_eval_args,
        perf=lambda wc, threads: f"--device {S.eval_device} --num-threads {threads}" if S.eval_engine == "hf" else "",
    threads: S.threads
    resources:
        gpu=1 if S.eval_engine == "vllm" else 0,
    log:
        "logs/eval/{model}/{bench}.log",
    benchmark:
        "benchmarks/eval/{model}/{bench}.tsv"
    shell:
        "{AZR} eval {params.model_dir} {params.args} --quiet {params.perf} --out {R}/{output.rows} > {R}/{log} 2>&1"


rule leash_tasks:
    """Invisible leash: held-out tasks a self-play seed solves within leash_k samples, never the base."""
    input:
        tasks="data/tinyworld_eval.jsonl",
        base="eval/base/tinyworld.jsonl",
        tuned=[f"eval/{r}/tinyworld.jsonl" for r in SELFPLAY],
    output:
        "leash/tasks.jsonl",
    params:
        tuned=lambda wc, input: " ".join(f"--tuned {R}/{t}" for t in input.tuned),
        k=min(S.leash_k, S.eval_n),
    log:
        "logs/leash_tasks.log",
    benchmark:
        "benchmarks/leash_tasks.tsv"
    shell:
        "{AZR} leash-tasks --tasks {R}/{input.tasks} --base {R}/{input.base} {params.tuned} --k {params.k} "
        "--out {R}/{output} > {R}/{log} 2>&1"


rule leash_eval:
    """Invisible leash: the base sampled leash_n times on that subset only (eval's sampling settings)."""
    input:
        base="data/base.json",
        tasks="leash/tasks.jsonl",
    output:
        "leash/base.jsonl",
    params:
        args=shlex.join(map(str, ["--n", S.leash_n, "--min-n", S.leash_min_n, "--temperature",
                                  S.eval_temperature, "--top-p", S.eval_top_p, "--max-new-tokens",
                                  S.eval_max_new_tokens, "--prompt-style", S.eval_prompt_style, "--engine",
                                  S.eval_engine, "--batch-size", S.eval_batch_size, "--seed", 1])),
        perf=lambda wc, threads: f"--device {S.eval_device} --num-threads {threads}" if S.eval_engine == "hf" else "",
    threads: S.threads
    resources:
        gpu=1 if S.eval_engine == "vllm" else 0,
    log:
        "logs/leash_eval.log",
    benchmark:
        "benchmarks/leash_eval.tsv"
    shell:
        "{AZR} leash-eval {BASE} --tasks {R}/{input.tasks} --out {R}/{output} {params.args} {params.perf} "
        "> {R}/{log} 2>&1"


rule rq2:
    """RQ2: deduction questions from a self-play seed's tasks, solve rates of the base and its final model."""
    input:
        base="data/base.json",
        run=lambda wc: f"{final_checkpoint(wc.run)}/config.json",
    output:
        "rq2/{run}.jsonl",
    wildcard_constraints:
        run="|".join(SELFPLAY) or "no-runs",
    params:
        args=lambda wc: shlex.join(map(str, [
            "--tasks", R / "train" / wc.run / "tasks.jsonl", "--model", f"base={BASE}",
            "--model", f"{wc.run}={R / final_checkpoint(wc.run)}", "--questions", S.rq2_questions,
            "--bin-size", S.rq2_bin_size, "--m", S.rq2_m, "--temperature", S.rq2_temperature,
            "--top-p", S.rq2_top_p, "--max-new-tokens", S.rq2_max_new_tokens,
            "--prompt-style", S.rq2_prompt_style, "--engine", S.rq2_engine, "--seed", 0, "--device", S.eval_device])),
    threads: S.threads
    resources:
        gpu=1 if S.rq2_engine == "vllm" else 0,
    log:
        "logs/rq2/{run}.log",
    benchmark:
        "benchmarks/rq2/{run}.tsv"
    shell:
        "{AZR} rq2 {params.args} --threads {threads} --out {R}/{output} > {R}/{log} 2>&1"


rule rq3_entropy:
    """RQ3: a run's kept checkpoints on the fixed prompt set (solver and proposer prompts), both estimators."""
    input:
        tasks="data/tinyworld_eval.jsonl",
        run=lambda wc: f"{final_checkpoint(wc.run)}/config.json",
    output:
        "rq3/{run}.jsonl",
    wildcard_constraints:
        run="|".join(RQ3_RUNS) or "no-runs",
    params:
        args=lambda wc: shlex.join(map(str, [
            "--run-dir", R / "train" / wc.run, "--steps", ",".join(map(str, CKPT_STEPS)),
            "--per-type", S.rq3_per_type, "--n", S.rq3_n, "--max-new-tokens", S.rq3_max_new_tokens,
            "--prompt-style", _base_cfg["prompt_style"], "--seed", 0])),
    threads: S.threads
    log:
        "logs/rq3/{run}.log",
    benchmark:
        "benchmarks/rq3/{run}.tsv"
    shell:
        "{AZR} rq3-entropy {params.args} --tasks {R}/{input.tasks} --threads {threads} --out {R}/{output} "
        "> {R}/{log} 2>&1"


rule sparsity_curve:
    """RQ4: a run's kept checkpoints against the base (bf16, fp32, |d| <= 1e-5) and its training budget."""
    input:
        base="data/base.json",
        run=lambda wc: f"{final_checkpoint(wc.run)}/config.json",
    output:
        "sparsity_curve/{run}.json",
    wildcard_constraints:
        run="|".join(RQ4_RUNS) or "no-runs",
    params:
        steps=",".join(map(str, CKPT_STEPS)),
    threads: S.threads
    log:
        "logs/sparsity_curve/{run}.log",
    benchmark:
        "benchmarks/sparsity_curve/{run}.tsv"
    shell:
        "{AZR} sparsity-curve {BASE} --run-dir {R}/train/{wildcards.run} --steps {params.steps} "
        "--workers {threads} --out {R}/{output} > {R}/{log} 2>&1"


rule sparsity:
    """RQ4: the fraction of parameters unchanged between the base and a run's final checkpoint."""
    input:
        base="data/base.json",
        run=lambda wc: f"{final_checkpoint(wc.run)}/config.json",
    output:
        "sparsity/{run}.json",
    wildcard_constraints:
        run="|".join(SPARSITY) or "no-runs",
    params:
        final=lambda wc: R / final_checkpoint(wc.run),
    threads: S.threads
    log:
        "logs/sparsity/{run}.log",
    benchmark:
        "benchmarks/sparsity/{run}.tsv"
    shell:
        "{AZR} sparsity {BASE} {params.final} --dtype all --json --workers {threads} "
        "> {R}/{output}.tmp 2> {R}/{log} && mv {R}/{output}.tmp {R}/{output}"
