import collections
import os
from typing import Any

from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from common.errors import UserError
from common.images import IMG_EXTENSIONS


def files_under(folder: str) -> list[str]:
    """Paths relative to folder, subfolders' included: the files mmseg's dataset lists."""
    return [os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files]


def image_suffix(folder: str, layout: str) -> str:
    """The one image extension in a split's folder, for its dataset's img_suffix (mmseg lists the files of
    one suffix, case-sensitively, and finds none of another). Refused, with what the folder holds: no
    images, or images of several extensions."""
    counts = collections.Counter(os.path.splitext(f)[1] for f in files_under(folder))
    images = [ext for ext in counts if ext.lower() in IMG_EXTENSIONS]
    held = ", ".join(f"{n} {ext or 'without extension'}" for ext, n in counts.most_common()) or "no files"
    if not images:
        raise FileNotFoundError(f"segmentation data folder {folder} holds no images ({' '.join(IMG_EXTENSIONS)}) "
                                f"but {held}; expected {layout}")
    if len(images) > 1:
        raise UserError(f"segmentation data folder {folder} holds images of several extensions ({held}): mmseg reads "
                        f"one extension per folder; convert them to one")
    return images[0]


@TRANSFORMS.register_module()
class CheckSegMap(BaseTransform):
    """Stops, naming the file, at an annotation that would otherwise train on wrong labels or crash
    far from its cause: a colour (RGB) map, a map of another size than its image, or class indices
    beyond num_classes (the ignore index excepted). Placed right after LoadAnnotations."""

    def __init__(self, num_classes: int, reduce_zero_label: bool = False, ignore_index: int = 255) -> None:
        self.num_classes, self.reduce_zero_label, self.ignore_index = num_classes, reduce_zero_label, ignore_index

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        seg, path = results["gt_seg_map"], results["seg_map_path"]
        if seg.ndim != 2:
            raise UserError(f"annotation {path} has {seg.shape[2]} channels: segmentation annotations are single-channel "
                            f"PNGs of class indices, not colour images")
        if seg.shape != tuple(results["ori_shape"]):
            raise UserError(f"annotation {path} is {seg.shape[1]}x{seg.shape[0]} but its image {results['img_path']} is "
                            f"{results['ori_shape'][1]}x{results['ori_shape'][0]}: an annotation must have its image's size")
        beyond = sorted({int(v) for v in set(seg.flat)} - {self.ignore_index} - set(range(self.num_classes)))
        if beyond:
            shift = 1 if self.reduce_zero_label else 0  # the file's values are one above the class index
            raise UserError(f"annotation {path} has values {[v + shift for v in beyond[:5]]} beyond the config's "
                            f"{self.num_classes} classes (values 1-{self.num_classes} with label 0 ignored)"
                            if shift else
                            f"annotation {path} has values {beyond[:5]} beyond the config's {self.num_classes} classes "
                            f"(0-{self.num_classes - 1}, {self.ignore_index} ignored)")
        return results
