"""What the checkpoint tools share (`python -m capsnet.evaluate`, `.equivariance`, `.atlas`, `.typicality`): one
argparse parent parser, so that their names, defaults and help cannot drift apart, and loading the model with the
MNIST test set."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def checkpoint_flags() -> argparse.ArgumentParser:
    """--checkpoint and --data-dir, for `argparse.ArgumentParser(parents=[checkpoint_flags()])`: a new one per tool
    (a parent's actions are shared with the parsers built on it), with --data-dir's default taken then."""
    from .data import DEFAULT_DATA_DIR

    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("--checkpoint", default=None, help="weights (.safetensors); default: the shipped checkpoint")
    flags.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="MNIST folder (torchvision root or the four .gz files)")
    return flags


def model_and_test_set(checkpoint, data_dir):
    """(weights path, pretrained model, MNIST test split) for the flags above, or None after printing why not to
    stderr in one sentence (the tool then exits with 2)."""
    from .checkpoint import CheckpointError, default_checkpoint, load_pretrained
    from .data import MNISTUnavailable, load_mnist

    weights = Path(checkpoint) if checkpoint else default_checkpoint()
    try:
        return weights, load_pretrained(weights), load_mnist(data_dir, train=False)
    except (CheckpointError, MNISTUnavailable) as e:
        print(error_line(e), file=sys.stderr)
        return None


def error_line(e: Exception) -> str:
    """"error: <message>" on one line: torchvision's download error spans several."""
    return "error: " + " ".join(str(e).split())


def store_in_card(weights, **sections) -> int:
    """Add the tool's `sections` to the model card beside `weights`: 0, or 2 after saying why not in one sentence."""
    from .checkpoint import CheckpointError, update_model_card

    try:
        update_model_card(weights, **sections)
    except (CheckpointError, OSError) as e:
        print(f"error: could not update the model card: {e}", file=sys.stderr)
        return 2
    print(f"stored {', '.join(sections)} in the model card beside {weights}")
    return 0
