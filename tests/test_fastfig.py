"""LightFigure's JSON (plotly.io.to_json): numpy arrays and scalars as numbers, NaN / inf as null, compact."""
import json

import numpy as np
import plotly.graph_objects as go

from explorer.views.fastfig import LightFigure


def _figure() -> LightFigure:
    trace = {"type": "scatter", "x": np.arange(4), "y": np.array([1.0, np.nan, np.inf, -np.inf]),
             "customdata": (np.float32(1.5), np.float64(np.nan), np.int32(3), float("inf"), np.bool_(True)),
             "text": np.array(["a", None], object), "ids": ["p", "q", "r", "s"]}  # fmt: skip
    heat = {"type": "heatmap", "z": np.array([[1, 2], [3, 4]], np.int64), "zmin": np.float32(-0.5)}
    return LightFigure([trace, heat], {"title": {"text": "±1"}, "width": np.int64(300), "height": 200.0})


def test_to_json_turns_numpy_into_numbers_and_non_finite_into_null():
    s = _figure().to_json()
    assert "NaN" not in s and "Infinity" not in s and ": " not in s and ", " not in s  # strict JSON, compact
    d = json.loads(s)
    assert d["data"][0]["x"] == [0, 1, 2, 3] and d["data"][0]["y"] == [1.0, None, None, None]
    assert d["data"][0]["customdata"] == [1.5, None, 3, None, True] and d["data"][0]["text"] == ["a", None]
    assert d["data"][1]["z"] == [[1, 2], [3, 4]] and d["data"][1]["zmin"] == -0.5
    assert d["layout"] == {"title": {"text": "±1"}, "width": 300, "height": 200.0}


def test_to_dict_is_the_json_read_back_and_to_plotly_validates_it():
    f = _figure()
    assert f.to_dict() == json.loads(f.to_json())
    assert go.Figure(json.loads(f.to_json())) == f.to_plotly()
    assert isinstance(f.data[0]["y"], np.ndarray)  # serialising leaves the spec as it was
