"""The project's training tools in one table, read by everything that starts them (tools/sweep.py,
the reproduction's recipes, SLURM jobs): each one's script under tools/, how it finds its processes,
and the metrics of its result rows. All of them take the options of common/cli.training_parser."""
import os
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository: tools/, configs/


@dataclass(frozen=True)
class Tool:
    script: str  # under tools/
    # how several processes start: "env" (torchrun's variables; mmengine's pytorch launcher), "detectron2"
    # (Detectron2's launch flags), "single" (one process only)
    launch: str
    metrics: tuple[str, ...]  # the result row's metrics (results.csv; pre-training: the last row of log.csv)
    results_csv: bool = True  # takes --results-csv (pre-training and the dVAE write their own logs instead)


TOOLS = {
    "dvae": Tool("train_dvae.py", "single", ("loss",), results_csv=False),
    "pretrain": Tool("pretrain.py", "env", ("loss",), results_csv=False),
    "cls": Tool("train_cls.py", "env", ("top1", "top5")),
    "det": Tool("train_det.py", "detectron2", ("ap_box", "ap_mask")),
    "seg": Tool("train_seg.py", "env", ("mIoU", "mAcc", "aAcc")),
}
TOOL_OF_SCRIPT = {tool.script: tool for tool in TOOLS.values()}


def tool_path(script: str) -> str:
    return os.path.join(ROOT, "tools", script)
