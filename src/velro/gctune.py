"""The garbage collector of a serving process, tuned for many long-lived connections.

Each open keep-alive connection keeps about 45 container objects alive (uvicorn's protocol,
parser, transport, timers). With 10,000 connections that is some 450,000 objects, and every
full collection walks them all: measured on this machine, full collections of 60-560 ms,
growing with the connections, each one a pause of every request in the process
(``benchmarks/costcurve.py`` at 10,000 connections: p99 912 ms instead of 6 ms).

``settle`` is called once in each worker process before it serves: it collects what start-up
left, moves every object that survived (modules, classes, the app) to the permanent
generation with ``gc.freeze()`` so that no later collection walks them again, and raises the
first threshold so that young collections, and the full ones they lead to, run less often.
Reference counting still frees everything at once; only cyclic garbage waits for a collection.
"""

from __future__ import annotations

import gc

__all__ = ["settle"]


def settle(gen0_threshold: int) -> None:
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)
