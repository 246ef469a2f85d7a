"""The JSON model card `python -m capsnet.train` writes beside the weights after every epoch: the test results, the
history, the stages that led to the weights, the command, hardware and versions."""
from __future__ import annotations

import os
import platform
import shlex
import sys
from dataclasses import asdict

import torch

PAPER_TEST_ACCURACY = {"capsnet": 0.9975, "cnn": 0.9961}  # the paper's Table 1: CapsNet 0.25% error, baseline 0.39%
MODEL_NAMES = {"capsnet": "CapsNet (Sabour, Frosst & Hinton 2017) on MNIST",
               "cnn": "CNN baseline (Sabour, Frosst & Hinton 2017, section 5, at half width with pooling) on MNIST"}


def hardware(device: torch.device) -> dict:
    info = {
        "device": str(device),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the ISA PyTorch's kernels use: AVX2, AVX512, ...
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def versions() -> dict:
    import safetensors
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "safetensors": safetensors.__version__}


def model_card(cfg, model, state: dict, result: dict, device, argv, world_size: int = 1) -> dict:
    args = argv if argv is not None else sys.argv[1:]
    launcher = f"torchrun --nproc_per_node={world_size} -m capsnet.train" if world_size > 1 else "python -m capsnet.train"
    return {
        "name": MODEL_NAMES[cfg.model],
        "paper_test_accuracy": PAPER_TEST_ACCURACY[cfg.model],
        "epochs_completed": state["epoch"],
        "test_accuracy": result["accuracy"],
        "test_images": result["n"],
        "test_slice_accuracy": result["slice_accuracy"],
        "test_slice": f"first {result['slice_size']} test images",
        "test_reconstruction_sse": result.get("reconstruction_sse"),
        "per_class_accuracy": result["per_class_accuracy"],
        "confusion_matrix": result["confusion_matrix"],
        "misclassified": result["misclassified"],
        "misclassified_predictions": result["misclassified_predictions"],
        "history": state["history"],
        "wall_time_seconds": state["wall_time"],
        "stages": state["stages"] + [{
            "epochs": [state["stage"]["first_epoch"], state["epoch"]],
            "command": launcher + (" " + shlex.join(args) if args else ""),
            "world_size": world_size,
            "init": state["stage"]["init"],
            "ema_decay": cfg.ema_decay,
            "wall_time_seconds": state["stage"]["wall_time"],
            "hardware": hardware(device),
            "training": {k: v for k, v in asdict(cfg).items() if k not in ("progress", "resume")},
        }],
        "selection": f"the last epoch of the fixed schedule ({cfg.epochs} epochs); the test set only reports",
        "config": model.config.to_dict(),
        "training": {k: v for k, v in asdict(cfg).items() if k not in ("progress", "resume")},
        "command": launcher + (" " + shlex.join(args) if args else ""),
        "world_size": world_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "hardware": hardware(device),
        "versions": versions(),
        "weights": ("trained by this repository's capsnet.train, from scratch or continuing its own earlier stages (see stages); "
                    "no external weights") + ("; the shipped weights are an exponential moving average of the trained ones"
                                             if cfg.ema_decay else ""),
    }
