"""The reproduction of the paper's Tables 3-7 (its command line: tools/reproduce.py).

    recipes.py       run names -> Runs: the tools' command lines per preset (tiny, small, smoke, paper,
                     ablations)
    plan.py          table cells (and the ablations' Table 1, Figures 5 and 9) -> the runs behind them,
                     in dependency order
    run.py           executing runs (resumable; done markers) and reading their result rows back
    report.py        tables (CSV, markdown, figures), findings, timings, the paper preset's script
    paper_tables.py  the paper's published values
    findings.py      the paper's findings and the verdict rule
    toy_data.py      the generated datasets of the CPU presets (and of the tests)

It imports common/ and nothing else of the project: the runs are the tools, started as subprocesses.
"""
