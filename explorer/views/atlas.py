"""The atlas of pose dimensions: for each digit capsule's 16 dimensions, what a step of one standard deviation of the
data does to the decoded digit (the mean difference map over the class's test digits, from `python -m capsnet.atlas`,
stored beside the weights) with the dimension's label. Cards sort and filter by effect; each is a [data-pose-dim]
button that static/pose_link.js turns into "open this dimension's slider in the Pose tab"."""
from __future__ import annotations

import html
from typing import Any

import numpy as np

from capsnet import dimensions as dm
from .capsules import POSE_DIM
from .couplings import NUM_CLASSES

from .capsule_map import diverging
from ..text import tr
from .pose import describe, dimension_labels, uint8_data_url

SORTS = ("dimension", "effect size")
ALL, DISAGREES = "all effects", "encoder disagrees"
NAMES = {"ink": "ink", "width": "width", "height": "height", "slant": "slant", "rotation": "rotation",
         "stroke": "stroke width", "shift_x": "shift x", "shift_y": "shift y", "local": "local"}  # fmt: skip
CARD_SCALE = 3  # a 28x28 map drawn 84 px wide
GAP = 2
SCALE_PERCENTILE = 99  # full colour at this percentile of a class's |change|: one strong map does not wash out the rest


def class_scale(class_maps: np.ndarray) -> float:
    """The colour scale of one class's maps: the SCALE_PERCENTILE-th percentile of their |change| (stronger clip)."""
    return float(np.percentile(np.abs(class_maps), SCALE_PERCENTILE)) or 1.0
NO_ATLAS = ("No atlas for this checkpoint: run `python -m capsnet.atlas` to measure its pose dimensions (it writes "
            "the labels into the model card and the difference maps beside the weights).")  # fmt: skip


def effect_choices(card: dict | None) -> list[str]:
    """The filter's choices: every effect some label names (in EFFECTS order, then local), and the disagreements."""
    table = dimension_labels(card) or []
    present = {r["effect"] for rows in table for r in rows}
    return [ALL, *[NAMES[e] for e in (*dm.EFFECTS, "local") if e in present], DISAGREES]


def map_rgb(diff_map: np.ndarray, scale: float, zoom: int = 1) -> np.ndarray:
    """A signed difference map as uint8 RGB: red where a + step adds ink, blue where it removes it, white at 0;
    ±`scale` is full colour."""
    rgb = diverging(np.asarray(diff_map, np.float32) / max(float(scale), 1e-6)).round().astype(np.uint8)
    return rgb.repeat(zoom, 0).repeat(zoom, 1) if zoom > 1 else rgb


def _shown(rows: list[dict], sort: Any, effect: Any) -> list[int]:
    """The dimensions to show, in order: filtered by `effect` (a NAMES value, ALL or DISAGREES), sorted by `sort`."""
    dims = list(range(len(rows)))
    if effect == DISAGREES:
        dims = [d for d in dims if rows[d].get("disagrees")]
    elif effect not in (None, ALL):
        dims = [d for d in dims if NAMES.get(rows[d]["effect"]) == effect]
    if sort == SORTS[1]:
        dims.sort(key=lambda d: -abs(float(rows[d].get("z") or 0.0)))
    return dims


def _card(k: int, d: int, row: dict, url: str) -> str:
    enc = row.get("encoder") or {}
    transform = enc.get("transform")
    tracks = tr("encoder tracks {what} (|ρ| {rho:.2f})", what=tr(NAMES.get(transform, transform) or ""),
                rho=enc.get("abs_rho", 0))
    flag = f' <b class="atlas-disagrees">{tr("≠ decoder")}</b>' if row.get("disagrees") else ""
    return (f'<button type="button" class="atlas-card" data-pose-dim="{d}" data-digit-class="{k}" '
            f'title="{html.escape(tr("Open dim {d} of digit capsule {k} in the Pose tab", d=d, k=k))}">'
            f'<img src="{url}" width="{28 * CARD_SCALE}" height="{28 * CARD_SCALE}" '
            f'alt="{html.escape(tr("difference map of dim {d}", d=d))}">'
            f'<span class="atlas-dim">{tr("dim {d}", d=d)} · |z| {abs(float(row.get("z") or 0.0)):.2f}</span>'
            f'<span class="atlas-label">{html.escape(describe(row))}</span>'
            f'<span class="atlas-encoder">{html.escape(tracks) if enc else ""}{flag}</span></button>')  # fmt: skip


def cards_html(card: dict | None, maps: Any, k: int, sort: Any = SORTS[0], effect: Any = ALL) -> str:
    """Digit capsule k's dimensions as cards (difference map, label, |z|, the encoder's view), or why there are none."""
    table = dimension_labels(card)
    if table is None or maps is None:
        return f'<p class="atlas-empty">{html.escape(tr(NO_ATLAS))}</p>'
    rows, class_maps = table[int(k)], np.asarray(maps[int(k)], np.float32)
    scale = class_scale(class_maps)
    dims = _shown(rows, sort, effect)
    if not dims:
        return f'<p class="atlas-empty">{tr("No dimension of digit capsule {k} has that effect.", k=int(k))}</p>'
    cards = "".join(_card(int(k), d, rows[d], uint8_data_url(map_rgb(class_maps[d], scale, CARD_SCALE))) for d in dims)
    legend = tr("Digit capsule {k}: {n} of {total} dimensions. Red: a +1σ step adds ink there, blue: it removes ink; "
                "full colour at ±{scale:.2f} (stronger changes clipped; one scale for this class). Click a card to open "
                "its slider.", k=int(k), n=len(dims), total=len(rows), scale=scale)
    return f'<p class="atlas-legend">{html.escape(legend)}</p><div class="atlas-grid">{cards}</div>'


def overview_image(maps: Any, zoom: int = 2) -> np.ndarray | None:
    """All classes x all dimensions at a glance (rows: digit capsules 0-9, columns: dims 0-15), each row on its own
    colour scale; None without maps."""
    if maps is None:
        return None
    m = np.asarray(maps, np.float32)
    cell = 28 * zoom + GAP
    out = np.full((NUM_CLASSES * cell - GAP, POSE_DIM * cell - GAP, 3), 255, np.uint8)
    for k in range(NUM_CLASSES):
        scale = class_scale(m[k])
        for d in range(POSE_DIM):
            out[k * cell:k * cell + 28 * zoom, d * cell:d * cell + 28 * zoom] = map_rgb(m[k, d], scale, zoom)
    return out


__all__ = ["ALL", "DISAGREES", "NO_ATLAS", "SORTS", "cards_html", "effect_choices", "map_rgb", "overview_image"]
