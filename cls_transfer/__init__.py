"""Classification transfer: fine-tuning, linear probing, partial fine-tuning, training from scratch."""
from .datasets import DATASETS, LAYOUTS, build_dataset

__all__ = ["DATASETS", "LAYOUTS", "build_dataset"]
