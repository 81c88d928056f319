"""What runs beside the load in the runner's process: a daemon thread that ``stop()`` ends,
appending one JSON line per reading (the metrics scraper, the generator watcher)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path

__all__ = ["Sidecar", "append_json_line"]


class Sidecar(threading.Thread):
    """A daemon thread whose ``run`` ends once ``_stop_event`` is set."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._stop_event = threading.Event()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout_s)


def append_json_line(path: Path, record: Mapping[str, object]) -> None:
    """``record`` as one compact JSON line at the end of ``path``."""
    with path.open("a") as fh:
        fh.write(json.dumps(record, separators=(",", ":")) + "\n")
