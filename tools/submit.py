#!/usr/bin/env python
"""Submits a training tool to SLURM (through submitit): one task per GPU, the rendezvous from SLURM's
environment, the job's logs in OUTPUT_DIR/slurm/JOBID/, and a requeue with --resume auto when the
time limit nears or the job is preempted.

  python tools/submit.py --nodes 4 --gpus-per-node 8 --partition P --time 72:00:00 \
      -- tools/pretrain.py --cfg pretrain/mae_vit_large.py --data /data/imagenet/train --output-dir runs/mae_l
  python tools/submit.py --nodes 1 --gpus-per-node 8 --partition P --time 24:00:00 --account A --qos Q \
      -- tools/train_det.py --cfg det/mask_rcnn_vit_b.py --init runs/mae_b/checkpoint-last.pth --output-dir runs/det_b
  python tools/submit.py --tasks-per-node 2 --time 30 -- tools/train_seg.py ...   # a CPU cluster: 2 processes

`%j` in the tool's arguments becomes the job id. Prints the job id and where its logs go.
"""
import os
import sys

from common import cli


def main(argv: list[str]) -> None:
    command = []
    if "--" in argv:
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1:]
    parser = cli.ArgumentParser(description=__doc__)
    from common import slurm

    slurm.add_arguments(parser)
    args = parser.parse_args(argv)
    job = slurm.submit(args, command, args.dependency, job_dir=args.job_dir)
    print(f"submitted job {job.job_id}: tools/{os.path.basename(command[0])}, logs in {job.paths.folder}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
