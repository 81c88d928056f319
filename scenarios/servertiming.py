"""Parse the `Server-Timing` header (W3C Server Timing) into the columns of samples.csv."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ServerTiming", "parse_server_timing"]


class ServerTiming(NamedTuple):
    """The durations (ms) and cache tier one response reported; None when absent."""

    app: float | None = None
    db: float | None = None
    hash: float | None = None
    cache: str | None = None


_DURATIONS = ("app", "db", "hash")


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def parse_server_timing(header: str | None) -> ServerTiming:
    """Read `app;dur=1.2, db;dur=0.4, cache;desc="L1"` into a ServerTiming.

    A metric named twice has its durations summed (two database round trips are one
    figure for the row); unknown metrics and malformed parameters are ignored, since the
    header is informative and a backend may add its own metrics.
    """
    if not header:
        return ServerTiming()
    found: dict[str, float] = {}
    cache: str | None = None
    for entry in header.split(","):
        parts = entry.split(";")
        metric = parts[0].strip().lower()
        params: dict[str, str] = {}
        for param in parts[1:]:
            key, sep, value = param.partition("=")
            if sep:
                params[key.strip().lower()] = _unquote(value)
        if metric in _DURATIONS and "dur" in params:
            try:
                duration = float(params["dur"])
            except ValueError:
                continue
            found[metric] = found.get(metric, 0.0) + duration
        elif metric == "cache" and params.get("desc"):
            cache = params["desc"]
    return ServerTiming(found.get("app"), found.get("db"), found.get("hash"), cache)
