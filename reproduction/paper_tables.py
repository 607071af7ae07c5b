"""The paper's Tables 3-7 (He et al., "Masked Autoencoders Are Scalable Vision Learners",
arXiv:2111.06377v3): titles, columns and the published values. None = the paper's "-".
reproduction/ places its measurements beside these. Table 6 and Table 3's MAE row were checked
against the official repository's README (facebookresearch/mae); the other values are transcribed
from the paper and not cross-checked against a second source."""
from dataclasses import dataclass


@dataclass(frozen=True)
class PaperTable:
    title: str
    metric: str
    columns: tuple
    rows: dict  # row name -> one value per column


TABLES = {
    3: PaperTable(
        "Comparisons with previous results on ImageNet-1K (end-to-end fine-tuning)", "top-1 accuracy (%)",
        ("ViT-B", "ViT-L", "ViT-H", "ViT-H448"),
        {"scratch, our impl.": (82.3, 82.6, 83.1, None),
         "DINO": (82.8, None, None, None),
         "MoCo v3": (83.2, 84.1, None, None),
         "BEiT": (83.2, 85.2, None, None),
         "MAE": (83.6, 85.9, 86.9, 87.8)}),
    4: PaperTable(
        "COCO object detection and segmentation, ViT Mask R-CNN", "AP",
        ("APbox ViT-B", "APbox ViT-L", "APmask ViT-B", "APmask ViT-L"),
        {"supervised": (47.9, 49.3, 42.9, 43.9),
         "MoCo v3": (47.9, 49.3, 42.7, 44.0),
         "BEiT": (49.8, 53.3, 44.4, 47.1),
         "MAE": (50.3, 53.3, 44.9, 47.2)}),
    5: PaperTable(
        "ADE20K semantic segmentation, UperNet", "mIoU",
        ("ViT-B", "ViT-L"),
        {"supervised": (47.4, 49.9),
         "MoCo v3": (47.3, 49.1),
         "BEiT": (47.1, 53.3),
         "MAE": (48.1, 53.6)}),
    6: PaperTable(
        "Transfer learning accuracy on classification datasets (fine-tuning)", "top-1 accuracy (%)",
        ("ViT-B", "ViT-L", "ViT-H", "ViT-H448", "prev best"),
        {"iNat 2017": (70.5, 75.7, 79.3, 83.4, 75.4),
         "iNat 2018": (75.4, 80.1, 83.0, 86.8, 81.2),
         "iNat 2019": (80.5, 83.4, 85.7, 88.3, 84.1),
         "Places205": (63.9, 65.8, 65.9, 66.8, 66.0),
         "Places365": (57.9, 59.4, 59.8, 60.3, 58.0)}),
    7: PaperTable(
        "Pixels vs. tokens as the MAE reconstruction target", "IN1K top-1 / COCO APbox / ADE20K mIoU",
        ("IN1K ViT-B", "IN1K ViT-L", "IN1K ViT-H", "COCO ViT-B", "COCO ViT-L", "ADE20K ViT-B", "ADE20K ViT-L"),
        {"pixel (w/o norm)": (83.3, 85.1, 86.2, 49.5, 52.8, 48.0, 51.8),
         "pixel (w/ norm)": (83.6, 85.9, 86.9, 50.3, 53.3, 48.1, 53.6),
         "dVAE token": (83.6, 85.7, 86.9, 50.3, 53.2, 48.1, 53.4),
         "difference": (0.0, -0.2, 0.0, 0.0, -0.1, 0.0, -0.2)}),  # dVAE token - pixel (w/ norm)
}
OTHER_METHODS = ("DINO", "MoCo v3", "BEiT")  # published numbers of other methods: not runs of this toolkit
