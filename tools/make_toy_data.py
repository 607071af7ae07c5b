#!/usr/bin/env python
"""Procedural scenes for CPU runs: objects of several classes (shape, colour, texture) on varied
backgrounds (gradients, noise, crops of photos that ship inside scikit-image). Deterministic for a
seed. Written as an ImageNet-style folder for pre-training (ROOT/train/CLASS/*.png, the class being
the scene's largest object) and, with --classification, as single-object labelled scenes in the
published layouts of ImageNet, iNaturalist 2017/18/19, Places205 and Places365. The generators
are reproduction/toy_data.py; this is their command line.

  python tools/make_toy_data.py --out data/toy --seed 0 --num-images 512 --size 96
"""
from __future__ import annotations

import argparse
import os


from reproduction.toy_data import write_ade20k, write_classification_sets, write_coco, write_image_folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-images", type=int, default=512)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--classification", action="store_true",
                        help="also write the six classification layouts under OUT/cls/")
    parser.add_argument("--coco", action="store_true", help="also write COCO instances under OUT/coco/")
    parser.add_argument("--ade20k", action="store_true", help="also write an ADE20K-layout set under OUT/ade/")
    args = parser.parse_args(argv)
    path = write_image_folder(args.out, args.num_images, args.size, args.seed)
    print(f"wrote {args.num_images} images to {path}")
    if args.coco:
        for split, (ann, images) in write_coco(os.path.join(args.out, "coco"), seed=args.seed).items():
            print(f"wrote COCO {split}: {ann} ({images})")
    if args.ade20k:
        print(f"wrote ADE20K layout to {write_ade20k(os.path.join(args.out, 'ade'), seed=args.seed)}")
    if args.classification:
        for name, root in write_classification_sets(os.path.join(args.out, "cls"), seed=args.seed).items():
            print(f"wrote {name} to {root}")


if __name__ == "__main__":
    main()
