"""The flags the checkpoint tools share (`python -m capsnet.evaluate`, `.equivariance`, `.dimensions`): one
argparse parent parser, so that their names, defaults and help cannot drift apart."""
from __future__ import annotations

import argparse


def checkpoint_flags() -> argparse.ArgumentParser:
    """--checkpoint and --data-dir, for `argparse.ArgumentParser(parents=[checkpoint_flags()])`: a new one per tool
    (a parent's actions are shared with the parsers built on it), with --data-dir's default taken then."""
    from .data import DEFAULT_DATA_DIR

    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("--checkpoint", default=None, help="weights (.safetensors); default: the shipped checkpoint")
    flags.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="MNIST folder (torchvision root or the four .gz files)")
    return flags
