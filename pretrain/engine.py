"""The pre-training loop: DDP (torchrun), gradient accumulation, mixed precision, exact resume,
atomic checkpoints, NaN guard, TensorBoard/CSV logs, progress bar and reconstruction figures."""
import contextlib
import dataclasses
import json
import os
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from backbones.checkpoint import check_same_model
from backbones.param_groups import param_groups
from common.checkpoint_files import CheckpointError
from common.errors import UserError
from common.gpu_data import data_loader
from common.images import BadImageError, normalize, read_image
from common.training import CsvLog, ResumableSampler, TrainerBase, autocast, leave_distributed, param_digest, plain

from .config import PretrainConfig, build_model
from .data import PretrainDataset, eval_transform, list_images
from .mae import MaskedAutoencoder, fit_pca
from .masking import sample_noise
from .visualize import save_reconstruction_figure


def check_masking(cfg: PretrainConfig, patch_size: int) -> None:
    """The mask leaves at least one of the L patches visible (the model keeps int(L * (1 - mask_ratio)))
    and suits the sampling strategy."""
    side = cfg.input_size // patch_size
    if int(side**2 * (1 - cfg.mask_ratio)) < 1:  # mask_ratio > 0 is checked with the ranges
        raise UserError(f"mask_ratio={cfg.mask_ratio} leaves none of the {side**2} patches of a {cfg.input_size} px "
                        f"input visible: it must be in (0, {1 - 1 / side**2:.4g}]")
    sample_noise(cfg.mask_sampling, (side, side), cfg.mask_ratio)  # a ValueError for a strategy or ratio it refuses


class Trainer(TrainerBase):
    tag = "pretrain"
    model: MaskedAutoencoder

    def __init__(self, cfg: PretrainConfig, resume: str | None = None) -> None:
        self.setup(cfg)
        self.model = build_model(cfg).to(self.device)
        check_masking(cfg, self.model.patch_size)
        self.paths = list_images(cfg.data)
        self.dataset = PretrainDataset(self.paths, cfg.input_size, self.model.patch_size, cfg.mask_ratio,
                                       cfg.mask_sampling, cfg.seed, cfg.bad_images, cfg.augmentation, cfg.data_backend)
        # DistributedSampler also for one process: the same shuffling for every world size.
        self.sampler = ResumableSampler(self.dataset, self.world, self.rank, shuffle=True, seed=cfg.seed, drop_last=True)
        self.loader = data_loader(self.dataset, self.dataset.transform, self.device, cfg.bad_images,
                                  batch_size=cfg.batch_size, sampler=self.sampler, num_workers=cfg.num_workers,
                                  drop_last=True)
        if len(self.loader) < self.accum_iter:
            raise ValueError(f"{len(self.paths)} images give {len(self.loader)} batches per process, fewer than "
                             f"one optimizer step ({self.accum_iter} accumulated batches of {cfg.batch_size})")
        # The official recipe's groups: weight decay on every >= 2-D weight. Fused AdamW: one kernel
        # for all parameters (about 9x faster than the per-tensor loop on 2 CPU cores).
        self.optimizer = torch.optim.AdamW(param_groups(self.model, cfg.weight_decay, decay_rule="1d"),
                                           lr=self.lr, betas=tuple(cfg.betas), fused=True)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        resume, ckpt = self.resume_checkpoint(resume)
        if resume:
            self.load(resume, ckpt)
        elif cfg.target == "pca":
            self.fit_pca()
        self.ddp = DistributedDataParallel(self.model) if self.world > 1 else self.model
        if cfg.compile not in ("auto", True, False):
            raise ValueError(f"compile must be 'auto', True or False, got {cfg.compile!r}")
        compiled = self.device.type == "cuda" if cfg.compile == "auto" else cfg.compile
        # the compiled callable runs the training forward; checkpoints keep the plain module's names
        self.train_forward = torch.compile(self.ddp) if compiled else self.ddp

    # -- state -----------------------------------------------------------------------------------
    def state(self, epoch: int) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "epoch": epoch,
                "config": plain(dataclasses.asdict(self.cfg)), "skipped_images": self.skipped}

    def load(self, path: str, ckpt: Any) -> None:
        if not isinstance(ckpt, dict) or not {"model", "optimizer", "scaler", "epoch"} <= ckpt.keys() or "classes" in ckpt:
            raise CheckpointError(f"{path} is not a checkpoint of tools/pretrain.py (it holds no pre-training state); "
                                  f"--resume continues a pre-training run from its own checkpoint-last.pth")
        check_same_model(self.model.state_dict(), ckpt["model"], path)
        self.model.load_state_dict(ckpt["model"], strict=True)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.resume_position(path, ckpt)

    def fit_pca(self) -> None:
        imgs = self.readable_images(self.cfg.pca_fit_images)
        explained = fit_pca(self.model, imgs.split(64))
        self.log(f"PCA target: {self.model.pca_components.shape[0]} components fitted on {len(imgs)} images "
                 f"explain {explained:.1%} of patch variance")

    # -- training --------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        cfg = self.cfg
        writer = csv_log = None
        if self.is_main:
            from torch.utils.tensorboard import SummaryWriter
            # the steps past the checkpoint are logged anew
            step = self.start_epoch * self.steps_per_epoch + self.batches_done() // self.accum_iter
            writer = SummaryWriter(os.path.join(cfg.output_dir, "tensorboard"), purge_step=step)
            csv_log = CsvLog(os.path.join(cfg.output_dir, "log.csv"), ("loss", "lr", "images_per_s"), self.start_epoch)
            self.log(f"{cfg.model} on {len(self.paths)} images, {self.world} process(es) on {self.device}, "
                     f"{self.precision}, batch {cfg.batch_size} x {self.world} x {self.accum_iter} accum, lr {self.lr:.3g}")
        # token predictions have no pixels to show without the dVAE decoder
        vis_every = cfg.vis_every if cfg.target != "dvae_token" else 0
        vis_imgs = self.readable_images(cfg.vis_images) if vis_every else None
        for epoch in range(self.start_epoch, cfg.epochs):
            loss = self.train_one_epoch(epoch, writer, csv_log)
            self.save(epoch + 1)
            if self.is_main and vis_every and ((epoch + 1) % vis_every == 0 or epoch + 1 == cfg.epochs):
                assert vis_imgs is not None  # read above whenever vis_every
                path = os.path.join(cfg.output_dir, "figures", f"reconstruction-epoch{epoch + 1:04d}.png")
                save_reconstruction_figure(self.model, vis_imgs.to(self.device), path, cfg.mask_ratio, seed=cfg.seed,
                                           title=f"{cfg.model}, epoch {epoch + 1}, loss {loss:.3f}")
        return self.finish(writer)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader) // self.accum_iter

    def train_one_epoch(self, epoch: int, writer: Any, csv_log: CsvLog | None) -> float:
        cfg = self.cfg
        self.ddp.train()
        self.dataset.set_epoch(epoch)
        # Model-side randomness (drop path) is seeded per epoch and rank: a resumed run repeats it exactly.
        torch.manual_seed(hash((cfg.seed, epoch, self.rank)) % (2**63))

        def batch_loss(imgs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, int]:
            with autocast(self.device, self.precision):
                return self.train_forward(normalize(imgs), mask_ratio=cfg.mask_ratio, noise=noise)[0], len(imgs)

        # a trailing partial accumulation is left out
        epoch_loss, lr, images_per_s = self.run_epoch(epoch, self.steps_per_epoch * self.accum_iter, batch_loss, writer)
        if self.is_main:
            assert csv_log is not None, "the main process keeps the log"
            writer.add_scalar("train/epoch_loss", epoch_loss, epoch + 1)
            writer.flush()
            csv_log.write(epoch + 1, loss=epoch_loss, lr=lr, images_per_s=images_per_s)
            self.log(f"epoch {epoch + 1}/{cfg.epochs}: loss {epoch_loss:.4f}, lr {lr:.3g}, {images_per_s:.1f} img/s")
        return epoch_loss

    def readable_images(self, count: int) -> torch.Tensor:
        """The first `count` readable images, centre-cropped (figures show the same ones all run)."""
        transform = eval_transform(self.cfg.input_size)
        imgs: list[torch.Tensor] = []
        for path in self.paths:
            if len(imgs) == count:
                break
            with contextlib.suppress(BadImageError):
                imgs.append(transform(read_image(path)))
        return torch.stack(imgs)

    def finish(self, writer: Any) -> dict[str, Any]:
        digests: list[str | None] = [None] * self.world
        if self.world > 1:
            dist.all_gather_object(digests, param_digest(self.model))
        else:
            digests = [param_digest(self.model)]
        summary = {"epochs": self.cfg.epochs, "world_size": self.world, "precision": self.precision,
                   "skipped_images": self.skipped, "rank_param_digests": digests}
        if self.is_main:
            writer.close()
            with open(os.path.join(self.cfg.output_dir, "summary.json"), "w") as f:
                json.dump(summary, f, indent=1)
            if self.skipped:
                self.log(f"{len(self.skipped)} unreadable images were skipped (listed in summary.json)")
        leave_distributed()
        return summary
