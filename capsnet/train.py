"""Train CapsNet on MNIST: `python -m capsnet.train` (defaults reproduce the shipped checkpoint).

Each epoch ends with a test evaluation and three atomic writes: the resume state
(<out stem>.resume.safetensors: weights, Adam moments, history), the weights and
the JSON model card. `--resume` picks up after the last finished epoch; shuffling
and augmentation are pure functions of (seed, epoch, rank), so a resumed run reaches
the same weights as an uninterrupted one.

`--model cnn` trains the CNN baseline (capsnet/baseline.py) instead, on the same data with the same shifts,
evaluation and checkpoint writes, into checkpoints/cnn.safetensors.

`torchrun --nproc_per_node=N -m capsnet.train ...` trains one job in N processes
(DistributedDataParallel; gloo on CPU, NCCL on CUDA): --batch-size and --lr are for
the global batch, which is split evenly across the processes, and only rank 0
evaluates and writes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .checkpoint import (
    CheckpointError,
    atomic_write_json,
    card_path,
    load_checkpoint,
    load_model_card,
    load_tensors,
    model_from_tensors,
    resume_path,
    save_tensors,
    save_weights,
)
from . import distributed
from .baseline import CNN_FORMAT, BaselineCNN, cnn_from_tensors, load_pretrained_cnn, save_cnn
from .data import (MNISTSplit, MNISTUnavailable, default_data_dir, epoch_batches, epoch_generator, load_mnist,
                   random_shift)
from .evaluate import evaluate
from .losses import capsule_loss, reconstruction_sse
from .card import model_card
from .model import CapsNet, CapsNetConfig, conv_memory_format

MODELS = ("capsnet", "cnn")
DEFAULT_OUT = {"capsnet": "checkpoints/capsnet.safetensors", "cnn": "checkpoints/cnn.safetensors"}


@dataclass
class TrainConfig:
    model: str = "capsnet"  # or "cnn": the baseline of capsnet/baseline.py
    epochs: int = 15
    batch_size: int = 100
    lr: float = 1e-3
    lr_decay: float = 0.88  # learning rate x lr_decay after every epoch
    routing_iterations: int = 3
    max_shift: int = 2  # pixels of random shift, zero padded
    seed: int = 0
    device: str = "auto"
    data_dir: str = field(default_factory=default_data_dir)  # $CAPSNET_DATA read per config, not at import
    out: str = ""  # "" = DEFAULT_OUT[model]
    resume: bool = False
    init_from: str = ""  # start from these weights (fresh Adam); the epoch count and lr schedule continue from theirs
    lr_restart: bool = False  # with init_from: this stage's lr schedule starts again at lr (a warm restart)
    ema_decay: float = 0.0  # 0 = off; else evaluate and ship an exponential moving average of the weights
    train_limit: int = 0  # 0 = all 60,000 training images (smaller only for tests)
    test_limit: int = 0  # 0 = all 10,000 test images
    progress: bool = True
    bf16: bool = False  # bf16 autocast for the convolutions and the decoder (routing and losses stay float32)
    compile: bool = False  # torch.compile the training forward


class TrainError(RuntimeError):
    pass


def pick_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def preflight(out: Path, model: CapsNet) -> None:
    """Fail in seconds, not hours: the output folder must be writable and have room for the checkpoints."""
    folder = out.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".capsnet-write-test-{os.getpid()}"
        probe.write_bytes(b"x" * 4096)
        probe.unlink()
    except OSError as e:
        raise TrainError(f"cannot write checkpoints to {folder}: {e.strerror or e}; choose another --out") from None
    for name in (out.name, resume_path(out).name, card_path(out).name):  # half-written files of a killed run
        for stale in folder.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    need = param_bytes * 6  # weights + resume state (weights and two Adam moments), each written beside the old one
    free = shutil.disk_usage(folder).free
    if free < need:
        raise TrainError(
            f"only {free / 2**20:.0f} MiB free in {folder}, checkpoints need about {need / 2**20:.0f} MiB; "
            "free some space or choose another --out"
        )


def save_resume_state(path: Path, model: CapsNet, opt: torch.optim.Optimizer, state: dict,
                      ema: AveragedModel | None = None) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not None:  # the averaged CapsNet's weights, keyed as the model's (its step count is not needed)
        tensors.update({f"ema.{k}": v for k, v in ema.module.state_dict().items()})
    sd = opt.state_dict()
    for pid, st in sd["state"].items():
        for name, t in st.items():
            tensors[f"optim.{pid}.{name}"] = t if torch.is_tensor(t) else torch.tensor(t)
    meta = {"state": json.dumps(state), "param_groups": json.dumps(sd["param_groups"]),
            "config": json.dumps(model.config.to_dict()), "model": model_kind(model)}
    save_tensors(path, tensors, meta)


def model_kind(model) -> str:
    return "cnn" if isinstance(model, BaselineCNN) else "capsnet"


def new_model(cfg: "TrainConfig"):
    if cfg.model == "cnn":
        return BaselineCNN()
    return CapsNet(CapsNetConfig(routing_iterations=cfg.routing_iterations))


def load_resume_state(path: Path, opt_factory, kind: str = "capsnet") -> tuple:
    tensors, meta = load_tensors(path)
    if meta.get("model", "capsnet") != kind:
        raise TrainError(f"{path} resumes a {meta.get('model', 'capsnet')} run, not --model {kind}; "
                         "choose another --out or drop --resume")
    weights = {"config": meta.get("config", "{}"), "format": CNN_FORMAT}
    rebuild = cnn_from_tensors if kind == "cnn" else model_from_tensors
    model_t = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    model = rebuild(model_t, weights, path)
    ema_t = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
    ema = rebuild(ema_t, weights, path) if ema_t else None
    opt = opt_factory(model)
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    return model, opt, json.loads(meta["state"]), ema


def init_state(init_from: str, kind: str = "capsnet") -> tuple:
    """Weights to continue from, and the state they reached: epochs done, history and stages from their model card."""
    model = load_pretrained_cnn(init_from).train() if kind == "cnn" else load_checkpoint(init_from)
    card = load_model_card(init_from) or {}
    from safetensors import safe_open

    with safe_open(init_from, framework="pt") as f:
        epoch = int((f.metadata() or {}).get("epoch", card.get("epochs_completed", 0)))
    stages = card.get("stages") or [{
        "epochs": [1, epoch], "command": card.get("command"), "init": "from scratch",
        "wall_time_seconds": card.get("wall_time_seconds"), "hardware": card.get("hardware"),
        "training": card.get("training"),
    }]
    return model, {"epoch": epoch, "history": list(card.get("history", []))[:epoch],
                   "wall_time": float(card.get("wall_time_seconds") or 0.0), "stages": stages}


def weight_average(start: CapsNet, decay: float, device: torch.device) -> AveragedModel:
    """An exponential moving average of the weights (buffers are not averaged), starting at `start`'s: the weights
    training starts from, or the average a resumed run saved. They count as its first sample, so the first step
    already averages (W_ema = decay W_ema + (1 - decay) W) where AveragedModel would copy the new weights. Its step
    count stays on the CPU: AveragedModel reads it at every update, which on a GPU would wait for the step to end."""
    ema = AveragedModel(start.to(device), multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)
    ema.n_averaged.fill_(1)
    return ema.requires_grad_(False)


def train_one_epoch(model, opt, train: MNISTSplit, cfg: TrainConfig, epoch: int, device, ema=None,
                    world: distributed.World = distributed.World(), net=None) -> dict:
    """One epoch on this rank's shard; `net` is what runs the forward (model itself, or its DDP/compiled wrapper)."""
    net = model if net is None else net
    model.train()
    gen = epoch_generator(cfg.seed, epoch, world.rank)
    batches = epoch_batches(len(train), cfg.batch_size // world.size, cfg.seed, epoch, world.rank, world.size)
    tot_loss = tot_correct = tot_sse = seen = 0.0
    cuda = device.type == "cuda"
    bar = None
    if cfg.progress and world.is_main:
        from tqdm import tqdm

        bar = tqdm(total=len(train), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="img", dynamic_ncols=True,
                   file=sys.stderr, mininterval=2.0)
    for idx in batches:
        x, y = train.batch(idx)
        x = random_shift(x, cfg.max_shift, gen)
        if cuda:  # page-locked staging lets the copy overlap the previous step's kernels
            x, y = x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        else:
            x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            loss, predictions, sse = step_loss(net, x, y, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update_parameters(model)
        b = len(idx)
        seen += b
        tot_loss += loss.item() * b
        tot_correct += (predictions == y).sum().item()
        tot_sse += sse.sum().item() if sse is not None else 0.0
        if bar is not None:
            bar.update(b * world.size)
            bar.set_postfix(loss=f"{tot_loss / seen:.4f}", acc=f"{100 * tot_correct / seen:.2f}%", refresh=False)
    if bar is not None:
        bar.close()
    tot_loss, tot_correct, tot_sse, seen = distributed.sum_across([tot_loss, tot_correct, tot_sse, seen], world, device)
    stats = {"loss": tot_loss / seen, "train_accuracy": tot_correct / seen}
    if cfg.model == "capsnet":
        stats["train_reconstruction_sse"] = tot_sse / seen
    if world.distributed:  # which images each rank trained on, to show the shards differ
        stats["rank_shards"] = distributed.gather_strings(distributed.digest(torch.cat(batches)), world)
    return stats


def step_loss(net, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> tuple:
    """(loss, predictions, per-image reconstruction SSE or None): the paper's margin + reconstruction loss for the
    CapsNet, cross entropy for the CNN baseline (which has no decoder)."""
    if cfg.model == "cnn":
        logits = net(x)
        return F.cross_entropy(logits, y), logits.argmax(1), None
    out = net(x, y, routing_iterations=cfg.routing_iterations)
    return capsule_loss(out, x, y), out.predictions, reconstruction_sse(out.reconstructions.detach(), x)


def run(cfg: TrainConfig, argv: list[str] | None = None) -> dict:
    world = distributed.world_from_env()
    device = pick_device(cfg.device)
    if world.distributed and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if cfg.batch_size % world.size:
        raise TrainError(f"--batch-size {cfg.batch_size} is the global batch and must split evenly across "
                         f"{world.size} processes")
    distributed.init(world, device)
    try:
        return _run(cfg, argv, world, device)
    finally:
        distributed.shutdown()


def _start(cfg: TrainConfig, world: distributed.World, device: torch.device, state_path: Path):
    """(model, optimizer, state, weight average or None): resumed, started from --init-from, or new."""
    def make_opt(m):
        return torch.optim.Adam(m.parameters(), lr=cfg.lr)

    say = (lambda text: print(text, file=sys.stderr)) if world.is_main else (lambda text: None)
    ema = None
    if cfg.resume and state_path.exists():
        model, opt, state, ema = load_resume_state(state_path, make_opt, cfg.model)
        model.to(device)
        say(f"resuming after epoch {state['epoch']} from {state_path}")
    else:
        if cfg.resume:
            say(f"no resume state at {state_path}; starting from scratch")
        if cfg.init_from:
            model, state = init_state(cfg.init_from, cfg.model)
            say(f"starting from {cfg.init_from} after its epoch {state['epoch']}, with a fresh optimizer")
        else:
            model = new_model(cfg)
            state = {"epoch": 0, "history": [], "wall_time": 0.0}
        opt = make_opt(model.to(device))
    if cfg.ema_decay or ema is not None:
        ema = weight_average(model if ema is None else ema, cfg.ema_decay, device)
    state.setdefault("stages", [])  # earlier stages (a run started with --init-from continues one)
    state.setdefault("stage", {"first_epoch": state["epoch"] + 1, "init": cfg.init_from or "from scratch",
                               "wall_time": 0.0})
    return model, opt, state, ema


def _splits(cfg: TrainConfig) -> tuple[MNISTSplit, MNISTSplit]:
    """MNIST's training and test sets, cut to --train-limit / --test-limit."""
    train = load_mnist(cfg.data_dir, train=True)
    test = load_mnist(cfg.data_dir, train=False)
    if cfg.train_limit:
        train = MNISTSplit(train.images[: cfg.train_limit], train.labels[: cfg.train_limit])
    if cfg.test_limit:
        test = MNISTSplit(test.images[: cfg.test_limit], test.labels[: cfg.test_limit])
    return train, test


def _write_epoch(out: Path, state_path: Path, model, opt, state: dict, ema, shipped, card: dict, cnn: bool) -> None:
    """The resume state, the weights and the model card of a finished epoch, each written atomically."""
    epoch, accuracy = state["epoch"], state["history"][-1]["test_accuracy"]
    try:
        save_resume_state(state_path, model, opt, state, ema)
        (save_cnn if cnn else save_weights)(out, shipped, {"epoch": str(epoch), "test_accuracy": f"{accuracy:.6f}"})
        atomic_write_json(card_path(out), card)
    except OSError as e:
        raise TrainError(
            f"could not write the epoch {epoch} checkpoint to {out.parent} ({e.strerror or e}); the files of "
            "the last finished epoch are intact: free space or fix the folder, then rerun with --resume"
        ) from None


def _run(cfg: TrainConfig, argv: list[str] | None, world: distributed.World, device: torch.device) -> dict:
    out = Path(cfg.out or DEFAULT_OUT[cfg.model])
    state_path = resume_path(out)
    torch.manual_seed(cfg.seed)
    model, opt, state, ema = _start(cfg, world, device, state_path)
    shipped = model if ema is None else ema.module  # what is evaluated and written as the weights
    if device.type == "cuda" and cfg.model == "capsnet":
        model.to_memory_format(conv_memory_format(device))
    if world.is_main:
        preflight(out, model)
    net = model
    if world.distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)
    train, test = _splits(cfg)

    result = None
    for epoch in range(state["epoch"], cfg.epochs):
        t0 = time.perf_counter()
        lr = cfg.lr * cfg.lr_decay**(epoch - (state["stage"]["first_epoch"] - 1 if cfg.lr_restart else 0))
        for g in opt.param_groups:
            g["lr"] = lr
        stats = train_one_epoch(model, opt, train, cfg, epoch, device, ema, world, net)
        train_time = time.perf_counter() - t0
        state["epoch"] = epoch + 1
        if not world.is_main:  # rank 0 evaluates and writes; the others wait for it before the next epoch
            distributed.barrier(world)
            continue
        result = evaluate(shipped, test, routing_iterations=cfg.routing_iterations, device=device)
        seconds = time.perf_counter() - t0
        state["history"].append({
            "epoch": epoch + 1, "lr": lr, **stats,
            "test_accuracy": result["accuracy"], "test_reconstruction_sse": result.get("reconstruction_sse"),
            "seconds": seconds, "train_images_per_second": (len(train) - len(train) % world.size) / train_time,
        })
        state["wall_time"] += seconds
        state["stage"]["wall_time"] += seconds
        _write_epoch(out, state_path, model, opt, state, ema, shipped,
                     model_card(cfg, shipped, state, result, device, argv, world.size), cfg.model == "cnn")
        recon = f"recon SSE {result['reconstruction_sse']:.2f}  " if "reconstruction_sse" in result else ""
        print(f"epoch {epoch + 1}/{cfg.epochs}: loss {stats['loss']:.4f}  train acc {100 * stats['train_accuracy']:.2f}%  "
              f"test acc {100 * result['accuracy']:.2f}%  {recon}({seconds:.0f}s)", file=sys.stderr, flush=True)
        distributed.barrier(world)
    if result is None and world.is_main:
        print(f"nothing to do: {state['epoch']} of {cfg.epochs} epochs already done", file=sys.stderr)
    return state


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    d = TrainConfig()
    ap = argparse.ArgumentParser(prog="python -m capsnet.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=MODELS, default=d.model,
                    help="capsnet (default) or cnn: the CNN baseline of capsnet/baseline.py, trained the same way")
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--batch-size", type=int, default=d.batch_size,
                    help="global batch; under torchrun it is split evenly across the processes")
    ap.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate, for the global batch")
    ap.add_argument("--lr-decay", type=float, default=d.lr_decay, help="learning-rate factor per epoch")
    ap.add_argument("--routing-iterations", type=int, default=d.routing_iterations)
    ap.add_argument("--max-shift", type=int, default=d.max_shift, help="augmentation: random shift in pixels")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--device", default=d.device, help="auto (cuda, then mps, then cpu), or a torch device")
    ap.add_argument("--data-dir", default=d.data_dir, help="MNIST: torchvision root (downloaded if missing) or a folder with the four .gz files")
    ap.add_argument("--out", default=d.out, help="weights file; the model card and resume state go beside it "
                    "(default: checkpoints/capsnet.safetensors, or checkpoints/cnn.safetensors with --model cnn)")
    ap.add_argument("--resume", action="store_true", help="continue after the last finished epoch")
    ap.add_argument("--init-from", default="", metavar="WEIGHTS",
                    help="continue from these weights with a fresh Adam; epochs and the lr schedule go on from the "
                         "epoch recorded in them, and the model card keeps their stages")
    ap.add_argument("--lr-restart", action="store_true",
                    help="with --init-from: start this stage's lr schedule again at --lr (a warm restart) instead of "
                         "continuing it from the recorded epoch")
    ap.add_argument("--ema-decay", type=float, default=d.ema_decay,
                    help="0 = off; else evaluate and write an exponential moving average of the weights (e.g. 0.999)")
    ap.add_argument("--train-limit", type=int, default=0, help="use only the first N training images")
    ap.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test images")
    ap.add_argument("--no-progress", dest="progress", action="store_false")
    ap.add_argument("--bf16", action="store_true",
                    help="bf16 autocast for the convolutions and the decoder, routing and losses in float32 "
                         "(for CUDA GPUs; CPUs without bf16 hardware get slower)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the training forward (minutes of compiling first)")
    ns = ap.parse_args(argv)
    return TrainConfig(**{f.name: getattr(ns, f.name) for f in fields(TrainConfig)})


def use_huge_pages() -> None:
    """PyTorch puts CPU tensors of 2 MB and more on transparent huge pages under THP_MEM_ALLOC_ENABLE=1 (=0 turns it
    off). A training step allocates several 40-80 MB temporaries, and faulting them in 4 KB pages took about half of
    the time spent on them (1.2-1.3x more training images/s on a 2-core AVX2 EPYC). Set by the trainer's entry, not
    at import, so the web server and other importers keep PyTorch's default: c10 reads it once, at the process's
    first CPU allocation, and importing torch and capsnet allocates none."""
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def main(argv: list[str] | None = None) -> int:
    use_huge_pages()  # before any tensor exists
    argv = sys.argv[1:] if argv is None else argv
    cfg = parse_args(argv)
    try:
        run(cfg, argv)
    except (TrainError, CheckpointError, MNISTUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
