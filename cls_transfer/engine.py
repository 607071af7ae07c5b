"""Fine-tuning, linear probing, partial fine-tuning and training from scratch, with timm's
augmentation, mixup/cutmix, soft-target losses, the official LARS and EMA; DDP through torchrun."""
from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
import torch.nn as nn
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel

from backbones import check_same_model, load_state_dict, param_groups, state_dict_of
from common.checkpoint_files import CheckpointError
from common.cli import NO_INIT, require_start
from common.errors import UserError
from common.gpu_data import data_loader
from common.results import record_result
from common.training import CsvLog, ResumableSampler, TrainerBase, autocast, leave_distributed, plain

from .config import ClsConfig
from .datasets import build_dataset
from .lars import LARS
from .models import accuracy, build_classifier, load_pretrained, set_trainable
from .transforms import transforms_for

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


class ClsTrainer(TrainerBase):
    tag = "cls"

    def __init__(self, cfg: ClsConfig, resume: str | None = None, eval_only: bool = False) -> None:
        """resume: a checkpoint or 'auto'; eval_only: it is only evaluated, so it may also be an
        official fine-tuned one (mae_finetuned_vit_*.pth)."""
        self.setup(cfg)
        train_transform, eval_transform = transforms_for(cfg)
        self.train_set = build_dataset(cfg.dataset, cfg.data_root, "train", train_transform, cfg.bad_images)
        self.val_set = build_dataset(cfg.dataset, cfg.data_root, "val", eval_transform, cfg.bad_images)
        self.num_classes = len(self.train_set.classes)
        self.sampler = ResumableSampler(self.train_set, self.world, self.rank, shuffle=True, seed=cfg.seed, drop_last=True)
        self.loader = data_loader(self.train_set, train_transform, self.device, cfg.bad_images, batch_size=cfg.batch_size,
                                  sampler=self.sampler, num_workers=cfg.num_workers, drop_last=True)
        # every validation image exactly once over all ranks (no DistributedSampler padding)
        self.val_loader = data_loader(torch.utils.data.Subset(self.val_set, range(self.rank, len(self.val_set), self.world)),
                                      eval_transform, self.device, cfg.bad_images, batch_size=cfg.batch_size,
                                      num_workers=cfg.num_workers)
        if len(self.loader) < self.accum_iter:
            raise ValueError(f"{len(self.train_set)} training images give {len(self.loader)} batches per process, "
                             f"fewer than one optimizer step ({self.accum_iter} accumulated batches)")

        self.model = build_classifier(cfg.backbone, self.num_classes, cfg.mode, cfg.input_size, cfg.drop_path,
                                      **cfg.backbone_overrides).to(self.device)
        resume_path, resume_ckpt = self.resume_checkpoint(resume)
        self.checkpoint_path = resume_path  # the checkpoint resumed or evaluated, if any
        if eval_only and not resume_path:
            raise UserError(f"--eval-only found no checkpoint to evaluate ({self.last_path} does not exist): pass "
                            f"--eval-only CHECKPOINT")
        if cfg.init and cfg.init != NO_INIT:
            self.log(f"init from {cfg.init}: {load_pretrained(self.model, cfg.init).summary()}")
        elif cfg.mode != "scratch":  # mode=scratch (the cls/scratch_*.py configs) says "random weights" itself
            require_start(cfg.init, bool(resume_path), resume, self.last_path,
                          also=f" (mode={cfg.mode} transfers a pre-trained encoder; mode=scratch trains without one)")
        self.pretrain_checkpoint = cfg.init if cfg.init and cfg.init != NO_INIT else NO_INIT
        trainable = set_trainable(self.model, cfg.mode, cfg.blocks)
        self.log(f"{cfg.mode}: {len(trainable)} trainable tensors, "
                 f"{sum(p.numel() for p in self.model.parameters() if p.requires_grad) / 1e6:.2f}M parameters")
        self.optimizer = self.build_optimizer()
        self.mixup = None
        if cfg.mode != "linprobe" and (cfg.mixup > 0 or cfg.cutmix > 0):
            self.mixup = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, label_smoothing=cfg.smoothing,
                               num_classes=self.num_classes)
            self.criterion: nn.Module = SoftTargetCrossEntropy()
        elif cfg.smoothing > 0 and cfg.mode != "linprobe":
            self.criterion = LabelSmoothingCrossEntropy(cfg.smoothing)
        else:
            self.criterion = nn.CrossEntropyLoss()
        self.ema = ModelEmaV3(self.model, decay=cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        if resume_path:
            self.load(resume_path, resume_ckpt, eval_only)
        self.ddp = DistributedDataParallel(self.model) if self.world > 1 else self.model

    def build_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.cfg
        if cfg.optimizer == "lars":  # the official LARS: 1-D parameters get neither weight decay nor adaptation
            params = [p for p in self.model.parameters() if p.requires_grad]
            return LARS([{"params": params, "lr_scale": 1.0}], lr=self.lr, momentum=cfg.momentum,
                        weight_decay=cfg.weight_decay)
        if cfg.optimizer != "adamw":
            raise ValueError(f"optimizer must be 'adamw' or 'lars', got {cfg.optimizer!r}")
        layer_decay = cfg.layer_decay if cfg.mode != "scratch" else 1.0
        return torch.optim.AdamW(param_groups(self.model, cfg.weight_decay, layer_decay), lr=self.lr,
                                 betas=tuple(cfg.betas), fused=True)

    # -- state -----------------------------------------------------------------------------------
    def load(self, path: str, ckpt: object, eval_only: bool = False) -> None:
        if eval_only and isinstance(ckpt, dict) and "classes" not in ckpt:
            return self.load_official(path, ckpt)
        if not isinstance(ckpt, dict) or "classes" not in ckpt:
            raise CheckpointError(f"{path} is not a checkpoint of tools/train_cls.py; to start from an MAE checkpoint "
                                  f"pass it as --init")
        check_same_model(self.model.state_dict(), ckpt["model"], path)
        self.model.load_state_dict(ckpt["model"], strict=True)
        init = ckpt.get("config", {}).get("init")
        if init and init != NO_INIT and not self.cfg.init:  # a resumed run keeps recording its pre-training
            self.pretrain_checkpoint = init
        if "optimizer" in ckpt:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.ema is not None and "ema" in ckpt:
            self.ema.module.load_state_dict(ckpt["ema"])
        self.resume_position(path, ckpt)

    def load_official(self, path: str, ckpt: dict[str, Any]) -> None:
        """An official fine-tuned checkpoint ({'model': ...}, its command line under 'args'), mapped as
        strictly as --init: its head has this dataset's classes, and every other key fits the model."""
        sd = state_dict_of(ckpt, path)
        if not any(k.startswith("head.") for k in sd):
            raise CheckpointError(f"{path} has no classification head (head.*): --eval-only takes a fine-tuned "
                                  f"checkpoint (tools/train_cls.py's or an official mae_finetuned_vit_*.pth); pass "
                                  f"an MAE pre-training checkpoint as --init")
        key = "head.weight" if isinstance(self.model.head, nn.Linear) else "head.1.weight"
        if key in sd and len(sd[key]) != self.num_classes:
            raise CheckpointError(f"{path}: its head ({key}) has {len(sd[key])} classes, {self.cfg.dataset} under "
                                  f"{self.cfg.data_root} has {self.num_classes}: evaluate it on the dataset it was "
                                  f"fine-tuned for")
        self.log(f"official fine-tuned checkpoint {path}: {load_state_dict(self.model, sd, source=path).summary()}")
        if self.ema is not None:  # evaluate() reads the EMA: here it is these weights
            self.ema.module.load_state_dict(self.model.state_dict())
        # the official main_finetune.py names its pre-trained checkpoint --finetune
        self.pretrain_checkpoint = getattr(ckpt.get("args"), "finetune", "") or ""

    def state(self, epoch: int) -> dict[str, Any]:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scaler": self.scaler.state_dict(), "epoch": epoch, "skipped_images": self.skipped,
                 "config": plain(dataclasses.asdict(self.cfg)), "classes": list(self.train_set.classes)}
        if self.ema is not None:
            state["ema"] = self.ema.module.state_dict()
        return state

    # -- loops -----------------------------------------------------------------------------------
    def fit(self) -> tuple[float, float]:
        cfg = self.cfg
        writer = csv_log = None
        if self.is_main:
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(os.path.join(cfg.output_dir, "tensorboard"))
            csv_log = CsvLog(os.path.join(cfg.output_dir, "log.csv"), ("loss", "lr", "top1", "top5"), self.start_epoch)
            self.log(f"{cfg.backbone} {cfg.mode} on {cfg.dataset} ({len(self.train_set)} train / {len(self.val_set)} val "
                     f"images, {self.num_classes} classes), {self.world} process(es), {self.precision}, "
                     f"batch {cfg.batch_size} x {self.world} x {self.accum_iter} accum, lr {self.lr:.3g}")
        top1 = top5 = None
        for epoch in range(self.start_epoch, cfg.epochs):
            loss, lr = self.train_one_epoch(epoch, writer)
            # every eval_every epochs and always after the last, whose accuracy is the run's result
            evaluated = (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs
            top1, top5 = self.evaluate() if evaluated else (None, None)
            self.save(epoch + 1)
            if writer is not None and csv_log is not None:  # the main process's
                if evaluated:
                    writer.add_scalar("val/top1", top1, epoch + 1)
                    writer.add_scalar("val/top5", top5, epoch + 1)
                writer.flush()
                csv_log.write(epoch + 1, loss=loss, lr=lr, top1=top1, top5=top5)
                accuracy = f", val top-1 {top1:.2f}, top-5 {top5:.2f}" if evaluated else ""
                self.log(f"epoch {epoch + 1}/{cfg.epochs}: loss {loss:.4f}{accuracy}")
        if top1 is None or top5 is None:  # resumed a finished run
            top1, top5 = self.evaluate()
        self.record_result(top1, top5, cfg.epochs)
        if writer is not None:
            writer.close()
        leave_distributed()
        return top1, top5

    def train_one_epoch(self, epoch: int, writer: SummaryWriter | None) -> tuple[float, float | None]:
        self.ddp.train()

        def batch_loss(imgs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
            if self.mixup is not None:
                imgs, targets = self.mixup(*_even(imgs, targets))
            with autocast(self.device, self.precision):
                return self.criterion(self.ddp(imgs), targets), len(imgs)

        # the official loop (engine_finetune.py): every batch runs, the schedule advances by batch / len(loader), and
        # the gradients of a last incomplete accumulation are dropped by the zero_grad of the next epoch
        ema = self.ema
        loss, lr, _ = self.run_epoch(epoch, len(self.loader), batch_loss, writer,
                                     after_step=None if ema is None else lambda: ema.update(self.model))
        return loss, lr

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Top-1 / top-5 (%) on the whole validation split (of the EMA weights when kept)."""
        model = self.ema.module if self.ema is not None else self.model
        model.eval()
        counts = torch.zeros(3, dtype=torch.float64)
        for imgs, targets, _bad in self.val_loader:
            if imgs is None:
                continue
            assert targets is not None, "collate drops images and targets together"
            with autocast(self.device, self.precision):
                logits = model(imgs.to(self.device))
            k = min(5, logits.shape[1])
            c1, c5 = accuracy(logits.float(), targets.to(self.device), (1, k))
            counts += torch.tensor([c1, c5, len(targets)], dtype=torch.float64)
        if self.world > 1:
            dist.all_reduce(counts)
        if counts[2] == 0:
            raise UserError(f"no validation image of {self.cfg.dataset} under {self.cfg.data_root} could be read "
                            f"(bad_images=skip skipped all {len(self.val_set)})")
        return float(100 * counts[0] / counts[2]), float(100 * counts[1] / counts[2])

    def record_result(self, top1: float, top5: float, epoch: int, run_dir: str | None = None) -> None:
        """Appends one row to results_csv, by default RUN_DIR/results.csv (the reproduction tool builds
        Tables 3 and 6 from them). run_dir: the output dir, or the folder of an evaluated checkpoint."""
        if not self.is_main:
            return
        cfg = self.cfg
        path, _ = record_result("cls", run_dir or cfg.output_dir, cfg.results_csv or None,
                                pretrain_checkpoint=self.pretrain_checkpoint, backbone=cfg.backbone,
                                dataset=cfg.dataset, mode=cfg.mode, blocks=cfg.blocks if cfg.mode == "partial" else "",
                                resolution=cfg.input_size, top1=float(top1), top5=float(top5), epoch=epoch)
        self.log(f"top-1 {top1:.2f}, top-5 {top5:.2f} -> {path}")


def _even(imgs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """timm's Mixup needs an even batch (a skipped bad image can make it odd)."""
    n = len(imgs) // 2 * 2
    return imgs[:n], targets[:n]
