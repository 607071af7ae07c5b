#!/usr/bin/env python
"""Trains a small discrete VAE (DALL-E's architecture, Gumbel-softmax relaxation) on the pre-training
images; its encoder is then the tokenizer of the MAE "dVAE token" target (Table 7):

  python tools/train_dvae.py --data /data/images --output-dir runs/dvae --epochs 20
  python tools/pretrain.py --cfg pretrain/mae_vit_base.py target=dvae_token tokenizer=runs/dvae/dvae.pth ...

For the paper's setting use DALL-E's released encoder instead: tokenizer=/path/to/encoder.pkl.
The temperature anneals from 1 to 1/16 and the KL weight ramps up, as in DALL-E's recipe (shortened).
Writes OUTPUT_DIR/dvae.pth (atomically, every epoch; --resume continues it), log.csv and a figure of
reconstructions through the discrete bottleneck.
"""
import math
import os
import sys

from common import cli

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class Images(Dataset):
    """Images resized to `size`, then random `crop` windows: the encoder is convolutional, so it
    learns its codes on crops at the scale it will tokenize, at a fraction of the cost."""

    def __init__(self, paths, size, crop):
        from common.images import read_image

        self.paths, self.read = paths, read_image
        self.transform = transforms.Compose([
            transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC), transforms.RandomCrop(crop),
            transforms.RandomHorizontalFlip(), transforms.ToTensor()])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return self.transform(self.read(self.paths[index]))


def schedule(progress, args):
    """(temperature, kl_weight, lr) at a fraction of training: exponential temperature decay, a
    linear KL ramp over the first half and a cosine learning-rate decay."""
    tau = args.tau_start * (args.tau_end / args.tau_start) ** progress
    kl_weight = args.kl_weight * min(1.0, 2 * progress)
    lr = args.lr * 0.5 * (1 + math.cos(math.pi * progress))
    return tau, kl_weight, lr


def save_figure(model, imgs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model.eval()
    with torch.no_grad():
        one_hot = torch.nn.functional.one_hot(model.tokens(imgs), model.arch["vocab_size"]).permute(0, 3, 1, 2)
        recon = model.decode(one_hot.float())
    model.train()
    fig, axes = plt.subplots(2, len(imgs), figsize=(1.6 * len(imgs), 3.4), squeeze=False)
    for i in range(len(imgs)):
        for row, (img, name) in enumerate(((imgs, "image"), (recon, "from tokens"))):
            axes[row, i].imshow(img[i].permute(1, 2, 0).cpu().numpy())
            axes[row, i].axis("off")
            if i == 0:
                axes[row, i].set_title(name, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train(model, optimizer, loader, paths, path, start, args, request, device, partial=None):
    """Epochs start..args.epochs, dvae.pth written after each; then the reconstructions figure. A stop
    request (common/signals.StopRequest) ends the run after a step, dvae.pth holding the state within
    the epoch; `partial` is that state, for the resumed run."""
    from common.checkpoint_files import save_file
    from common.signals import Stopped
    from common.training import CsvLog, rng_state, set_rng_state

    def checkpoint(epoch, **within):
        save_file({"model": model.state_dict(), "arch": model.arch, "optimizer": optimizer.state_dict(),
                   "epoch": epoch, "args": vars(args), **within}, path)

    log = CsvLog(os.path.join(args.output_dir, "log.csv"), ("loss", "mse", "tau", "codes_used"), start)
    steps = args.epochs * len(loader)
    for epoch in range(start, args.epochs):
        torch.manual_seed(args.seed + epoch)
        loader.generator.manual_seed(args.seed + epoch)
        totals, done = torch.zeros(3, dtype=torch.float64), 0
        batches = iter(loader)
        if partial:  # the stopped run's batches are read again, not trained on: the same order and crops after them
            totals, done = partial["totals"], partial["iteration"]
            for _ in range(done):
                next(batches)
            set_rng_state(partial["rng"], device)
            partial = None
        for i, imgs in enumerate(batches, start=done):
            imgs = imgs.to(device, non_blocking=True)
            tau, kl_weight, lr = schedule((epoch * len(loader) + i) / steps, args)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, mse, _ = model(imgs, tau, kl_weight)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"dVAE loss is {loss.item()} at epoch {epoch + 1}, step {i}; "
                                         f"the last good checkpoint is {path if os.path.isfile(path) else 'none yet'}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            totals += torch.tensor([loss.item() * len(imgs), mse.item() * len(imgs), len(imgs)], dtype=torch.float64)
            # not after the epoch's last batch: its checkpoint follows at once
            signal_name = request.agreed() if i + 1 < len(loader) else None
            if signal_name:
                within = {"iteration": i + 1, "totals": totals, "rng": rng_state(device)}
                checkpoint(epoch, partial_epoch=within)
                raise Stopped(signal_name, f"epoch {epoch + 1}, iteration {i + 1}", path)
        with torch.no_grad():  # a collapsed codebook shows here first
            codes_used = model.tokens(imgs).unique().numel()
        checkpoint(epoch + 1)
        log.write(epoch + 1, loss=float(totals[0] / totals[2]), mse=float(totals[1] / totals[2]), tau=tau,
                  codes_used=codes_used)
        print(f"[dvae] epoch {epoch + 1}/{args.epochs}: loss {totals[0] / totals[2]:.4f}, "
              f"mse {totals[1] / totals[2]:.4f}, tau {tau:.3f}, {codes_used} codes used in the last batch")
    first_images = next(iter(DataLoader(Images(paths[:8], args.input_size, args.input_size), 8))).to(device)
    save_figure(model, first_images, os.path.join(args.output_dir, "reconstructions.png"))


# the shared training options this tool has no use for (common/cli.py): its settings are the flags
REFUSED = {"--cfg": "its settings are flags (see --help)", "overrides": "its settings are flags (see --help)",
           "--init": "the dVAE trains from random weights (continue a run with --resume)",
           "--eval-only": "the tokenizer is judged by its reconstructions (OUTPUT_DIR/reconstructions.png)",
           "--results-csv": "the dVAE writes OUTPUT_DIR/log.csv"}


def main(argv: list[str]) -> None:
    parser = cli.training_parser(__doc__, refused=REFUSED)
    count, positive, fraction = cli.number_in("[1, inf)"), cli.number_in("(0, inf)", float), cli.number_in("[0, inf)", float)
    parser.add_argument("--data", required=True, help="image folder or file list (the pre-training images)")
    parser.add_argument("--input-size", type=count, default=64, help="the MAE's input size (images are resized to it)")
    parser.add_argument("--crop-size", type=count, default=32, help="training crops (a multiple of 8)")
    parser.add_argument("--vocab-size", type=cli.number_in("[2, inf)"), default=512)
    parser.add_argument("--n-hid", type=count, default=64, help="encoder width (DALL-E's: 256)")
    parser.add_argument("--blocks-per-group", type=count, default=1, help="DALL-E's: 2")
    parser.add_argument("--epochs", type=count, default=10)
    parser.add_argument("--batch-size", type=count, default=64)
    parser.add_argument("--lr", type=positive, default=2e-3)
    parser.add_argument("--tau-start", type=positive, default=1.0)
    parser.add_argument("--tau-end", type=positive, default=1 / 16)
    parser.add_argument("--kl-weight", type=fraction, default=1e-3)
    parser.add_argument("--num-workers", type=cli.number_in("[0, inf)"), default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="where it trains (default: cuda if there is a GPU, else cpu)")
    args = parser.parse_intermixed_args(argv)
    if not args.output_dir:
        parser.error("the following arguments are required: --output-dir")

    from backbones import check_same_model
    from common.checkpoint_files import CheckpointError, load_file
    from common.run_lock import owned_output_dir
    from common.signals import StopRequest
    from pretrain.data import list_images
    from pretrain.tokenizer import DiscreteVAE

    with cli.setup_checks():
        paths = list_images(args.data)
    if args.crop_size % 8 or args.crop_size > args.input_size:
        raise cli.UserError(f"--crop-size {args.crop_size} must be a multiple of 8 (the encoder downsamples 8x) "
                             f"and at most --input-size {args.input_size}")
    try:
        device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError as e:
        raise cli.UserError(f"--device {args.device}: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise cli.UserError(f"--device {args.device}: this machine has no CUDA GPU")
    torch.manual_seed(args.seed)
    model = DiscreteVAE(n_hid=args.n_hid, n_blk_per_group=args.blocks_per_group, vocab_size=args.vocab_size).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), weight_decay=0.0)
    path, start, partial = os.path.join(args.output_dir, "dvae.pth"), 0, None
    resume = path if args.resume == "auto" and os.path.isfile(path) else args.resume
    if resume and resume != "auto":
        ckpt = load_file(resume)
        if not isinstance(ckpt, dict) or not {"model", "arch", "optimizer", "epoch"} <= ckpt.keys():
            raise CheckpointError(f"{resume} is not a checkpoint of tools/train_dvae.py (its dvae.pth)")
        check_same_model(model.state_dict(), ckpt["model"], resume)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start, partial = ckpt["epoch"], ckpt.get("partial_epoch")
        # within an epoch: as the stop's message said it
        where = f"epoch {start + 1}, iteration {partial['iteration']}" if partial else f"epoch {start}"
        print(f"[dvae] resumed from {resume} at {where}")
    cli.ResumePoint.find = lambda: path if os.path.isfile(path) else None
    loader = DataLoader(Images(paths, args.input_size, args.crop_size), args.batch_size, shuffle=True, drop_last=True,
                        num_workers=args.num_workers, pin_memory=device.type == "cuda",
                        generator=torch.Generator().manual_seed(args.seed))
    if len(loader) == 0:
        raise cli.UserError(f"{len(paths)} images in {args.data} are fewer than one batch of {args.batch_size}")
    with owned_output_dir(args.output_dir), StopRequest() as request:
        train(model, optimizer, loader, paths, path, start, args, request, device, partial)
    print(f"[dvae] tokenizer: {path}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
