"""Share links: the 28x28 model input, the selected digit capsule, its pose edits, the open view and that view's
settings in a URL's query string.

`?in=<base64url of the zlib-compressed 784 bytes>&k=<0-9>&p=<16 pose values>&tab=<tab id>&<setting>=<value>...`
(`tab`, not `view`, which embeds one view): a drawn digit compresses to 200-500 bytes, a pose is 16 numbers of at
most 3 decimals and the open view's few settings are short words and numbers, so links stay well under 2,000
characters (`MAX_LINK`). static/links.js writes the link's fields into the page's share input once the opening
example is shown; `decode_input`, `decode_pose` and `decode_settings` check them before anything is decompressed
and refuse in one sentence (`ShareError`): too long, not base64url, not zlib, not 784 bytes (decompression stops at
785), blank; not 16 finite numbers within the sliders' range; a setting its codec (`Whole`, `Decimal`, `Choice`,
`Wholes`) does not accept, or given twice.
"""
from __future__ import annotations

import base64
import binascii
import re
import zlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..text import tr

SIZE = 28
MAX_LINK = 2000  # characters in the whole query string
MAX_INPUT = 1600  # characters of the `in` parameter: 784 bytes compress to far fewer, even as noise
POSE_DIM = 16
POSE_LIMIT = 1.0  # the Pose tab's sliders run from -1 to 1
MAX_POSE = POSE_DIM * 8  # characters of the `p` parameter: "-0.123," per value
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
BAD_LINK = "That share link is damaged ({why}); showing the opening example instead."
LINK_FIELDS = ("in", "k", "p", "tab", "view", "lang")  # a view's settings take other names
MAX_SETTINGS = 6  # per view: with LINK_FIELDS, the most fields a link is parsed for
MAX_SETTING = 40  # characters of one setting's value
BAD_SETTING = "That share link's {clauses}; showing the default instead."
BAD_SETTINGS = "That share link's {clauses}; showing the defaults instead."


class ShareError(ValueError):
    """A share link that cannot be restored; the message is one sentence for the visitor."""


def encode_input(pixels: np.ndarray) -> str:
    """A (28, 28) uint8 model input as the `in` parameter."""
    data = np.ascontiguousarray(pixels, np.uint8).reshape(SIZE * SIZE).tobytes()
    return base64.urlsafe_b64encode(zlib.compress(data, 9)).decode("ascii").rstrip("=")


def _number(v) -> str:
    """A number with at most 3 decimals and no trailing zeros ("0.37", "-0.1", "0")."""
    text = f"{round(float(v), 3) + 0.0:.3f}".rstrip("0").rstrip(".")  # (+ 0.0: no "-0")
    return text if text not in ("", "-0") else "0"


def encode_pose(pose) -> str:
    """16 pose values as the `p` parameter: at most 3 decimals, no trailing zeros ("0.37,-0.1,0,...")."""
    return ",".join(_number(v) for v in pose)


def share_query(pixels: np.ndarray, digit_class: int | None, view: str | None, pose=None,
                settings: Sequence[tuple[str, str]] = ()) -> str:  # fmt: skip
    """The query string ("?in=...&k=...&p=...&tab=...&it=2") of a link to this input, capsule, pose and view, with
    the view's encoded settings (name, text) after it."""
    query = f"?in={encode_input(pixels)}"
    if digit_class is not None:
        query += f"&k={int(digit_class)}"
    if pose is not None:
        query += f"&p={encode_pose(pose)}"
    if view:
        query += f"&tab={view}"
    return query + "".join(f"&{name}={text}" for name, text in settings)


def decode_pose(text: object) -> tuple[float, ...]:
    """The `p` parameter back to 16 floats in [-1, 1]; ShareError otherwise."""
    if not isinstance(text, str) or len(text) > MAX_POSE:
        raise ShareError(tr(BAD_LINK, why=tr("its pose is not {n} numbers", n=POSE_DIM)))
    parts = text.split(",")
    try:
        values = tuple(float(v) for v in parts)
    except ValueError:
        values = ()
    if len(parts) != POSE_DIM or len(values) != POSE_DIM:
        raise ShareError(tr(BAD_LINK, why=tr("its pose is not {n} numbers", n=POSE_DIM)))
    if not all(np.isfinite(values)) or max(abs(v) for v in values) > POSE_LIMIT:
        raise ShareError(tr(BAD_LINK, why=tr("its pose has values outside -{limit:g} to {limit:g}", limit=POSE_LIMIT)))
    return values


def decode_input(text: object) -> np.ndarray:
    """The `in` parameter back to a (1, 28, 28) float32 array in [0, 1]; ShareError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ShareError(tr(BAD_LINK, why=tr("no input in it")))
    text = text.strip()
    if len(text) > MAX_INPUT:
        why = tr("its input is {n} characters, at most {limit}", n=len(text), limit=MAX_INPUT)
        raise ShareError(tr(BAD_LINK, why=why))
    if not _B64URL.match(text):
        raise ShareError(tr(BAD_LINK, why=tr("its input is not base64url text")))
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        inflater = zlib.decompressobj()
        data = inflater.decompress(packed, SIZE * SIZE + 1)
    except (binascii.Error, ValueError, zlib.error):
        raise ShareError(tr(BAD_LINK, why=tr("its input is not a compressed image"))) from None
    if len(data) != SIZE * SIZE or inflater.unconsumed_tail:
        raise ShareError(tr(BAD_LINK, why=tr("its input is not {n}x{n} pixels", n=SIZE)))
    pixels = np.frombuffer(data, np.uint8).reshape(1, SIZE, SIZE).astype(np.float32) / 255.0
    if pixels.max() < 0.1:
        raise ShareError(tr(BAD_LINK, why=tr("its input is blank")))
    return pixels


# --------------------------------------------------------------------------- the open view's settings

_WHOLE = re.compile(r"^[0-9]{1,6}$")
_NUMBER = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,6})?$")
_NOT_WORD = re.compile(r"[^a-z0-9_]+")


def _finite(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if np.isfinite(f) else None


class _Codec:
    """How a link writes one kind of control's value (`encode`: None when it has none to write) and reads it back
    (`decode`: ShareError naming `what` and the `expected` value otherwise)."""

    what: str
    expected: str

    def refuse(self) -> ShareError:
        return ShareError(tr("{what} is not {expected}", what=tr(self.what), expected=self.expected))


@dataclass(frozen=True)
class Whole(_Codec):
    """A whole number from lo to hi (>= 0): a slider of step 1, a dropdown or a box of numbers."""

    what: str
    lo: int
    hi: int

    @property
    def expected(self) -> str:
        return tr("a whole number from {lo} to {hi}", lo=self.lo, hi=self.hi)

    def encode(self, value: Any) -> str | None:
        f = _finite(value)
        return str(int(f)) if f is not None and f == int(f) and self.lo <= f <= self.hi else None

    def decode(self, text: str) -> int:
        if _WHOLE.match(text) and self.lo <= int(text) <= self.hi:
            return int(text)
        raise self.refuse()


@dataclass(frozen=True)
class Number(_Codec):
    """A number from lo to hi (>= 0), written with at most 3 decimals: a slider of step 0.01."""

    what: str
    lo: float
    hi: float

    @property
    def expected(self) -> str:
        return tr("a number from {lo:g} to {hi:g}", lo=self.lo, hi=self.hi)

    def encode(self, value: Any) -> str | None:
        f = _finite(value)
        return _number(f) if f is not None and self.lo <= f <= self.hi else None

    def decode(self, text: str) -> float:
        if _NUMBER.match(text) and self.lo <= float(text) <= self.hi:
            return float(text)
        raise self.refuse()


@dataclass(frozen=True)
class Choice(_Codec):
    """One of a control's choices, each named in links by a word (`words` makes them from the choices)."""

    what: str
    names: Mapping[str, Any]  # the word in a link -> the control's value

    @property
    def expected(self) -> str:
        return tr("one of {words}", words=", ".join(self.names))

    def encode(self, value: Any) -> str | None:
        return next((word for word, v in self.names.items() if v == value), None)

    def decode(self, text: str) -> Any:
        if text in self.names:
            return self.names[text]
        raise self.refuse()


def words(choices: Sequence[str]) -> dict[str, str]:
    """{word: choice} for a Choice: each choice lower-cased, runs of other characters than a-z, 0-9, _ as "-"."""
    return {_NOT_WORD.sub("-", c.lower()).strip("-"): c for c in choices}


@dataclass(frozen=True)
class Wholes(_Codec):
    """Some of a checkbox group's whole-number choices, as "1,2,5"."""

    what: str
    choices: tuple[int, ...]

    @property
    def expected(self) -> str:
        return tr("some of {choices}", choices=", ".join(map(str, self.choices)))

    def encode(self, value: Any) -> str | None:
        picked = {_finite(v) for v in value} if isinstance(value, (list, tuple)) else set()
        if not picked or not picked <= set(self.choices):  # (None, NaN and 2.5 are no choice)
            return None
        return ",".join(str(int(v)) for v in sorted(picked))

    def decode(self, text: str) -> list[int]:
        parts = text.split(",")
        if all(_WHOLE.match(p) for p in parts):
            picked = [int(p) for p in parts]
            if set(picked) <= set(self.choices) and len(set(picked)) == len(picked):
                return sorted(picked)
        raise self.refuse()


def encode_settings(settings: Sequence[tuple[str, Any, Any, Any]]) -> list[tuple[str, str]]:
    """(name, text) for share_query of each (name, codec, value, default) whose value is valid and not the
    default: a link carries only what differs from a fresh page."""
    texts = [(name, codec.encode(value), codec.encode(default)) for name, codec, value, default in settings]
    return [(name, text) for name, text, default in texts if text is not None and text != default]


def decode_settings(fields: Mapping[str, Sequence[str]], codecs: Mapping[str, Any]) -> tuple[dict, str | None]:
    """The settings a link gives its view ({name: value} for the names in `codecs`) and one sentence naming those
    refused (None: none), which keep their defaults."""
    values, refused = {}, []
    for name, codec in codecs.items():
        given = fields.get(name) or ()
        try:
            if len(given) > 1:
                raise ShareError(tr("{what} is given {n} times", what=tr(codec.what), n=len(given)))
            if given:
                if len(given[0]) > MAX_SETTING:
                    raise codec.refuse()
                values[name] = codec.decode(given[0])
        except ShareError as e:
            refused.append(str(e))
    if not refused:
        return values, None
    return values, tr(BAD_SETTINGS if len(refused) > 1 else BAD_SETTING, clauses=tr(", and its ").join(refused))
