"""The decoder's weights for clients that run it themselves (the explorer's browser-side pose sliders).

The file is safetensors (an 8-byte header length, a JSON header, then raw little-endian float32), laid out
for the client's loops rather than torch's: every weight matrix is stored input-major, (in, out), so that
the 16 inputs a masked pose leaves non-zero, and the hidden units a ReLU leaves non-zero, each select one
contiguous row.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import torch

from .model import CapsNet

FORMAT = "capsnet-decoder/1"


def decoder_tensors(model: CapsNet) -> dict[str, torch.Tensor]:
    """{"w1", "b1", "w2", "b2", "w3", "b3"}: the three Linear layers, weights transposed to (in, out), float32."""
    linears = [m for m in model.decoder if isinstance(m, torch.nn.Linear)]
    if len(linears) != 3:
        raise ValueError(f"expected a decoder of 3 Linear layers, found {len(linears)}")
    out = {}
    for i, layer in enumerate(linears, start=1):
        out[f"w{i}"] = layer.weight.detach().t().contiguous().float().cpu()
        out[f"b{i}"] = layer.bias.detach().contiguous().float().cpu()
    return out


def decoder_bytes(model: CapsNet) -> bytes:
    """The decoder file's contents, byte-for-byte the same for the same weights (safetensors' own writer orders
    the metadata differently from run to run, so the header is written here, keys sorted)."""
    cfg = model.config
    meta = {
        "format": FORMAT,
        "num_classes": str(cfg.num_classes),
        "digit_dim": str(cfg.digit_dim),
        "image_size": str(cfg.image_size),
        "layout": "w_i is (in, out); input of layer 1 = class * digit_dim + pose dimension; relu, relu, sigmoid",
    }
    header: dict = {"__metadata__": meta}
    blobs, offset = [], 0
    for name, t in sorted(decoder_tensors(model).items()):
        data = t.numpy().astype("<f4", copy=False).tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, so typed-array views need no copy
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def export_decoder(model: CapsNet, folder: str | os.PathLike) -> Path:
    """Write the decoder file into `folder` as decoder-<content hash>.safetensors (once) and return its path.

    The name changes whenever the weights do, so browsers may cache it forever.
    """
    data = decoder_bytes(model)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"decoder-{hashlib.sha256(data).hexdigest()[:16]}.safetensors"
    if not (path.exists() and path.stat().st_size == len(data)):
        from .checkpoint import atomic_write

        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path


def read_decoder_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a decoder file (for checks; clients parse it themselves)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


__all__ = ["FORMAT", "decoder_bytes", "decoder_tensors", "export_decoder", "read_decoder_file"]
