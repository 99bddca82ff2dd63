"""Progress bars that suit where the code runs: a bar to watch in JupyterLab or a terminal, plain lines
in a notebook that is executed headlessly and saved.

A headless run (``python -m nriqa run``, which sets ``NRIQA_BATCH=1`` for its kernels, and the nbval
pass of ``make test``, which sets it too) saves every cell's output in the notebook. A tqdm bar there is
either a widget, saved as its text fallback frozen at ``0%| 0/4``, or a text bar redrawn with
carriage returns, hundreds of stream fragments. So there :func:`progress_bar` returns a
:class:`LineProgress` instead: one plain line when the work ends, e.g.

    train: 200 steps done in 41.3 s (4.84 step/s; loss=0.0312, skipped=0)

A transient bar (``leave=False``: one that would vanish once done, e.g. the per-clip evaluation bar)
prints nothing there. Anywhere else (JupyterLab, a terminal) :func:`progress_bar` is ``tqdm.auto.tqdm``.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator

#: the environment variable that marks a headless run (set by ``nriqa run`` for its kernels)
HEADLESS_ENV = "NRIQA_BATCH"


def headless() -> bool:
    """Whether this process runs headlessly: ``$NRIQA_BATCH`` is set to anything but ``""``/``"0"``."""
    return os.environ.get(HEADLESS_ENV, "").strip() not in ("", "0")


class LineProgress:
    """The part of tqdm's interface the kit uses (iteration, ``update``, ``set_postfix``,
    ``set_postfix_str``, ``set_description``, ``close``, a context manager), reporting one plain line
    on ``close`` (iteration to the end closes it, as tqdm does) instead of drawing a bar.
    Silent when ``disable`` or when ``leave`` is false (a bar that would not stay on screen)."""

    def __init__(self, iterable: Iterable | None = None, desc: str | None = None, total: float | None = None,
                 *, initial: float = 0, unit: str = "it", disable: bool = False, leave: bool | None = True,
                 file=None, **_ignored: Any):
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except (TypeError, AttributeError):
                total = None
        self.iterable, self.desc, self.total, self.initial = iterable, desc or "", total, initial
        self.n, self.unit, self.file = initial, unit, file
        self.disable, self.silent = bool(disable), bool(disable) or leave is False
        self.postfix, self.closed, self.start = "", False, time.perf_counter()

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable if self.iterable is not None else ():
                yield item
                self.n += 1
        finally:
            self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**dict(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = str(s)

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        pass

    def line(self) -> str:
        """The line :meth:`close` prints: what was done, in how long, at what rate, the last postfix."""
        seconds = time.perf_counter() - self.start
        done = self.n - self.initial
        word = "item" if self.unit == "it" else self.unit
        count = f"{done:g} {word}{'' if done == 1 else 's'}"
        count += f" (resumed at {self.initial:g})" if self.initial else ""
        finished = self.total is None or self.n >= self.total
        what = "done" if finished else f"stopped at {self.n:g} of {self.total:g}"
        per_s = done / seconds if seconds > 0 else 0.0
        rate = f"{per_s:.0f} {word}/s" if per_s >= 100 else f"{per_s:.3g} {word}/s" if per_s else ""
        extra = "; ".join(x for x in (rate, self.postfix) if x)
        head = f"{self.desc}: " if self.desc else ""
        return f"{head}{count} {what} in {seconds:.1f} s" + (f" ({extra})" if extra else "")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.silent:
            print(self.line(), file=self.file or sys.stdout, flush=True)


def progress_bar(iterable: Iterable | None = None, desc: str | None = None, total: float | None = None, *,
                 enabled: bool = True, **kwargs: Any):
    """A progress bar over ``iterable`` (or updated by hand up to ``total``): ``tqdm.auto.tqdm`` where
    someone watches it, a :class:`LineProgress` in a headless run (:func:`headless`). Takes tqdm's
    keyword arguments (``disable``, ``leave``, ``initial``, ``unit``, ...); ``enabled=False`` is
    ``disable=True``."""
    kwargs["disable"] = bool(kwargs.get("disable", False)) or not enabled
    if headless():
        return LineProgress(iterable, desc, total, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, **kwargs)
