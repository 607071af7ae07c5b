#!/usr/bin/env python
"""The GPU acceptance run: every pipeline's training step on one GPU, timed and sized.

  python tools/bench_gpu.py --out OUT                        # on a GPU (scripts/gpu_check.sh runs this)
  python tools/bench_gpu.py --device cpu --quick --out OUT   # the dry run in the test suite (tiny models)

Parts, each in its own process with its own time limit, so that one failure or hang loses no other:
  pretrain  MAE steps (ViT-B/16, ViT-L/16, 224 px, bf16 autocast, fused AdamW, largest batch of a
            short list that fits): img/s, peak memory, model FLOPs utilisation (FLOPs counted with
            torch's FlopCounterMode); transformers' ViTMAEForPreTraining on the same batch; torch.compile;
            Table 2 (encoder with mask tokens vs MAE, ViT-L, decoder depth 8 and 1)
  cls       ViT-B fine-tuning steps (mixup/cutmix, layer decay, drop path, bf16): img/s, memory
  data      the pre-training loader on generated ImageNet-sized JPEGs (500x375), both data backends (pil; gpu:
            decoded and cropped on the GPU): img/s in all and per worker, CPU ms per image in the
            workers and in the main process
  det       Mask R-CNN ViT-B with the A.3 adapter at 1024 in Detectron2's AMPTrainer: s/iter, memory, loss
  seg       UperNet ViT-B at 512 with mmengine's AmpOptimWrapper (tools/train_seg.py --amp): s/iter, memory, loss
  memory    peak memory of ViT-L/H detection (1 image) and segmentation (2 images, the paper's batch per
            GPU), with and without activation checkpointing

Writes OUT/gpu_check.csv (part, case, metric, value) and OUT/gpu_check.md (one table per part).
"""
import argparse
import contextlib
import csv
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback


from common.cli import resolve_config_path
from pretrain.bench import TINY_MAE  # --quick's MAE

PART_LIMITS_S = {"pretrain": 240, "cls": 50, "data": 120, "det": 100, "seg": 80, "memory": 100}


# -- helpers shared by the parts ------------------------------------------------------------------
class Part:
    """One part's measurements: rows of (case, metric, value), each appended to a JSON-lines file at
    once, so that a part stopped at its time limit keeps what it measured."""

    def __init__(self, name, device, quick, rows_file, options):
        import torch

        self.name, self.quick, self.rows_file, self.options = name, quick, rows_file, options
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.precision = "bf16" if self.cuda else "fp32"

    def add(self, case, metric, value):
        value = round(value, 4) if isinstance(value, float) else value
        with open(self.rows_file, "a") as f:
            f.write(json.dumps(dict(part=self.name, case=case, metric=metric, value=value)) + "\n")
        print(f"[{self.name}] {case}: {metric} = {value}", flush=True)

    def autocast(self):
        """bf16 autocast on the GPU; fp32 in the CPU dry run (bf16 is emulated, ~100x slower, on AVX2 CPUs)."""
        import torch

        return torch.autocast("cuda", dtype=torch.bfloat16) if self.cuda else contextlib.nullcontext()

    @contextlib.contextmanager
    def case(self, name):
        """Runs one case; running out of memory or an error is recorded as its result, and the part goes on."""
        import torch

        try:
            yield
        except torch.OutOfMemoryError:
            self.add(name, "result", "out of memory")
        except Exception as e:  # noqa: BLE001  (one broken case must not cost the others)
            traceback.print_exc()
            self.add(name, "result", f"error: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
        self.reset_memory()

    def sync(self):
        import torch

        if self.cuda:
            torch.cuda.synchronize()

    def reset_memory(self):
        import torch

        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self):
        import torch

        return torch.cuda.max_memory_allocated() / 2**30 if self.cuda else float("nan")

    def timed(self, step, warmup, repeats):
        """Median seconds of `repeats` calls after `warmup` calls."""
        for _ in range(warmup):
            step()
        self.sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            self.sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def peak_flops(self):
        from pretrain.bench import peak_flops

        return peak_flops(self.device)


def largest_batch(part, candidates, try_batch):
    """The first batch size of `candidates` (largest first) whose step runs without running out of memory."""
    import torch

    for batch in candidates:
        try:
            try_batch(batch)
            return batch
        except torch.OutOfMemoryError:
            part.add(f"batch {batch}", "out of memory", "yes")
            part.reset_memory()
    raise RuntimeError(f"no batch of {candidates} fits")


def flops_per_call(fn):
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


# -- pretrain ----------------------------------------------------------------------------------------
def part_pretrain(part):
    import torch
    from pretrain.bench import hf_peer, mae_step

    from pretrain import build_mae

    autocast = part.autocast
    size = 32 if part.quick else 224
    warmup, repeats = (1, 2) if part.quick else (3, 10)
    peak = part.peak_flops()
    models = {"mae_vit_tiny_patch16": [4]} if part.quick else {"mae_vit_base_patch16": [512, 256, 128],
                                                                  "mae_vit_large_patch16": [256, 128, 64]}
    compile_inputs = None
    for name, candidates in models.items():
        with part.case(name):
            model = build_mae(name, norm_pix_loss=True, **(TINY_MAE if part.quick else {})).to(part.device)
            grid = model.grid_size[0] * model.grid_size[1]

            def inputs(b):
                return torch.randn(b, 3, size, size, device=part.device), torch.rand(b, grid, device=part.device)  # noqa: B023

            def try_batch(b):
                part.reset_memory()
                mae_step(model, *inputs(b), autocast)[0]()  # noqa: B023
                part.sync()

            batch = largest_batch(part, candidates, try_batch)
            imgs, noise = inputs(batch)
            for who in ("ours", "transformers ViTMAEForPreTraining"):
                case = f"{name} {who} {part.precision} batch {batch}"
                with part.case(case):
                    m = model if who == "ours" else hf_peer(model, True).to(part.device)
                    part.reset_memory()
                    step, forward_backward = mae_step(m, imgs, noise, autocast, is_hf=who != "ours")
                    seconds = part.timed(step, warmup, repeats)
                    part.add(case, "img/s", batch / seconds)
                    part.add(case, "peak GiB", part.peak_gib())
                    flops = flops_per_call(forward_backward)
                    part.add(case, "TFLOP/step (fwd+bwd)", flops / 1e12)
                    if peak:
                        part.add(case, "MFU %", 100 * flops / seconds / peak)
                    m.zero_grad(set_to_none=True)
                    del m
            if compile_inputs is None:
                compile_inputs = (name, model.state_dict(), imgs, noise)
            model = None  # freed before the next size is built
    with part.case("Table 2"):
        table2(part, autocast, warmup, repeats, part.options.table2_batch)
    # inductor's CPU compile takes minutes: not in the dry run
    if compile_inputs and part.options.compile and (part.cuda or not part.quick):
        with part.case("torch.compile"):
            compile_trial(part, *compile_inputs, autocast, warmup, repeats)


def compile_trial(part, name, state, imgs, noise, autocast, warmup, repeats):
    """torch.compile of the whole MAE: compile time, speed, and the loss of the same batch as eager."""
    import torch
    from pretrain.bench import mae_step

    from pretrain import build_mae

    model = build_mae(name, norm_pix_loss=True, **(TINY_MAE if part.quick else {})).to(part.device)
    model.load_state_dict(state)
    with autocast():
        eager_loss = float(model(imgs, mask_ratio=0.75, noise=noise)[0])
    compiled = torch.compile(model)
    step, _ = mae_step(compiled, imgs, noise, autocast)
    start = time.perf_counter()
    compiled_loss = float(step())  # the loss before this step's update: same weights as the eager one
    part.sync()
    case = f"torch.compile {name} batch {len(imgs)}"
    part.add(case, "compile s (first training step)", time.perf_counter() - start)
    part.add(case, f"loss rel. diff vs eager ({part.precision})", abs(compiled_loss - eager_loss) / abs(eager_loss))
    part.add(case, "img/s", len(imgs) / part.timed(step, warmup, repeats))


def table2(part, autocast, warmup, repeats, batch):
    import torch
    from pretrain.bench import mae_step

    from pretrain import build_mae

    name, batch, size = ("mae_vit_tiny_patch16", 4, 32) if part.quick else ("mae_vit_large_patch16", batch, 224)
    extra = TINY_MAE if part.quick else {}
    seconds = {}
    for mask_token_in_encoder, depth in ((True, 8), (False, 8), (False, 1)):
        model = build_mae(name, norm_pix_loss=True, decoder_depth=depth, encoder_mask_token=mask_token_in_encoder,
                          **extra).to(part.device)
        imgs = torch.randn(batch, 3, size, size, device=part.device)
        noise = torch.rand(batch, model.grid_size[0] * model.grid_size[1], device=part.device)
        case = f"Table 2 {name} {'w/ [M]' if mask_token_in_encoder else 'w/o [M]'} dec{depth} batch {batch}"
        seconds[(mask_token_in_encoder, depth)] = part.timed(mae_step(model, imgs, noise, autocast)[0], warmup, repeats)
        part.add(case, "s/step", seconds[(mask_token_in_encoder, depth)])
        del model
        part.reset_memory()
    for depth, paper in ((8, 2.8), (1, 3.7)):
        part.add(f"Table 2 speed-up w/o [M] dec{depth} vs w/ [M] dec8 (paper {paper}x)", "x",
                 seconds[(True, 8)] / seconds[(False, depth)])


# -- cls ---------------------------------------------------------------------------------------------
def part_cls(part):
    import torch
    from timm.data import Mixup
    from timm.loss import SoftTargetCrossEntropy

    from backbones.param_groups import param_groups
    from cls_transfer.models import build_classifier

    backbone, size, candidates = ("vit_tiny_patch16", 32, [4]) if part.quick else ("vit_base_patch16", 224, [256, 128])
    extra = dict(patch_size=8) if part.quick else {}
    # the fine-tuning recipe (configs/cls/finetune_vit_b.py): drop path 0.1, layer decay 0.65, mixup/cutmix
    model = build_classifier(backbone, 1000, "finetune", size, 0.1, **extra).to(part.device)
    opt = torch.optim.AdamW(param_groups(model, 0.05, 0.65), lr=1e-3, betas=(0.9, 0.999), fused=True)
    mixup = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=1000)
    criterion = SoftTargetCrossEntropy()

    def make_step(batch):
        imgs = torch.randn(batch, 3, size, size, device=part.device)
        labels = torch.randint(0, 1000, (batch,), device=part.device)

        def step():
            x, y = mixup(imgs, labels)
            with part.autocast():
                loss = criterion(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        return step

    batch = largest_batch(part, candidates, lambda b: make_step(b)())
    part.reset_memory()
    seconds = part.timed(make_step(batch), *((1, 2) if part.quick else (3, 10)))
    case = f"{backbone} fine-tune {part.precision} mixup batch {batch}"
    part.add(case, "img/s", batch / seconds)
    part.add(case, "peak GiB", part.peak_gib())


# -- data --------------------------------------------------------------------------------------------
def part_data(part, work):
    """Both data backends' pre-training loaders: pil (workers decode and crop) and gpu (workers read the bytes,
    the part's device decodes and crops)."""
    import torch
    from pretrain.bench import generated_jpegs, loader_images_per_s

    cores = os.cpu_count()
    count, batch = (24, 4) if part.quick else (3000, 64)
    paths = generated_jpegs(os.path.join(work, "jpegs"), count, 500, 375)  # ImageNet-sized
    part.add("generated JPEGs", "mean KiB", sum(os.path.getsize(p) for p in paths) / len(paths) / 1024)
    torch.set_num_threads(1)  # the loader's workers each use one thread, as under DataLoader
    settings = (0, 1) if part.quick else (1, cores - 1)
    for backend, workers in itertools.product(("pil", "gpu"), settings):
        batches = (count // batch - 2) if workers > 1 else max(2, 200 // batch)
        rate, worker_ms, main_ms = loader_images_per_s(paths, batch, workers, batches, backend=backend,
                                                       device=part.device)
        case = f"{backend} loader{f' (decoding on {part.device.type})' if backend == 'gpu' else ''}, " \
               f"{workers} worker(s), {cores} cores"
        part.add(case, "img/s", rate)
        part.add(case, "img/s per worker", rate / max(workers, 1))
        part.add(case, "CPU ms per image, workers", worker_ms)
        part.add(case, "CPU ms per image, main process", main_ms)


# -- det ---------------------------------------------------------------------------------------------
def det_config(name, quick):
    from detectron2.config import LazyConfig

    cfg = LazyConfig.load(resolve_config_path("det/mask_rcnn_vit_tiny.py" if quick else name))
    return cfg


def synthetic_det_batch(count, size, num_classes, device):
    """`count` images of coloured rectangles on noise, with their boxes and masks as Detectron2 inputs."""
    import torch
    from detectron2.structures import BitMasks, Boxes, Instances

    generator = torch.Generator().manual_seed(0)
    batch = []
    for _ in range(count):
        image = torch.randint(0, 60, (3, size, size), dtype=torch.uint8, generator=generator)
        boxes, masks, classes = [], [], []
        for _ in range(5):
            x0, y0 = torch.randint(0, size // 2, (2,), generator=generator).tolist()
            w, h = torch.randint(size // 10, size // 2, (2,), generator=generator).tolist()
            cls = int(torch.randint(0, num_classes, (1,), generator=generator))
            image[:, y0:y0 + h, x0:x0 + w] = torch.tensor([40 + 40 * (cls % 5), 200 - 30 * (cls % 4), 120],
                                                          dtype=torch.uint8)[:, None, None]
            mask = torch.zeros(size, size, dtype=torch.bool)
            mask[y0:y0 + h, x0:x0 + w] = True
            boxes.append([x0, y0, x0 + w, y0 + h])
            masks.append(mask)
            classes.append(cls)
        instances = Instances((size, size), gt_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32)),
                              gt_classes=torch.tensor(classes), gt_masks=BitMasks(torch.stack(masks)))
        batch.append(dict(image=image, height=size, width=size, instances=instances))
    return batch


def det_model(cfg, device, grad_checkpointing=False):
    from detectron2.config import instantiate

    from det.train import vit_node

    vit_node(cfg).grad_checkpointing = grad_checkpointing
    return instantiate(cfg.model).to(device).train()


def part_det(part):
    from detectron2.config import instantiate
    from detectron2.engine import AMPTrainer, SimpleTrainer
    from detectron2.utils.events import EventStorage

    cfg = det_config("det/mask_rcnn_vit_b.py", part.quick)
    size = cfg.model.backbone.square_pad
    images, iters = (2, 6) if part.quick else (4, 40)
    model = det_model(cfg, part.device)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    data = synthetic_det_batch(images, size, cfg.model.roi_heads.num_classes, part.device)
    # Detectron2's AMPTrainer (fp16 + GradScaler) as train.amp.enabled asks; it needs CUDA
    trainer = (AMPTrainer if part.cuda else SimpleTrainer)(model, itertools.repeat(data), optimizer)
    part.reset_memory()
    times = []
    with EventStorage(0) as storage:
        for i in range(iters):
            storage.iter = trainer.iter = i
            start = time.perf_counter()
            trainer.run_step()
            part.sync()
            times.append(time.perf_counter() - start)
            storage.step()
        losses = storage.history("total_loss").values()
    case = f"Mask R-CNN {'tiny' if part.quick else 'ViT-B A.3'} {size}px, {images} images/iter, " \
           f"{'AMPTrainer fp16' if part.cuda else 'SimpleTrainer fp32'}"
    report_training(part, case, times, [loss for loss, _ in losses])


def report_training(part, case, times, losses):
    import math

    skip = min(5, len(times) // 2)
    part.add(case, "s/iter (median after warm-up)", statistics.median(times[skip:]))
    part.add(case, "peak GiB", part.peak_gib())
    head, tail = losses[:3], losses[-3:]
    part.add(case, "loss first 3 iters", sum(head) / len(head))
    part.add(case, "loss last 3 iters", sum(tail) / len(tail))
    part.add(case, "loss finite and falling", "yes" if all(map(math.isfinite, losses)) and
             sum(tail) < sum(head) else "NO")


# -- seg ---------------------------------------------------------------------------------------------
def seg_model_and_optimizer(name, device, amp, grad_checkpointing=False):
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from seg.distributed import use_plain_batchnorm
    from seg.train import apply_amp  # (importing seg registers MAEViT, the neck and the layer-decay constructor)

    cfg = Config.fromfile(resolve_config_path(name))
    init_default_scope("mmseg")
    cfg.model.backbone.grad_checkpointing = grad_checkpointing
    use_plain_batchnorm(cfg.model)  # one process: BN, as train_seg.py
    model = MODELS.build(cfg.model).to(device).train()
    if amp:  # what tools/train_seg.py --amp sets
        apply_amp(cfg)
    return cfg, model, build_optim_wrapper(model, cfg.optim_wrapper)


def synthetic_seg_batch(count, size, num_classes):
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    generator = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(count):
        label = torch.zeros(size, size, dtype=torch.long)
        image = torch.randint(0, 60, (3, size, size), dtype=torch.uint8, generator=generator)
        for cls in range(1, min(num_classes, 8)):
            x0, y0 = torch.randint(0, size // 2, (2,), generator=generator).tolist()
            label[y0:y0 + size // 3, x0:x0 + size // 3] = cls
            image[:, y0:y0 + size // 3, x0:x0 + size // 3] = 30 * cls
        sample = SegDataSample(gt_sem_seg=PixelData(data=label[None]))
        sample.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size)))
        inputs.append(image)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def part_seg(part):
    name = "seg/upernet_vit_tiny.py" if part.quick else "seg/upernet_vit_b.py"
    cfg, model, optim_wrapper = seg_model_and_optimizer(name, part.device, amp=part.cuda)
    size = cfg.crop_size[0]
    images, iters = (2, 6) if part.quick else (2, 40)  # 2 images per GPU: the paper's 16 on 8 GPUs
    data = synthetic_seg_batch(images, size, cfg.num_classes)
    part.reset_memory()
    times, losses = [], []
    for _ in range(iters):
        start = time.perf_counter()
        log_vars = model.train_step(data, optim_wrapper)
        part.sync()
        times.append(time.perf_counter() - start)
        losses.append(float(log_vars["loss"]))
    case = f"UperNet {'tiny' if part.quick else 'ViT-B'} {size}px, {images} images/iter, " \
           f"{'AmpOptimWrapper' if part.cuda else 'OptimWrapper fp32'}"
    report_training(part, case, times, losses)


# -- memory ------------------------------------------------------------------------------------------
def part_memory(part):
    """Peak memory of one training step at the paper's per-GPU batch, ViT-L/H, +- activation checkpointing."""
    import torch
    from detectron2.utils.events import EventStorage

    det_cases = ["det/mask_rcnn_vit_tiny.py"] if part.quick else ["det/mask_rcnn_vit_l.py", "det/mask_rcnn_vit_h.py"]
    seg_cases = ["seg/upernet_vit_tiny.py"] if part.quick else ["seg/upernet_vit_l.py", "seg/upernet_vit_h.py"]
    amp = (lambda: torch.autocast("cuda", dtype=torch.float16)) if part.cuda else contextlib.nullcontext
    for name, checkpointing in itertools.product(det_cases, (False, True)):
        case = f"{os.path.basename(name)} 1 image, activation checkpointing {'on' if checkpointing else 'off'}"
        try:
            cfg = det_config(name, False)
            model = det_model(cfg, part.device, checkpointing)
            data = synthetic_det_batch(1, cfg.model.backbone.square_pad, cfg.model.roi_heads.num_classes, part.device)
            part.reset_memory()
            with EventStorage(0), amp():
                loss = sum(model(data).values())
            loss.backward()
            part.add(case, "peak GiB", part.peak_gib())
        except torch.OutOfMemoryError:
            part.add(case, "peak GiB", "out of memory")
        model = data = loss = None
        part.reset_memory()
    for name, checkpointing in itertools.product(seg_cases, (False, True)):
        case = f"{os.path.basename(name)} 2 images, activation checkpointing {'on' if checkpointing else 'off'}"
        try:
            cfg, model, optim_wrapper = seg_model_and_optimizer(name, part.device, part.cuda, checkpointing)
            data = synthetic_seg_batch(2, cfg.crop_size[0], cfg.num_classes)
            part.reset_memory()
            model.train_step(data, optim_wrapper)
            part.add(case, "peak GiB (incl. AdamW state)", part.peak_gib())
        except torch.OutOfMemoryError:
            part.add(case, "peak GiB (incl. AdamW state)", "out of memory")
        model = optim_wrapper = data = None
        part.reset_memory()


PARTS = {"pretrain": part_pretrain, "cls": part_cls, "data": part_data, "det": part_det, "seg": part_seg,
         "memory": part_memory}


def run_part(args):
    import torch

    if args.device == "cpu" or args.quick:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    torch.manual_seed(0)
    part = Part(args.part, args.device, args.quick, os.path.join(args.work, f"{args.part}.jsonl"), args)
    PARTS[args.part](part, args.work) if args.part == "data" else PARTS[args.part](part)


# -- driver ------------------------------------------------------------------------------------------
def machine_rows(device):
    import torch

    rows = [("torch", torch.__version__), ("cpu cores", os.cpu_count())]
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        rows += [("gpu", props.name), ("gpu memory GiB", round(props.total_memory / 2**30, 1))]
    return [dict(part="machine", case=name, metric="", value=value) for name, value in rows]


def write_report(out, rows):
    with open(os.path.join(out, "gpu_check.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, ("part", "case", "metric", "value"))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["# GPU acceptance run (tools/bench_gpu.py)"]
    for part in dict.fromkeys(row["part"] for row in rows):
        lines += ["", f"## {part}", "", "| case | metric | value |", "|---|---|---:|"]
        lines += [f"| {r['case']} | {r['metric']} | {r['value']} |" for r in rows if r["part"] == part]
    with open(os.path.join(out, "gpu_check.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def loader_workers_needed(rows):
    """Data against the GPU: pil loader workers (one core each) that feed the fastest ViT-B pre-training step
    (the tiny model's in --quick)."""
    def values(part, case_has, metric):
        return [float(r["value"]) for r in rows if r["part"] == part and case_has in r["case"] and r["metric"] == metric
                and str(r["value"]).replace(".", "", 1).isdigit()]

    model = next((m for m in ("mae_vit_base_patch16", "mae_vit_tiny_patch16") if values("pretrain", m, "img/s")), None)
    per_worker = values("data", "pil loader", "img/s per worker")
    if not (model and per_worker):
        return []
    gpu = values("pretrain", model, "img/s")
    case = f"{model} pre-training at {max(gpu):.0f} img/s, {min(per_worker):.0f} img/s per loader worker"
    return [dict(part="data", case=case, metric="workers needed", value=round(max(gpu) / min(per_worker), 1))]


def earlier_rows(out, parts):
    """With --append: the rows of an earlier invocation, less the machine and the parts run again."""
    with contextlib.suppress(FileNotFoundError), open(os.path.join(out, "gpu_check.csv"), newline="") as f:
        return [row for row in csv.DictReader(f) if row["part"] != "machine" and row["part"] not in parts
                and not (row["part"] == "status" and row["case"] in parts) and row["metric"] != "workers needed"]
    return []


def drive(args):
    parts = args.parts.split(",")
    unknown = [name for name in parts if name not in PARTS]
    if unknown:
        sys.exit(f"error: --parts: unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    os.makedirs(args.out, exist_ok=True)
    previous = earlier_rows(args.out, parts) if args.append else []
    statuses, measured = [r for r in previous if r["part"] == "status"], [r for r in previous if r["part"] != "status"]
    with tempfile.TemporaryDirectory() as work:
        for name in parts:
            command = [sys.executable, os.path.abspath(__file__), "--part", name, "--work", work, "--device", args.device,
                       "--table2-batch", str(args.table2_batch)] + (["--quick"] if args.quick else []) + \
                      ([] if args.compile else ["--no-compile"])
            limit = PART_LIMITS_S[name] * (args.time_scale or 1)
            start = time.perf_counter()
            try:
                rc = subprocess.run(command, timeout=limit).returncode
                status = "ok" if rc == 0 else f"FAILED (exit {rc})"
            except subprocess.TimeoutExpired:
                status = f"TIMED OUT after {limit:.0f} s"
            status += f", {time.perf_counter() - start:.0f} s"
            print(f"== part {name}: {status}", flush=True)
            statuses.append(dict(part="status", case=name, metric="", value=status))
            with contextlib.suppress(FileNotFoundError), open(os.path.join(work, f"{name}.jsonl")) as f:
                measured += [json.loads(line) for line in f]
            rows = machine_rows(args.device) + statuses + measured
            write_report(args.out, rows + loader_workers_needed(rows))  # after each part: kept if stopped
    print(f"wrote {os.path.join(args.out, 'gpu_check.csv')} and gpu_check.md")
    return 0 if all(row["value"].startswith("ok") for row in statuses) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="gpu_check")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--quick", action="store_true", help="tiny models and sizes: a dry run of every code path")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--table2-batch", type=int, default=256, help="batch of the Table 2 timings (ViT-L)")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="leave out the torch.compile trial")
    parser.add_argument("--append", action="store_true", help="keep the other parts' rows of an earlier run in --out")
    parser.add_argument("--time-scale", type=float, help="multiply every part's time limit (slow machines)")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:
        return run_part(args)
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
