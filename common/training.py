"""Training-loop pieces shared by the torch-only tasks (pre-training, classification transfer):
distributed set-up, precision, the warm-up + cosine schedule, per-epoch CSV logs, stopping within an
epoch and going on from there."""
import contextlib
import csv
import hashlib
import itertools
import math
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from .checkpoint_files import CheckpointError, load_file, save_file
from .config import check_ranges
from .errors import UserError
from .run_lock import owned_output_dir
from .signals import Stopped, StopRequest, deferred_signals


def init_distributed() -> tuple[int, int, torch.device]:
    """(rank, world_size, device) from torchrun's environment; gloo on CPU, nccl on GPU. A process torchrun
    started joins its process group even alone (TORCHELASTIC_RUN_ID), as every one of many would."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank, local_rank = int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if (world > 1 or "TORCHELASTIC_RUN_ID" in os.environ) and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def leave_distributed() -> None:
    """The end of a run: every process waits for the others, then leaves the process group, if it joined one."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" -> bf16 where the device supports it, else fp32; fp16 (GradScaler) only on GPUs."""
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        bf16_cpu = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
        return "bf16" if torch.backends.mkldnn.is_available() and bf16_cpu() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision=fp16 (with GradScaler) needs a GPU; use bf16 or fp32 on the CPU")
    if precision not in ("bf16", "fp16", "fp32"):
        raise ValueError(f"precision must be auto, bf16, fp16 or fp32, got {precision!r}")
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def lr_at(cfg: Any, lr: float, epoch: float) -> float:
    """The lr at a fractional epoch under cfg's warm-up + half-cycle cosine schedule."""
    return cosine_lr(epoch, lr, cfg.warmup_epochs, cfg.epochs, cfg.min_lr)


def accumulation_steps(batch_size: int, total_batch_size: int, world_size: int) -> tuple[int, int]:
    """Batches to accumulate per optimizer step so that batch_size x processes x steps is
    total_batch_size (0: no accumulation); returns (steps, effective total batch)."""
    per_step = batch_size * world_size
    total = total_batch_size or per_step
    if total % per_step:
        raise ValueError(f"total_batch_size={total} is not a multiple of batch_size x processes = {per_step}")
    return total // per_step, total


def cosine_lr(epoch: float, base_lr: float, warmup_epochs: float, epochs: float, min_lr: float = 0.0) -> float:
    """Linear warm-up, then half-cycle cosine to min_lr (epoch is fractional)."""
    if epoch < warmup_epochs:
        return base_lr * epoch / warmup_epochs
    progress = (epoch - warmup_epochs) / max(epochs - warmup_epochs, 1e-8)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def param_digest(model: torch.nn.Module) -> str:
    """sha256 of every state-dict tensor: equal digests mean bit-identical models."""
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class CsvLog:
    """One row per epoch; a resumed run first drops the rows past its checkpoint."""

    def __init__(self, path: str, fields: Sequence[str], start_epoch: int) -> None:
        self.path, self.fields = path, ("epoch", *fields)
        rows = []
        if os.path.isfile(path):
            with open(path) as f:
                rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= start_epoch]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, self.fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def write(self, epoch: int, **values: Any) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([epoch, *(_fmt(values[k]) for k in self.fields[1:])])


def _fmt(value):
    return f"{value:.6g}" if isinstance(value, float) else value


class ResumableSampler(DistributedSampler):
    """A DistributedSampler whose epoch can start part-way: set_epoch(epoch, skip) leaves out the first
    `skip` samples of this process, so a run resumed within an epoch reads only what it has not trained on."""
    skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(super().__iter__(), self.skip, None)


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's random generators (torch's on the CPU and the device, numpy's, Python's) as data
    that loads with weights_only=True."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    # numpy's stub picks get_state()'s dict overload (legacy=False) for a call without arguments
    state = {"torch": torch.get_rng_state(), "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],  # type: ignore[attr-defined]
             "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if device.type == "cuda" and "cuda" in state:  # not for a run stopped on the CPU
        torch.cuda.set_rng_state(state["cuda"], device)


def plain(obj: Any) -> Any:
    """Tuples to lists, recursively: configs stored in checkpoints load under weights_only."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


class TrainerBase:
    """What the torch-only trainers share: process set-up, the batch plan, logging, the NaN guard,
    the optimizer step, atomic checkpoints (checkpoint-last.pth every epoch, numbered ones every
    save_every epochs), the output folder's lock, and stop requests (a checkpoint within the epoch, and
    going on from it). Subclasses set `tag`, `self.model`, `self.optimizer`, `self.scaler`,
    `self.sampler` (a ResumableSampler) and define state(epoch), the checkpoint's content, and fit(),
    the training loop that train() runs."""

    tag = "train"
    # set by the subclass (see above)
    model: torch.nn.Module
    ddp: Any  # the model, wrapped in DistributedDataParallel when world > 1
    optimizer: torch.optim.Optimizer
    scaler: Any  # torch.amp.GradScaler, or one that is disabled
    sampler: ResumableSampler
    loader: Any
    state: Callable[[int], dict[str, Any]]
    fit: Callable[[], Any]
    stop_request: StopRequest
    partial: dict[str, Any] | None
    skipped: list[str]

    def setup(self, cfg: Any) -> None:
        check_ranges(cfg)
        self.cfg = cfg
        self.rank, self.world, self.device = init_distributed()
        self.is_main = self.rank == 0
        self.precision = resolve_precision(cfg.precision, self.device)
        self.accum_iter, total = accumulation_steps(cfg.batch_size, cfg.total_batch_size, self.world)
        self.lr = cfg.blr * total / 256  # the paper's linear scaling rule
        self.last_path = os.path.join(cfg.output_dir, "checkpoint-last.pth")
        # where training starts: after start_epoch epochs, and within the next one after `partial`'s samples
        self.start_epoch, self.partial, self.skipped = 0, None, []
        # every generator the loops draw from: a run repeats itself, and a resumed run repeats the stopped one
        torch.manual_seed(cfg.seed + self.rank)  # drop path, crops
        np.random.seed(cfg.seed + self.rank)  # mixup, RandAugment
        random.seed(cfg.seed + self.rank)  # RandAugment, timm's crops (in this process with num_workers=0)

    def train(self) -> Any:
        """fit() (the subclass's training loop) while this run owns its output folder and takes stop
        requests (SIGTERM, SIGUSR1, SIGUSR2)."""
        with self.output_dir_owned(), StopRequest() as self.stop_request:
            return self.fit()

    @contextlib.contextmanager
    def output_dir_owned(self) -> Iterator[None]:
        """The output folder is this run's alone while it trains: global rank 0 holds its lock, and every
        rank stops when another run holds it (rank 0 says why)."""
        os.makedirs(self.cfg.output_dir, exist_ok=True)
        with contextlib.ExitStack() as owned:
            refusal: list[str | None] = [None]
            if self.is_main:
                try:
                    owned.enter_context(owned_output_dir(self.cfg.output_dir, self.log))
                except UserError as e:
                    refusal = [str(e)]
            if self.world > 1:
                dist.broadcast_object_list(refusal, src=0)
            if refusal[0]:
                if self.is_main:
                    raise UserError(refusal[0])
                raise SystemExit(2)
            yield

    def resume_checkpoint(self, resume: str | None) -> tuple[str | None, Any]:
        """--resume -> (path, loaded checkpoint), or (None, None) for a fresh start. 'auto' takes
        checkpoint-last.pth when present; if that one no longer loads (cut short outside the atomic
        save: a copy, a failing disk), the newest numbered checkpoint that loads, named in the log."""
        if resume != "auto":
            return (resume, load_file(resume)) if resume else (None, None)
        if not os.path.isfile(self.last_path):
            return None, None
        try:
            return self.last_path, load_file(self.last_path)
        except CheckpointError as error:
            names = os.listdir(self.cfg.output_dir)
            numbered = [m for m in map(re.compile(r"checkpoint-(\d+)\.pth").fullmatch, names) if m]
            for m in sorted(numbered, key=lambda m: int(m.group(1)), reverse=True):
                path = os.path.join(self.cfg.output_dir, m.group(0))
                try:
                    ckpt = load_file(path)
                except CheckpointError:
                    continue
                self.log(f"{error}; --resume auto continues from {path}, the newest numbered checkpoint that loads")
                return path, ckpt
            raise

    def resume_position(self, path: str, ckpt: dict[str, Any]) -> None:
        """Where a resumed run goes on: after the checkpoint's epochs, and for a stop request's checkpoint
        within the next epoch, after the samples it had trained on."""
        self.start_epoch, self.partial = ckpt.get("epoch", 0), ckpt.get("partial_epoch")
        self.skipped = list(ckpt.get("skipped_images", []))
        where = f"epoch {self.start_epoch}"
        if self.partial:  # as the stop's message said it
            where = f"epoch {self.start_epoch + 1}, iteration {self.batches_done()}"
            if len(self.partial["rng"]) != self.world:
                where += f" (stopped with {len(self.partial['rng'])} processes: drop path and mixup draw anew)"
        self.log(f"resumed from {path} at {where}")

    def batches_done(self) -> int:
        """Batches per process of epoch start_epoch trained on before a stop request (the same samples
        for any number of processes: the sampler deals them out in turn)."""
        return self.partial["samples"] // (self.cfg.batch_size * self.world) if self.partial else 0

    def log(self, msg: str) -> None:
        if self.is_main:
            tqdm.write(f"[{self.tag}] {msg}")

    def record_bad(self, messages: Sequence[str], batch_is_empty: bool, epoch: int, iteration: int) -> None:
        """Counts (each file once, whatever the epoch) and logs the unreadable images that the "skip"
        policy left out of a batch; a batch with no readable image at all stops the run."""
        for msg in messages:
            if msg not in self.skipped:
                self.skipped.append(msg)
                self.log(f"skipped ({len(self.skipped)} so far): {msg}")
        if batch_is_empty:
            raise UserError(f"epoch {epoch + 1}, batch {iteration}: none of its {len(messages)} images could be read "
                            f"(bad_images=skip), e.g. {messages[0]}; fix or remove the unreadable files")

    def check_finite(self, loss: torch.Tensor, epoch: int, iteration: int) -> None:
        if not torch.isfinite(loss):
            last = self.last_path if os.path.isfile(self.last_path) else "none yet"
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, iteration {iteration} "
                                     f"(rank {self.rank}); stopping. The last good checkpoint is {last}")

    def run_epoch(self, epoch: int, n_batches: int, batch_loss: Callable[[Any, Any], tuple[torch.Tensor, int]],
                  writer: Any = None, after_step: Callable[[], object] | None = None) -> tuple[float, float | None, float]:
        """The loop both trainers run over the first n_batches batches of self.loader: per batch, the
        scheduled lr (set at the start of each accumulation cycle), batch_loss(inputs, targets) ->
        (loss, images) on the device, the NaN guard and the scaled backward (DDP's no_sync until the
        cycle's last batch); per cycle, the optimizer step, after_step(), TensorBoard and the stop
        request (stop()). Unreadable images are counted (record_bad). A run resumed from a stop
        request's checkpoint goes on within its epoch: the batches done are skipped, the random
        generators and the epoch's loss sums are as they were. -> (mean loss over all processes,
        last lr, images/s)."""
        cfg, model = self.cfg, self.ddp
        steps_per_epoch = n_batches // self.accum_iter
        done, partial, self.partial = self.batches_done(), self.partial, None  # it holds for its own epoch only
        self.sampler.set_epoch(epoch, skip=done * cfg.batch_size)
        self.optimizer.zero_grad(set_to_none=True)
        before: dict[str, Any] = partial or {"loss_sum": 0.0, "seen": 0, "lr": None}
        # rank 0 carries the epoch's sums from before the stop (one process: the very sums of a run without it);
        # on the device: NCCL reduces GPU tensors only, and the sum needs no host sync
        loss_sum = torch.tensor(before["loss_sum"] if self.is_main else 0.0, dtype=torch.float64, device=self.device)
        seen = first_seen = before["seen"] if self.is_main else 0
        lr, start = before["lr"], time.perf_counter()
        # a context: the bar is cleared when an error stops the epoch, before its one-line message
        with deferred_signals():  # a Ctrl-C inside tqdm's constructor leaves a half-made bar whose __del__ fails
            bar = tqdm(total=n_batches, initial=done, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not self.is_main,
                       dynamic_ncols=True, leave=False, mininterval=1.0)
        with bar:
            batches = iter(self.loader)  # draws the loader's seed from the global generator, as the stopped run did
            if partial and len(partial["rng"]) == self.world:
                set_rng_state(partial["rng"][self.rank], self.device)
            for i, (inputs, targets, bad) in enumerate(batches, start=done):
                if i >= n_batches:
                    break
                self.record_bad(bad, inputs is None, epoch, i)  # stops at a batch with no readable image
                if i % self.accum_iter == 0:
                    lr = lr_at(cfg, self.lr, epoch + i / n_batches)
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr * group["lr_scale"]
                boundary = (i + 1) % self.accum_iter == 0
                inputs, targets = inputs.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)
                with contextlib.nullcontext() if boundary or self.world == 1 else model.no_sync():
                    loss, images = batch_loss(inputs, targets)
                    self.check_finite(loss, epoch, i)
                    self.scaler.scale(loss / self.accum_iter).backward()
                loss_sum += loss.detach().double() * images
                seen += images
                if boundary:
                    self.optimizer_step()
                    if after_step is not None:
                        after_step()
                    if self.is_main and writer is not None:
                        step = epoch * steps_per_epoch + i // self.accum_iter
                        writer.add_scalar("train/loss", loss.item(), step)
                        writer.add_scalar("train/lr", lr, step)
                    signal_name = self.stop_request.agreed()  # at an optimizer step: no gradients half-accumulated
                    if signal_name:
                        self.stop(signal_name, epoch, i + 1, self.sum_over_ranks(loss_sum, seen), lr, writer)
                bar.update(1)
                if self.is_main:  # loss.item() waits for the GPU: only where the bar is shown
                    bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.2e}",
                                    img_s=f"{(seen - first_seen) * self.world / (time.perf_counter() - start):.1f}",
                                    refresh=False)
        loss_total, images = self.sum_over_ranks(loss_sum, seen)  # type: ignore[assignment]  # now a float
        return loss_total / max(images, 1), lr, (images - before["seen"]) / (time.perf_counter() - start)

    def sum_over_ranks(self, loss_sum: torch.Tensor, seen: int) -> tuple[float, float]:
        """(loss sum, images) of the epoch over all processes."""
        totals = torch.stack([loss_sum, torch.tensor(float(seen), dtype=torch.float64, device=self.device)])
        if self.world > 1:
            dist.all_reduce(totals)
        return float(totals[0]), float(totals[1])

    def stop(self, signal_name: str, epoch: int, batches: int, totals: tuple[float, float], lr: float | None,
             writer: Any) -> None:
        """A stop request that every rank agreed on after `batches` batches of the epoch: checkpoint-last.pth
        gets the state within the epoch (written by rank 0; every rank waits until it is complete), then
        Stopped ends the run."""
        states: list[Any] = [rng_state(self.device)]
        if self.world > 1:
            states = [None] * self.world
            dist.all_gather_object(states, rng_state(self.device))
        if self.is_main:
            if writer is not None:
                writer.flush()
            partial = {"samples": batches * self.cfg.batch_size * self.world, "loss_sum": totals[0],
                       "seen": int(totals[1]), "lr": lr, "rng": states}
            save_file({**self.state(epoch), "partial_epoch": partial}, self.last_path)
        if self.world > 1:
            dist.barrier()
        raise Stopped(signal_name, f"epoch {epoch + 1}, iteration {batches}", self.last_path, self.is_main)

    def optimizer_step(self) -> None:
        if self.cfg.clip_grad:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)

    def save(self, epoch: int) -> None:
        """The checkpoints after `epoch` epochs (rank 0 writes them)."""
        if not self.is_main:
            return
        state = self.state(epoch)
        save_file(state, self.last_path)
        if epoch % self.cfg.save_every == 0 or epoch == self.cfg.epochs:
            save_file(state, os.path.join(self.cfg.output_dir, f"checkpoint-{epoch:04d}.pth"))
