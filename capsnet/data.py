"""MNIST through torchvision, held as tensors, with the paper's 2-pixel shift augmentation.

`data_dir` may be
- a torchvision root (it holds MNIST/raw/...), downloaded into on first use, or
- a folder holding the four original .gz files (e.g. ../shared/data/mnist): they
  are linked into a staging root and torchvision verifies their MD5s and extracts
  them there, with no network access.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .settings import settings

GZ_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
FALLBACK_DATA_DIR = "data"  # the MNIST folder when $CAPSNET_DATA is unset


def default_data_dir() -> str:
    """$CAPSNET_DATA, else ./data: read when asked for, so importing this module reads no environment."""
    return settings().data_dir or FALLBACK_DATA_DIR


def __getattr__(name: str):
    """`DEFAULT_DATA_DIR` (read by capsnet.cli for the --data-dir default) is default_data_dir() at the moment
    it is imported, no longer frozen when this module is."""
    if name == "DEFAULT_DATA_DIR":
        return default_data_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class MNISTUnavailable(RuntimeError):
    """MNIST could not be found or downloaded; the message says where it looked and what to pass."""


@dataclass
class MNISTSplit:
    images: torch.Tensor  # (N, 28, 28) uint8
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images as float (B,1,28,28) in [0,1] and labels."""
        return self.images[idx].unsqueeze(1).float().div_(255.0), self.labels[idx]


def _staging_root(gz_dir: Path) -> Path:
    """A writable torchvision root whose MNIST/raw links to the .gz files in gz_dir."""
    cache = settings().cache_dir or Path.home() / ".cache" / "capsnet"
    key = hashlib.sha1(str(gz_dir.resolve()).encode()).hexdigest()[:10]
    root = cache / f"mnist-{key}"
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in GZ_FILES:
        link = raw / name
        if not link.exists():
            if link.is_symlink():
                link.unlink()
            link.symlink_to((gz_dir / name).resolve())
    return root


def resolve_root(data_dir: str | os.PathLike) -> Path:
    d = Path(data_dir)
    if all((d / name).is_file() for name in GZ_FILES):
        return _staging_root(d)
    return d


def load_mnist(data_dir: str | os.PathLike | None = None, train: bool = True, download: bool = True) -> MNISTSplit:
    """Load one MNIST split as uint8 tensors (downloading via torchvision when allowed); None: default_data_dir()."""
    from torchvision.datasets import MNIST

    if data_dir is None:
        data_dir = default_data_dir()
    root = resolve_root(data_dir)
    try:
        ds = MNIST(str(root), train=train, download=download)
    except RuntimeError as e:
        raise MNISTUnavailable(
            f"MNIST not found under {data_dir!s}: pass --data-dir with a folder holding the four "
            f"MNIST .gz files or a torchvision MNIST root, or allow the download ({e})"
        ) from None
    return MNISTSplit(ds.data.clone(), ds.targets.clone().long())


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image (B,1,H,W) by up to max_shift pixels in x and y, filling with zeros."""
    if max_shift <= 0:
        return images
    B, C, H, W = images.shape
    p = max_shift
    padded = F.pad(images, (p, p, p, p))
    dy = torch.randint(0, 2 * p + 1, (B,), generator=generator)
    dx = torch.randint(0, 2 * p + 1, (B,), generator=generator)
    rows = (dy[:, None] + torch.arange(H)[None, :]).to(images.device)  # (B, H)
    cols = (dx[:, None] + torch.arange(W)[None, :]).to(images.device)  # (B, W)
    b = torch.arange(B, device=images.device)[:, None, None, None]
    c = torch.arange(C, device=images.device)[None, :, None, None]
    return padded[b, c, rows[:, None, :, None], cols[:, None, None, :]]


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> list[torch.Tensor]:
    """The shuffled index batches of one epoch, a pure function of (seed, epoch, rank) so a resumed run sees the same order.

    With several processes every rank takes every world_size-th index of the one shuffle,
    from position rank, after cutting it to a multiple of world_size so that all ranks run
    the same number of steps; one process gets the whole shuffle.
    """
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g)
    if world_size > 1:
        perm = perm[: n - n % world_size][rank::world_size]
    return list(perm.split(batch_size))


def epoch_generator(seed: int, epoch: int, rank: int = 0) -> torch.Generator:
    """Generator for the augmentation of one epoch on one rank, independent of the shuffle."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch + 7_919 * 1_000_003 + rank * 15_485_863)
