#!/usr/bin/env python
"""Semantic segmentation: UperNet with the MAE ViT in MMSegmentation (mmengine's Runner).

  .venv/bin/python tools/train_seg.py --cfg seg/upernet_vit_b.py --init runs/mae_b/checkpoint-last.pth \
      --data-root /data/ade/ADEChallengeData2016 --output-dir runs/seg_b
  torchrun --nproc_per_node 8 tools/train_seg.py --cfg seg/upernet_vit_l.py --init ... --amp
  torchrun --nnodes 2 --node_rank $RANK --nproc_per_node 8 --master_addr $HEAD --master_port 29500 \
      tools/train_seg.py --cfg seg/upernet_vit_l.py --init ... --amp
  srun --nodes 2 --ntasks-per-node 8 --gres gpu:8 --kill-on-bad-exit 1 .venv/bin/python tools/train_seg.py \
      --launcher slurm --cfg seg/upernet_vit_l.py --init ... --amp
  .venv/bin/python tools/train_seg.py --cfg seg/upernet_vit_b.py --output-dir runs/seg_b --resume auto
  .venv/bin/python tools/train_seg.py --cfg seg/upernet_vit_b.py --eval-only runs/seg_b/iter_160000.pth

Every finished run (after its final evaluation) and every --eval-only appends a row to
--results-csv (default: results.csv in the run's output dir).
"""
import sys

from common import cli


def parse_args(argv):
    parser = cli.training_parser(__doc__)
    parser.add_argument("--work-dir", dest="output_dir", help="mmengine's name of --output-dir")
    parser.add_argument("--data-root", help="ADEChallengeData2016 folder (or one in the same layout)")
    parser.add_argument("--amp", action="store_true", help="mixed precision (AmpOptimWrapper; GPUs)")
    parser.add_argument("--launcher", choices=("none", "pytorch", "slurm"),
                        help="how the processes were started (mmengine's launchers): pytorch (torchrun; the default "
                             "in processes torchrun started), slurm (srun, one task per process), none (one process)")
    parser.add_argument("--cfg-options", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="the same overrides in mmengine's form")
    return parser.parse_intermixed_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    import seg.train

    seg.train.main(args)


if __name__ == "__main__":
    sys.exit(cli.run(main))
