"""common/results.py: the one schema of the per-run results CSVs (columns per kind, a clear error for
a wrong metric name, the last row of a run wins)."""
import csv
import os

import pytest

from common.results import COLUMNS, fields, read_result, record_result

CLS = dict(pretrain_checkpoint="mae.pth", backbone="vit_base", dataset="imagenet", mode="finetune", blocks="",
           resolution=224, top1=83.61234, top5=96.5, epoch=100)


def test_a_row_round_trips_with_its_columns_in_order_and_the_last_row_wins(tmp_path):
    run = tmp_path / "run"
    path, row = record_result("cls", str(run), **CLS)
    assert path == os.path.join(str(run), "results.csv")  # the default: RUN_DIR/results.csv
    with open(path, newline="") as f:
        assert next(csv.reader(f)) == list(COLUMNS["cls"]) + ["run_dir"] == list(fields("cls"))
    assert read_result("cls", str(run)) == dict(row, resolution="224", epoch="100")
    assert row["top1"] == "83.612" and row["run_dir"] == str(run)

    shared = str(tmp_path / "shared.csv")  # one file for several runs, relative run dirs made absolute
    record_result("cls", str(run), shared, **CLS)
    record_result("cls", str(tmp_path / "other"), shared, **dict(CLS, top1=10.0))
    record_result("cls", os.path.relpath(run), shared, **dict(CLS, top1=50.0))
    assert read_result("cls", str(run), shared)["top1"] == "50.000"
    assert read_result("cls", str(tmp_path / "other"), shared)["top1"] == "10.000"
    assert read_result("cls", str(tmp_path / "missing"), shared) is None
    assert read_result("det", str(run), str(tmp_path / "none.csv")) is None


def test_unknown_or_missing_columns_and_kinds_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown: top2"):
        record_result("cls", str(tmp_path), **CLS, top2=1.0)
    with pytest.raises(ValueError, match="missing: ap_mask"):
        record_result("det", str(tmp_path), pretrain_checkpoint="", backbone="b", adapter="simple", ap_box=1.0,
                      iteration=2, checkpoint="")
    with pytest.raises(ValueError, match="unknown result kind 'pose'"):
        record_result("pose", str(tmp_path))
    assert not os.listdir(tmp_path)  # nothing written
