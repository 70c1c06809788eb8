# One rule per notebook: papermill on R into reports/<preset>/, figures into figures/<preset>/.
# A notebook reruns when the results, the notebook or the report code (azrlib/report/) change.

REPORT_CODE = sorted(str(p) for p in (ROOT / "azrlib" / "report").glob("*.py"))

for _nb in NOTEBOOKS:

    rule:
        name:
            f"notebook_{_nb}"
        input:
            "manifest.json",  # written after every data step: the notebooks follow their changes
            ROOT / "notebooks" / f"{_nb}.ipynb",
            REPORT_CODE,
        output:
            str(REPORTS / f"{_nb}.ipynb"),
        params:
            name=_nb,
            timeout=S.notebook_timeout_s,
        log:
            f"logs/notebook/{_nb}.log",
        benchmark:
            f"benchmarks/notebook/{_nb}.tsv"
        shell:
            "{AZR} notebooks --results-dir {R} --preset {PRESET} --figures-dir {FIGURES} --out-dir {REPORTS} "
            "--only {params.name} --timeout {params.timeout} > {R}/{log} 2>&1"
