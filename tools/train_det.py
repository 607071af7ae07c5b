#!/usr/bin/env python
"""Detection and instance segmentation: Mask R-CNN with the MAE ViT in Detectron2 (LazyConfig).

  .venv/bin/python tools/train_det.py --cfg det/mask_rcnn_vit_b.py --init mae_pretrain_vit_base.pth --num-gpus 8 \
      --data-root /data   # COCO 2017 as /data/coco/{train2017,val2017,annotations/instances_*2017.json}
  .venv/bin/python tools/train_det.py --cfg det/mask_rcnn_vit_l.py --init ... --num-gpus 8 --num-machines 4 \
      --machine-rank $RANK --dist-url tcp://$HEAD:29500
  .venv/bin/python tools/train_det.py --cfg ... --output-dir runs/det_b --resume auto   # continue the last checkpoint
  .venv/bin/python tools/train_det.py --cfg ... --num-processes 2   # without GPUs: 2 CPU processes (gloo)
  .venv/bin/python tools/train_det.py --cfg ... --eval-only runs/det_b/model_final.pth   # or --eval-only init: as --init leaves it
  .venv/bin/python tools/train_det.py --cfg det/mask_rcnn_vit_tiny.py \
      --dataset toy_coco_train=data/toy/coco/annotations/instances_train.json:data/toy/coco/train \
      --dataset toy_coco_val=data/toy/coco/annotations/instances_val.json:data/toy/coco/val

The number of classes is the datasets' (their categories must agree). Every finished evaluation
appends a row to --results-csv (default: results.csv in the run's output dir).
"""
import os
import sys

from common import cli


def parse_args(argv):
    parser = cli.training_parser(__doc__)
    parser.add_argument("--data-root", help="folder holding coco/ (sets $DETECTRON2_DATASETS)")
    parser.add_argument("--dataset", action="append", default=[], metavar="NAME=JSON:IMAGES",
                        help="register a COCO-format json + image folder under NAME (repeatable)")
    parser.add_argument("--num-gpus", "--num-processes", dest="num_gpus", type=cli.number_in("[1, inf)"), default=1,
                        help="processes per machine: one per GPU, or CPU processes (gloo) on a machine without CUDA")
    parser.add_argument("--num-machines", type=int, default=1)
    parser.add_argument("--machine-rank", type=int, default=0)
    parser.add_argument("--dist-url", default="auto")
    return parser.parse_intermixed_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.data_root:  # read by detectron2's builtin dataset registration at import, which importing det does
        os.environ["DETECTRON2_DATASETS"] = args.data_root
    from det import train

    train.main(args)


if __name__ == "__main__":
    sys.exit(cli.run(main))
