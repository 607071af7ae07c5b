"""reproduction/findings.py: the verdict rule from hand-made numbers (both directions, the boundary, n < 2,
the 'about equal' claim) and the findings files written from table cells."""
import csv
import math

import pytest

from reproduction.findings import (EQUIVALENCE_MARGIN, MEASURED_BY, SWEEP, Sample, evaluate, pooled_standard_error,
                                   verdict, write)


def test_pooled_standard_error_weights_each_row_by_its_degrees_of_freedom():
    # pooled variance (3 * 3^2 + 1 * 1^2) / (4 + 2 - 2) = 7, times 1/4 + 1/2
    assert pooled_standard_error(Sample(10, 3, 4), Sample(7, 1, 2)) == pytest.approx(math.sqrt(7 * 0.75))
    # two runs each with std 1: SE = 1 * sqrt(1/2 + 1/2) = 1 exactly
    assert pooled_standard_error(Sample(12, 1, 2), Sample(10, 1, 2)) == 1.0


def test_greater_claim_is_reproduced_or_contradicted_only_beyond_twice_the_standard_error():
    a, b = Sample(60.0, 2.0, 3), Sample(55.0, 2.0, 3)  # 2 SE = 2 * 2 * sqrt(2/3) = 3.27 < 5
    assert verdict(a, b, "greater") == "reproduced"
    assert verdict(b, a, "greater") == "contradicted"
    assert verdict(Sample(58.0, 2.0, 3), b, "greater") == "within noise"  # 3 < 3.27
    assert verdict(b, Sample(58.0, 2.0, 3), "greater") == "within noise"
    # unequal counts and spreads: d = 3, 2 SE = 4.58
    assert verdict(Sample(10, 3, 4), Sample(7, 1, 2), "greater") == "within noise"


def test_a_difference_of_exactly_twice_the_standard_error_is_within_noise():
    base = Sample(10.0, 1.0, 2)  # with it, SE = 1 exactly
    assert verdict(Sample(12.0, 1.0, 2), base, "greater") == "within noise"
    assert verdict(Sample(8.0, 1.0, 2), base, "greater") == "within noise"
    assert verdict(Sample(12.001, 1.0, 2), base, "greater") == "reproduced"
    assert verdict(Sample(7.999, 1.0, 2), base, "greater") == "contradicted"


def test_fewer_than_two_runs_in_a_row_is_not_testable_however_large_the_difference():
    assert verdict(Sample(90.0, float("nan"), 1), Sample(10.0, 1.0, 3), "greater") == "not testable"
    assert verdict(Sample(90.0, 1.0, 3), Sample(10.0, 0.0, 1), "equal") == "not testable"
    assert pooled_standard_error(Sample(1, 0, 1), Sample(1, 0, 1)) is None


def test_equal_claim_needs_the_interval_inside_the_margin_and_is_contradicted_by_a_clear_difference():
    tight = Sample(50.0, 0.1, 5)
    assert verdict(Sample(50.1, 0.1, 5), tight, "equal") == "reproduced"  # |d| + 2 SE = 0.23 <= margin
    assert verdict(Sample(50.5, 1.5, 2), Sample(50.0, 1.5, 2), "equal") == "within noise"  # 2 SE = 3 > margin
    assert verdict(Sample(55.0, 1.0, 2), Sample(50.0, 1.0, 2), "equal") == "contradicted"  # 5 - 2 SE = 3 > margin
    # a clear but small difference is no contradiction of "about equal": it lies inside the margin
    assert verdict(Sample(50.6, 0.05, 5), Sample(50.0, 0.05, 5), "equal") == "reproduced"  # 0.6 + 0.06 <= 1
    assert verdict(Sample(51.5, 0.4, 3), Sample(50.0, 0.4, 3), "equal") == "within noise"  # 1.5 -/+ 0.65 spans 1
    assert verdict(Sample(45.0, 1.0, 2), Sample(50.0, 1.0, 2), "equal") == "contradicted"  # either direction
    assert EQUIVALENCE_MARGIN == 1.0
    with pytest.raises(ValueError):
        verdict(tight, tight, "less")


def test_findings_files_carry_the_numbers_and_mark_missing_rows_not_testable(tmp_path):
    samples = {(3, "MAE", "ViT-B"): Sample(70.0, 1.0, 3), (3, "scratch, our impl.", "ViT-B"): Sample(60.0, 1.0, 3),
               (5, "MAE", "ViT-B"): Sample(40.0, 2.0, 1), (5, "supervised", "ViT-B"): Sample(30.0, 2.0, 1)}
    rows = evaluate(samples, "handmade")
    by_key = {(r["finding"], r.get("table"), r.get("column"), r.get("row_a")): r for r in rows}
    table3 = by_key[1, 3, "ViT-B", "MAE"]
    assert (table3["verdict"], table3["difference"], table3["n_a"]) == ("reproduced", "10.000", 3)
    assert by_key[2, 5, "ViT-B", "MAE"]["verdict"] == "not testable"  # one run each
    assert by_key[2, 4, "APbox ViT-B", "MAE"]["verdict"] == "not testable"  # not measured
    # a finding none of whose rows is measured: one row, naming the preset that measures it
    assert [(r["verdict"], r["note"]) for r in rows if r["finding"] == 3] == [
        ("not testable", f"none of its rows is measured under this preset: {MEASURED_BY[3]}")]
    assert [r["note"] for r in rows if r["finding"] == 4] == [
        "none of its rows is measured under this preset: the ablations preset measures them "
        "(tools/reproduce.py --preset ablations)"]
    csv_path, md_path = write(rows, str(tmp_path))
    with open(csv_path, newline="") as f:
        written = list(csv.DictReader(f))
    assert len(written) == len(rows) and written[0]["verdict"] == "reproduced" and written[0]["preset"] == "handmade"
    md = open(md_path).read()
    assert "70.000 ± 1.000 (n=3) vs 60.000 ± 1.000 (n=3)" in md and "**reproduced**" in md
    assert "## Finding 4" in md


def test_finding_4_compares_the_mask_ratio_sweep_linear_probe_greater_and_fine_tuning_about_equal(tmp_path):
    lin = {"10%": 40.0, "30%": 50.0, "50%": 55.0, "75%": 60.0, "90%": 59.0}
    samples = {(SWEEP, ratio, "lin"): Sample(mean, 1.0, 3) for ratio, mean in lin.items()}
    samples |= {(SWEEP, "75%", "ft"): Sample(80.2, 0.1, 2), (SWEEP, "50%", "ft"): Sample(80.0, 0.1, 2)}
    rows = [r for r in evaluate(samples, "handmade") if r["finding"] == 4]
    # 2 SE of the linear probes: 2 * 1 * sqrt(2/3) = 1.63; of fine-tuning 0.2 (|d| + 2 SE = 0.4 <= 1)
    assert [(r["column"], r["row_a"], r["row_b"], r["claim"], r["verdict"]) for r in rows] == [
        ("lin", "75%", "10%", "greater", "reproduced"), ("lin", "75%", "30%", "greater", "reproduced"),
        ("lin", "75%", "90%", "greater", "within noise"), ("lin", "75%", "50%", "greater", "reproduced"),
        ("ft", "75%", "50%", "equal", "reproduced")]
    assert {r["table"] for r in rows} == {"Figure 5"}
    assert [r["verdict"] for r in evaluate(samples, "handmade") if r["finding"] != 4] == ["not testable"] * 3
    md = open(write(rows, str(tmp_path))[1]).read()
    assert "- Figure 5, lin: 75% > 10%: 60.000 ± 1.000 (n=3) vs 40.000" in md and "- Figure 5, ft: 75% ≈ 50%" in md
