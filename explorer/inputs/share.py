"""Share links: the 28x28 model input, the selected digit capsule, its pose edits and the open view in a URL's
query string.

`?in=<base64url of the zlib-compressed 784 bytes>&k=<0-9>&p=<16 pose values>&tab=<tab id>` (`tab`, not `view`,
which embeds one view): a drawn digit compresses to 200-500 bytes and a pose is 16 numbers of at most 3 decimals,
so links stay well under 2,000 characters (`MAX_LINK`). static/links.js writes the link's `in`, `k` and `p` into
the page's share input once the opening example is shown; `decode_input` and `decode_pose` check them before
anything is decompressed and refuse in one sentence (`ShareError`): too long, not base64url, not zlib, not 784
bytes (decompression stops at 785), blank; not 16 finite numbers within the sliders' range.
"""
from __future__ import annotations

import base64
import binascii
import re
import zlib

import numpy as np

SIZE = 28
MAX_LINK = 2000  # characters in the whole query string
MAX_INPUT = 1600  # characters of the `in` parameter: 784 bytes compress to far fewer, even as noise
POSE_DIM = 16
POSE_LIMIT = 1.0  # the Pose tab's sliders run from -1 to 1
MAX_POSE = POSE_DIM * 8  # characters of the `p` parameter: "-0.123," per value
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
BAD_LINK = "That share link is damaged ({why}); showing the opening example instead."


class ShareError(ValueError):
    """A share link that cannot be restored; the message is one sentence for the visitor."""


def encode_input(pixels: np.ndarray) -> str:
    """A (28, 28) uint8 model input as the `in` parameter."""
    data = np.ascontiguousarray(pixels, np.uint8).reshape(SIZE * SIZE).tobytes()
    return base64.urlsafe_b64encode(zlib.compress(data, 9)).decode("ascii").rstrip("=")


def encode_pose(pose) -> str:
    """16 pose values as the `p` parameter: at most 3 decimals, no trailing zeros ("0.37,-0.1,0,...")."""
    def number(v) -> str:
        text = f"{round(float(v), 3) + 0.0:.3f}".rstrip("0").rstrip(".")  # (+ 0.0: no "-0")
        return text if text not in ("", "-0") else "0"

    return ",".join(number(v) for v in pose)


def share_query(pixels: np.ndarray, digit_class: int | None, view: str | None, pose=None) -> str:
    """The query string ("?in=...&k=...&p=...&tab=...") of a link to this input, capsule, pose and view."""
    query = f"?in={encode_input(pixels)}"
    if digit_class is not None:
        query += f"&k={int(digit_class)}"
    if pose is not None:
        query += f"&p={encode_pose(pose)}"
    if view:
        query += f"&tab={view}"
    return query


def decode_pose(text: object) -> tuple[float, ...]:
    """The `p` parameter back to 16 floats in [-1, 1]; ShareError otherwise."""
    if not isinstance(text, str) or len(text) > MAX_POSE:
        raise ShareError(BAD_LINK.format(why=f"its pose is not {POSE_DIM} numbers"))
    parts = text.split(",")
    try:
        values = tuple(float(v) for v in parts)
    except ValueError:
        values = ()
    if len(parts) != POSE_DIM or len(values) != POSE_DIM:
        raise ShareError(BAD_LINK.format(why=f"its pose is not {POSE_DIM} numbers"))
    if not all(np.isfinite(values)) or max(abs(v) for v in values) > POSE_LIMIT:
        raise ShareError(BAD_LINK.format(why=f"its pose has values outside -{POSE_LIMIT:g} to {POSE_LIMIT:g}"))
    return values


def decode_input(text: object) -> np.ndarray:
    """The `in` parameter back to a (1, 28, 28) float32 array in [0, 1]; ShareError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ShareError(BAD_LINK.format(why="no input in it"))
    text = text.strip()
    if len(text) > MAX_INPUT:
        raise ShareError(BAD_LINK.format(why=f"its input is {len(text)} characters, at most {MAX_INPUT}"))
    if not _B64URL.match(text):
        raise ShareError(BAD_LINK.format(why="its input is not base64url text"))
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        inflater = zlib.decompressobj()
        data = inflater.decompress(packed, SIZE * SIZE + 1)
    except (binascii.Error, ValueError, zlib.error):
        raise ShareError(BAD_LINK.format(why="its input is not a compressed image")) from None
    if len(data) != SIZE * SIZE or inflater.unconsumed_tail:
        raise ShareError(BAD_LINK.format(why=f"its input is not {SIZE}x{SIZE} pixels"))
    pixels = np.frombuffer(data, np.uint8).reshape(1, SIZE, SIZE).astype(np.float32) / 255.0
    if pixels.max() < 0.1:
        raise ShareError(BAD_LINK.format(why="its input is blank"))
    return pixels
