"""Hostile and unusual images for the bad-input tests and the load test (written to a folder, never the repo).

Every function returns bytes or a PIL image; `write_all(folder)` writes the whole set and returns
{name: path}. The bombs are tiny files that declare huge sizes.
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ALL_MODES = ("1", "L", "P", "LA", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "F")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A 70-byte PNG whose header declares width x height (greyscale) with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b"")


def png_bomb(width: int = 50000, height: int = 50000) -> bytes:
    """A real decompression bomb: a valid 1-bit PNG of width x height zeros (50000^2 -> ~300 KB on disk)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    data = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def digit_image(size: int = 112, seed: int = 0) -> Image.Image:
    """A white-on-black '7'-like stroke (L mode); `seed` jitters it."""
    rng = np.random.default_rng(seed)
    im = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(im)
    j = lambda: int(rng.integers(-size // 16, size // 16 + 1))  # noqa: E731
    w = max(2, size // 10)
    d.line([(size * 0.25 + j(), size * 0.2 + j()), (size * 0.75 + j(), size * 0.2 + j())], fill=255, width=w)
    d.line([(size * 0.75 + j(), size * 0.2 + j()), (size * 0.4 + j(), size * 0.85 + j())], fill=255, width=w)
    return im


def in_mode(im: Image.Image, mode: str) -> Image.Image:
    if mode == "I;16":
        return Image.fromarray(np.asarray(im, np.uint16) * 257)
    if mode == "PA":
        return im.convert("P").convert("PA")
    if mode in ("LA", "RGBA"):  # opaque background, stroke in the colour channels
        return im.convert(mode)
    return im.convert(mode)


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def file_for_mode(mode: str) -> tuple[str, bytes]:
    """(file name, bytes) of the digit in `mode`, in a format that keeps the mode (TIFF; JPEG for YCbCr)."""
    im = in_mode(digit_image(), mode)
    if mode == "YCbCr":
        return "digit_YCbCr.jpg", encode(im, "JPEG", quality=95)
    if mode == "HSV":
        return "digit_HSV.png", encode(im.convert("RGB"), "PNG")  # no format stores HSV
    return f"digit_{mode.replace(';', '_')}.tiff", encode(im, "TIFF")


def animated_gif() -> bytes:
    frames = [digit_image(seed=s).convert("P") for s in range(4)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def truncated_png() -> bytes:
    data = encode(Image.fromarray((np.random.default_rng(0).random((200, 200)) * 255).astype(np.uint8)), "PNG")
    return data[: len(data) // 2]


def hostile_files() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, expectation): 'message' (must be refused with a message) or 'any' (message or result)."""
    files: dict[str, tuple[bytes, str]] = {
        "empty.png": (b"", "message"),
        "not_an_image.png": (b"this is not a PNG, just text pretending\n" * 4, "message"),
        "random_bytes.png": (np.random.default_rng(1).bytes(4096), "message"),
        "html.png": (b"<html><script>alert(1)</script></html>", "message"),
        "truncated.png": (truncated_png(), "message"),
        "header_only_50000x50000.png": (png_declaring(50000, 50000), "message"),
        "bomb_50000x50000.png": (png_bomb(50000, 50000), "message"),
        "declares_9500x9500.png": (png_declaring(9500, 9500), "message"),  # between PIL's warning and error
        "huge_10000x10000.png": (encode(Image.new("L", (10000, 10000), 0), "PNG"), "message"),
        "1x1.png": (encode(Image.new("L", (1, 1), 255), "PNG"), "any"),
        "1x1_black.png": (encode(Image.new("L", (1, 1), 0), "PNG"), "any"),
        "1x4000.png": (encode(Image.new("L", (1, 4000), 0), "PNG"), "any"),
        "animated.gif": (animated_gif(), "result"),
        "blank_white.png": (encode(Image.new("RGB", (64, 64), "white"), "PNG"), "message"),
        "transparent.png": (encode(Image.new("RGBA", (64, 64), (0, 0, 0, 0)), "PNG"), "message"),
        "digit.jpg": (encode(digit_image().convert("RGB"), "JPEG"), "result"),
        "digit.webp": (encode(digit_image().convert("RGB"), "WEBP"), "result"),
        "digit.bmp": (encode(digit_image(), "BMP"), "result"),
        "png_named_jpg.jpg": (encode(digit_image(), "PNG"), "result"),
    }
    for mode in ALL_MODES:
        name, data = file_for_mode(mode)
        files[name] = (data, "result")
    return files


def write_all(folder: str | Path) -> dict[str, tuple[Path, str]]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (data, expect) in hostile_files().items():
        p = folder / name
        p.write_bytes(data)
        out[name] = (p, expect)
    return out
