#!/usr/bin/env python
"""Reproduces the paper's Tables 3-7 as one dependency graph of runs, then exports the tables.

  python tools/reproduce.py --preset tiny --out demo_output --jobs 2  # `make demo`: all on this CPU
  python tools/reproduce.py --preset gpu --out gpu_output --jobs 8    # one GPU, through torchrun / launch
  python tools/reproduce.py --preset paper --data-root /data --dalle-encoder encoder.pkl \
      --nproc-per-node 8 --nnodes 4 --node-rank $RANK --master-addr $HEAD            # writes the commands
  ... --preset paper ... --launch                                    # runs them (every node, same command)
  ... --preset paper ... --submit --partition P --time 72:00:00      # every run a SLURM job after its inputs

The graph: generated data (tiny/smoke) -> the dVAE tokenizer -> MAE pre-training per target
(pixel, normalised pixel, dVAE token) -> every transfer run that uses them (ImageNet fine-tuning,
iNaturalist/Places fine-tuning, Mask R-CNN on COCO, UperNet on ADE20K) and the supervised
from-scratch baseline with the transfers that start from it. Each run is the project's own tool
(tools/pretrain.py, train_cls.py, train_det.py, train_seg.py, train_dvae.py) in a subprocess with
its resume flag on: a finished run (OUT/runs/PRESET/NAME/reproduce.done) is skipped, an interrupted
one continues from its last checkpoint. --jobs N runs up to N of them at once (generated-data presets).

Every transfer run is repeated for the first n of the fixed SEEDS (n per transfer kind and preset;
runs named NAME-seedS); a cell is the mean over its seeds. Outputs under OUT/results/:
runs/{cls,det,seg}.csv (the tools' per-run records), tables/table3.csv .. table7.csv (columns
table,row,column,paper_value,measured_value,preset,run_dir,note,measured_std,n_runs), tables/tables.md
(mean ± std), tables/*.png, findings.csv and findings.md (the paper's findings with a verdict each,
reproduction/findings.py) and timings.csv. Presets: tiny (generated data, a tiny ViT, the ViT-B column of
Tables 3-6 and Table 7's normalised-pixel row, 20x more unlabelled than labelled images, 3 runs a
cell, meant for 30 minutes on 2 CPU cores), small (40x, every target of Table 7 as well), smoke
(the same graph as small for a few iterations: a pipeline check, its numbers mean nothing), gpu
(small's graph on one GPU, 32,768 pre-training images, a ViT-S-wide encoder, each run under torchrun
with NCCL or Detectron2's launch, meant for 6 minutes on an H100/H200 with --jobs 8; gpu-smoke: its runs
for a few iterations, on a CPU too), paper (the real datasets and recipes, ViT-B/L/H). --data-seed N
repeats a generated-data preset on another draw of its data. --record FILE writes the tables, verdicts
and run times into FILE's section for the preset (scripts/gpu_check.sh: docs/benchmarks.md).

  python tools/reproduce.py --preset ablations --out ablations_output --jobs 2   # Table 1, Figures 5 and 9

The ablations preset (and ablations-smoke, its pipeline check) runs the paper's Table 1, Figure 5 and
Figure 9 at tiny scale: a pre-training per setting (mask ratio, decoder depth and width, mask token in
the encoder, target, augmentation, mask sampling), each fine-tuned and linearly probed, and partial
fine-tuning of the default; it writes results/tables/table1.csv, figure5.png, figure9.png and
finding 4's verdicts (findings.csv, findings.md); well over an hour on 2 CPU cores (not yet measured).
"""
from __future__ import annotations

import argparse
import sys


from common import slurm
from reproduction.paper_tables import TABLES
from reproduction.plan import ablation_plan, ordered, plan
from reproduction.recipes import PRESETS, AblationPreset, GpuPreset
from reproduction.report import export, export_ablations, record, write_script, write_timings
from reproduction.run import execute_all, submit_all


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--out", default=".", help="where data/, runs/ and results/ go (default: here)")
    parser.add_argument("--tables", help="comma-separated subset of 3,4,5,6,7 (default: all; the ablations presets run "
                                         "Table 1 and Figures 5 and 9)")
    parser.add_argument("--kinds", help="only the runs of these kinds (comma-separated: pretrain, cls, det, seg) and "
                                        "the runs they need, e.g. pretrain,cls,det: everything but UperNet")
    parser.add_argument("--dry-run", action="store_true", help="list the runs (done / pending) and stop")
    parser.add_argument("--record", metavar="FILE",
                        help="then write the tables, verdicts and run times into FILE's section for this preset "
                             "(replaced if there is one, else appended), e.g. docs/benchmarks.md")
    parser.add_argument("--jobs", type=int, default=1,
                        help="generated-data presets: how many independent runs go at once, sharing the cores (and the "
                             "GPU of the gpu presets; make demo: 2, gpu: 8)")
    parser.add_argument("--data-seed", type=int, default=0,
                        help="generated-data presets: another draw of the generated data and of the pre-trainings' initialisation "
                             "(runs/PRESET-dataN/, results-dataN/): does a verdict hold for other data?")
    paper = parser.add_argument_group("paper preset")
    paper.add_argument("--data-root", help="holds imagenet/, coco/, ADEChallengeData2016/, inat2017-2019/, places205/, places365/")
    paper.add_argument("--dalle-encoder", help="DALL-E's released encoder.pkl (the Table 7 token target)")
    paper.add_argument("--launch", action="store_true", help="run the commands here instead of writing them to a script")
    paper.add_argument("--nproc-per-node", type=int, default=8)
    paper.add_argument("--nnodes", type=int, default=1)
    paper.add_argument("--node-rank", type=int, default=0)
    paper.add_argument("--master-addr", default="127.0.0.1")
    paper.add_argument("--master-port", type=int, default=29500)
    paper.add_argument("--submit", action="store_true",
                       help="submit each pending run as a SLURM job (--nnodes nodes x --nproc-per-node GPUs) that "
                            "starts once the jobs of its inputs succeeded (afterok); finished runs are skipped")
    paper.add_argument("--cpu-cluster", action="store_true",
                       help="with --submit: --nproc-per-node processes per node without GPUs")
    slurm.add_arguments(parser, resources=False)
    args = parser.parse_args(argv)
    ablations = issubclass(PRESETS[args.preset], AblationPreset)
    if ablations and args.tables:
        parser.error(f"--tables selects among Tables 3-7; --preset {args.preset} runs Table 1 and Figures 5 and 9")
    try:
        tables = sorted({int(t) for t in (args.tables or "3,4,5,6,7").split(",")})
    except ValueError:
        parser.error(f"--tables {args.tables!r}: expected numbers such as 3,4,7")
    if not set(tables) <= set(TABLES):
        parser.error(f"--tables {args.tables!r}: only tables {sorted(TABLES)} are reproduced")

    if args.record and (ablations or args.submit or (args.preset == "paper" and not args.launch)):
        parser.error("--record writes the tables of runs done here: Tables 3-7 of a preset run in this command "
                     "(not --submit, not the paper preset's command script, not the ablations presets)")
    if args.submit and (args.preset != "paper" or args.launch):
        parser.error("--submit submits the paper preset's runs (without --launch)")
    if args.data_seed and args.preset == "paper":
        parser.error("--data-seed draws the generated-data presets' data; the paper preset reads --data-root")
    if args.data_seed < 0:
        parser.error(f"--data-seed {args.data_seed}: must be 0 or more")
    if args.jobs < 1 or (args.jobs > 1 and args.preset == "paper"):
        parser.error(f"--jobs {args.jobs}: at least 1, and 1 for the paper preset (its runs each use every GPU "
                     f"of every machine, in the same order everywhere)")

    preset = PRESETS[args.preset](args.preset, args.out, args)
    cells = ablation_plan(preset) if ablations else plan(preset, tables)
    names = ordered(preset, [run for c in cells for run in c.runs])
    if args.kinds:
        kinds = args.kinds.split(",")
        if unknown := sorted(set(kinds) - {"pretrain", "cls", "det", "seg"}):
            parser.error(f"--kinds {args.kinds!r}: {', '.join(unknown)} is no kind of run (pretrain, cls, det, seg)")
        names = ordered(preset, [name for name in names if name.split("-")[0] in kinds])
    pending = [n for n in names if not preset.runs[n].done]
    what = "Table 1 and Figures 5 and 9" if ablations else f"tables {','.join(map(str, tables))}"
    print(f"[reproduce] preset {args.preset}: {len(names)} runs for {what}, {len(names) - len(pending)} already done")
    if isinstance(preset, GpuPreset) and args.preset == "gpu" and not preset.cuda and not args.dry_run:
        parser.error("--preset gpu needs a CUDA GPU, which this machine lacks; --preset gpu-smoke runs the same "
                     "runs for a few iterations on a CPU")
    if args.dry_run:
        for name in names:
            print(f"  {'done   ' if preset.runs[name].done else 'pending'} {name}")
        return
    if args.submit:
        per_node = dict(tasks_per_node=args.nproc_per_node, gpus_per_node=0) if args.cpu_cluster else \
            dict(tasks_per_node=None, gpus_per_node=args.nproc_per_node)
        submit_all(preset, pending, argparse.Namespace(**vars(args), nodes=args.nnodes, **per_node))
    elif args.preset == "paper" and not args.launch:
        print(f"[reproduce] commands: {write_script(preset, names)} (or add --launch to run them here)")
    else:
        execute_all(preset, pending, check_record=args.preset != "paper" or args.node_rank == 0, jobs=args.jobs)
        print(f"[reproduce] timings: {write_timings(preset, names)}")
    if ablations:
        export_ablations(cells, preset)
    else:
        export(cells, preset, tables)
    if args.record:
        print(f"[reproduce] recorded in {record(args.record, preset, names, tables)}")


if __name__ == "__main__":
    sys.exit(main())
