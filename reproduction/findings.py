"""The paper's findings as comparisons between measured table cells, each with a verdict computed
mechanically from the cells' means, standard deviations and run counts.

Rule (fixed before any result was seen): two rows A and B are compared by d = mean(A) - mean(B) and
its pooled standard error SE = s_p * sqrt(1/n_A + 1/n_B), s_p^2 = ((n_A-1) s_A^2 + (n_B-1) s_B^2) /
(n_A + n_B - 2).
- a claim "A > B" (or "A >= B") is "reproduced" when d > 2 SE, "contradicted" when d < -2 SE and
  "within noise" otherwise;
- a claim "A about equal to B" is "reproduced" when |d| + 2 SE <= EQUIVALENCE_MARGIN (the whole
  interval lies inside the margin of 1 point), "contradicted" when |d| - 2 SE > EQUIVALENCE_MARGIN
  (the whole interval lies outside it), and "within noise" otherwise;
- with fewer than two runs in either row there is no standard error: "not testable".

Finding 4 is tested on Figure 5's mask-ratio sweep (the ablations presets) by five comparisons, fixed
before any result: linear probing peaks at 75%, lin(75%) > lin(10%), lin(75%) > lin(30%) and
lin(75%) > lin(90%); fine-tuning is less sensitive to the ratio: over the step from 50% to 75%,
where linear probing gains, lin(75%) > lin(50%), fine-tuning stays inside the margin, ft(75%) about
equal to ft(50%) (the paper, ViT-L: 73.5 vs 54.6, 61.7, 66.1 and 69.9; 84.9 vs 84.9). A finding none
of whose rows is measured under a preset gets one "not testable" row naming the presets that measure it.
"""
import csv
import math
import os
from dataclasses import dataclass
from typing import Any

# "About equal" in Table 7 means differences of at most 0.2 points; 1 point is the margin we accept
# as equal at small scale (any margin is a choice, so it is stated rather than hidden in the rule).
EQUIVALENCE_MARGIN = 1.0


@dataclass(frozen=True)
class Sample:
    mean: float
    std: float  # sample standard deviation (n - 1); 0 or NaN when n < 2
    n: int


def pooled_standard_error(a: Sample, b: Sample) -> float | None:
    """The standard error of mean(a) - mean(b) from the pooled variance; None with n < 2 in a row."""
    if a.n < 2 or b.n < 2:
        return None
    pooled_var = ((a.n - 1) * a.std ** 2 + (b.n - 1) * b.std ** 2) / (a.n + b.n - 2)
    return math.sqrt(pooled_var) * math.sqrt(1 / a.n + 1 / b.n)


def verdict(a: Sample, b: Sample, claim: str) -> str:
    """claim: "greater" (A > B or A >= B) or "equal" (A about equal to B)."""
    se = pooled_standard_error(a, b)
    if se is None:
        return "not testable"
    d = a.mean - b.mean
    if claim == "greater":
        return "reproduced" if d > 2 * se else "contradicted" if d < -2 * se else "within noise"
    if claim == "equal":  # two one-sided tests against the margin, not a test of d = 0
        if abs(d) - 2 * se > EQUIVALENCE_MARGIN:
            return "contradicted"
        return "reproduced" if abs(d) + 2 * se <= EQUIVALENCE_MARGIN else "within noise"
    raise ValueError(f"unknown claim {claim!r}: 'greater' or 'equal'")


@dataclass(frozen=True)
class Comparison:
    finding: int
    statement: str  # the paper's finding this comparison tests
    table: int | str  # a table's number, or SWEEP
    column: str
    row_a: str
    row_b: str
    claim: str  # "greater" (row_a > row_b) or "equal"


F1 = "MAE fine-tuning beats training from scratch (Table 3)"
F2 = "MAE beats supervised pre-training in detection and segmentation (Tables 4, 5)"
F3 = "normalised pixels >= pixels, and dVAE tokens about equal to normalised pixels (Table 7)"
F4 = "linear probing peaks at a high mask ratio (~75%) and fine-tuning is less sensitive to it (Table 1, Figure 5)"
SWEEP = "Figure 5"  # the "table" of the mask-ratio sweep's cells (reproduction.plan.ablation_plan)
COMPARISONS = (
    Comparison(1, F1, 3, "ViT-B", "MAE", "scratch, our impl.", "greater"),
    Comparison(2, F2, 4, "APbox ViT-B", "MAE", "supervised", "greater"),
    Comparison(2, F2, 4, "APmask ViT-B", "MAE", "supervised", "greater"),
    Comparison(2, F2, 5, "ViT-B", "MAE", "supervised", "greater"),
    *(Comparison(3, F3, 7, column, "pixel (w/ norm)", "pixel (w/o norm)", "greater")
      for column in ("IN1K ViT-B", "COCO ViT-B", "ADE20K ViT-B")),
    *(Comparison(3, F3, 7, column, "dVAE token", "pixel (w/ norm)", "equal")
      for column in ("IN1K ViT-B", "COCO ViT-B", "ADE20K ViT-B")),
    *(Comparison(4, F4, SWEEP, "lin", "75%", ratio, "greater") for ratio in ("10%", "30%", "90%", "50%")),
    Comparison(4, F4, SWEEP, "ft", "75%", "50%", "equal"),
)
TABLE_PRESETS = "the tiny, small, smoke, gpu, gpu-smoke and paper presets measure them (tools/reproduce.py --preset tiny)"
MEASURED_BY = {1: TABLE_PRESETS, 2: TABLE_PRESETS, 3: TABLE_PRESETS,
               4: "the ablations preset measures them (tools/reproduce.py --preset ablations)"}

FIELDS = ("finding", "statement", "table", "column", "row_a", "row_b", "claim", "mean_a", "std_a", "n_a",
          "mean_b", "std_b", "n_b", "difference", "two_se", "verdict", "preset", "note")


def _num(value, digits=3):
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def where(table: int | str) -> str:
    """A comparison's table as a reader names it: Table 3, Figure 5."""
    return table if isinstance(table, str) else f"Table {table}"


def evaluate(samples: dict[tuple[int | str, str, str], Sample], preset: str) -> list[dict[str, Any]]:
    """samples: (table, row, column) -> Sample for the measured cells. -> one dict per FIELDS row."""
    rows = []
    for finding in sorted({c.finding for c in COMPARISONS}):
        group = [c for c in COMPARISONS if c.finding == finding]
        if not any((c.table, r, c.column) in samples for c in group for r in (c.row_a, c.row_b)):
            rows.append(dict(finding=finding, statement=group[0].statement, preset=preset, verdict="not testable",
                             note=f"none of its rows is measured under this preset: {MEASURED_BY[finding]}"))
            continue
        rows += [compare(c, samples, preset) for c in group]
    return rows


def compare(c: Comparison, samples: dict[tuple[int | str, str, str], Sample], preset: str) -> dict[str, Any]:
    """One comparison's FIELDS row."""
    a, b = samples.get((c.table, c.row_a, c.column)), samples.get((c.table, c.row_b, c.column))
    row = dict(finding=c.finding, statement=c.statement, table=c.table, column=c.column, row_a=c.row_a,
               row_b=c.row_b, claim=c.claim, preset=preset)
    if a is None or b is None:
        row.update(verdict="not testable", note="a row is not measured under this preset")
    else:
        se = pooled_standard_error(a, b)
        row.update(mean_a=_num(a.mean), std_a=_num(a.std), n_a=a.n, mean_b=_num(b.mean), std_b=_num(b.std),
                   n_b=b.n, difference=_num(a.mean - b.mean), two_se=_num(None if se is None else 2 * se),
                   verdict=verdict(a, b, c.claim))
    return row


def write(rows: list[dict[str, Any]], folder: str) -> tuple[str, str]:
    """findings.csv (one row per comparison) and findings.md (grouped by finding) under folder."""
    os.makedirs(folder, exist_ok=True)
    csv_path = os.path.join(folder, "findings.csv")
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    md = ["# The paper's findings: verdicts\n", __doc__.split("\n\n", 1)[1].strip(), ""]
    for finding in sorted({r["finding"] for r in rows}):
        group = [r for r in rows if r["finding"] == finding]
        md.append(f"\n## Finding {finding}: {group[0]['statement']}\n")
        for r in group:
            if "row_a" not in r:
                md.append(f"- not testable: {r['note']}")
                continue
            relation = ">" if r["claim"] == "greater" else "≈"
            compared = f"{where(r['table'])}, {r['column']}: {r['row_a']} {relation} {r['row_b']}"
            if "mean_a" not in r:
                md.append(f"- {compared}: not testable ({r['note']})")
                continue
            md.append(f"- {compared}: {r['mean_a']} ± {r['std_a'] or '–'} (n={r['n_a']}) vs {r['mean_b']} ± "
                      f"{r['std_b'] or '–'} (n={r['n_b']}); difference {r['difference']}, 2 SE "
                      f"{r['two_se'] or '–'} -> **{r['verdict']}**")
    md_path = os.path.join(folder, "findings.md")
    with open(md_path, "w") as f:
        f.write("\n".join(md) + "\n")
    return csv_path, md_path
