"""Every `CAPSNET_*` environment variable the code reads, parsed in one place.

| variable | value | used by |
| --- | --- | --- |
| `CAPSNET_DATA` | `data_dir` | the MNIST folder: `capsnet.data.default_data_dir()`, `python -m explorer --data-dir` |
| `CAPSNET_CACHE` | `cache_dir` | where `capsnet.data` stages linked MNIST roots (default `~/.cache/capsnet`) |
| `CAPSNET_CHECKPOINT` | `checkpoint` | `capsnet.checkpoint.default_checkpoint()` |
| `CAPSNET_CACHE_MAX_AGE` | `cache_max_age_s` | `explorer.session.cache_policy()` (seconds, at least 1; default 3600) |
| `CAPSNET_TORCH_THREADS` | `torch_threads` | `explorer.session.configure_torch()` (default: half the cores, 1..4) |

A value is None when its variable is unset or empty; the code that owns the default applies it, as before.
`settings()` is not cached and never runs at import: entry points call it once at startup and pass the values
on, library defaults call it when they are needed, and a variable changed inside the process (a test's
monkeypatch, a notebook) counts at the next call, as it did when each call site read os.environ itself.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping


class SettingsError(ValueError):
    """A `CAPSNET_*` variable holds a value that cannot be used; the message is one sentence saying which and why."""


@dataclass(frozen=True)
class Settings:
    """The variables' values. Numbers are kept as written and parsed by their property when used, so a bad
    value stops only the code that uses it (as before), with SettingsError's sentence instead of a traceback
    from int(): a bad CAPSNET_TORCH_THREADS, which only the explorer reads, never stops `python -m capsnet.train`."""

    data_dir: str | None = None  # CAPSNET_DATA
    cache_dir: Path | None = None  # CAPSNET_CACHE
    checkpoint: Path | None = None  # CAPSNET_CHECKPOINT
    cache_max_age_text: str | None = None  # CAPSNET_CACHE_MAX_AGE, see cache_max_age_s
    torch_threads_text: str | None = None  # CAPSNET_TORCH_THREADS, see torch_threads

    @property
    def cache_max_age_s(self) -> int | None:
        """Any whole number of seconds (the explorer clamps it to at least 1, as before)."""
        return _whole("CAPSNET_CACHE_MAX_AGE", self.cache_max_age_text, None,
                      "the age in seconds of temporary files to delete")  # fmt: skip

    @property
    def torch_threads(self) -> int | None:
        return _whole("CAPSNET_TORCH_THREADS", self.torch_threads_text, 1,
                      "the number of torch threads per request (e.g. 2)")  # fmt: skip


def _whole(name: str, raw: str | None, minimum: int | None, meaning: str) -> int | None:
    """The variable as an int (None if unset): a bare int() error would not name the variable, this sentence does."""
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or (minimum is not None and value < minimum):
        least = "a whole number" if minimum is None else f"a whole number of at least {minimum}"
        raise SettingsError(f"{name}={raw!r} is not {least}: set it to {meaning} or unset it.")
    return value


def _path(environ: Mapping[str, str], name: str) -> Path | None:
    """Empty counts as unset: Path("") would quietly mean the working directory."""
    return Path(environ[name]) if environ.get(name) else None


def settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The `CAPSNET_*` variables of `environ` (default: os.environ); a bad number raises SettingsError when used."""
    env = os.environ if environ is None else environ
    return Settings(
        data_dir=env.get("CAPSNET_DATA") or None,
        cache_dir=_path(env, "CAPSNET_CACHE"),
        checkpoint=_path(env, "CAPSNET_CHECKPOINT"),
        cache_max_age_text=env.get("CAPSNET_CACHE_MAX_AGE") or None,
        torch_threads_text=env.get("CAPSNET_TORCH_THREADS") or None,
    )


__all__ = ["Settings", "SettingsError", "settings"]
