"""How long a notebook's heavy cells took, printed from the run itself (never typed by hand).

    with timed("training the baselines"):
        runs = {m: ensure_baseline(cfg, m) for m in models}
    # -> time: training the baselines took 2 min 13 s (wall clock)

A second execution that loads cached runs prints the (short) time it took to load them.
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterator


def format_seconds(seconds: float) -> str:
    """``0.42`` -> ``0.4 s``, ``75`` -> ``1 min 15 s``, ``3725`` -> ``1 h 02 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@contextlib.contextmanager
def timed(what: str) -> Iterator[dict]:
    """Print how long the ``with`` block took; the yielded dict gets ``seconds`` at the end."""
    record: dict = {}
    t0 = time.perf_counter()
    try:
        yield record
    finally:
        record["seconds"] = time.perf_counter() - t0
        print(f"time: {what} took {format_seconds(record['seconds'])} (wall clock)", flush=True)
