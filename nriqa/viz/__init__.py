"""Figures and widgets: matplotlib plots (:mod:`nriqa.viz.plots`), ipywidgets viewers
(:mod:`nriqa.viz.widgets`) and :func:`save_figure`, which writes every figure as PNG and SVG."""
from __future__ import annotations

from pathlib import Path

from nriqa.paths import atomic_path, figures_dir


def save_figure(fig, name: str, *, folder: str | Path | None = None, dpi: int = 150,
                formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Save ``fig`` as ``<folder>/<name>.png`` and ``.svg`` atomically; returns the paths.

    ``folder`` defaults to :func:`nriqa.paths.figures_dir` (``$NRIQA_FIGURES`` or ``<repo>/figures``).
    The files carry no date and the SVG ids are salted with ``name``, so the same figure
    redrawn gives the same bytes (committed figures change only when their content does).
    """
    import matplotlib  # imported when a figure is saved, not when nriqa.viz is imported

    if not name or "/" in name or "\\" in name:
        raise ValueError(f"figure name must be a plain file stem like 'gain_heatmap', got {name!r}")
    out_dir = Path(folder) if folder is not None else figures_dir()
    paths = []
    for fmt in formats:
        target = out_dir / f"{name}.{fmt}"
        meta = {"Date": None} if fmt in ("svg", "pdf") else {}
        with atomic_path(target) as tmp, matplotlib.rc_context({"svg.hashsalt": name}):
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=meta)
        paths.append(target)
    return paths


__all__ = ["save_figure"]
