"""Figures and widgets: matplotlib plots (:mod:`nriqa.viz.plots`), ipywidgets viewers
(:mod:`nriqa.viz.widgets`) and :func:`save_figure`, which writes every figure as PNG and SVG."""
from __future__ import annotations

from pathlib import Path

from nriqa.paths import atomic_path, figures_dir


def in_notebook() -> bool:
    """Whether code runs in a Jupyter kernel (JupyterLab, papermill, nbval), where a figure is
    shown as an output of the cell."""
    shell = _ipython()
    return shell is not None and hasattr(shell, "kernel")


def _ipython():
    try:  # IPython is optional: without it nothing is displayed
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def show_figure(fig, *, dpi: int = 100) -> bool:
    """Show ``fig`` as a PNG output of the current notebook cell; returns whether it did.

    Works whatever the matplotlib backend (``Agg`` included) and for figures pyplot does not
    track (the kit's plots are bare ``Figure`` objects), so the figure is in the saved notebook
    too. Outside a kernel it does nothing. The figure is closed in pyplot, if pyplot holds it,
    so the inline backend does not show it a second time at the end of the cell.
    """
    import io
    import sys

    if not in_notebook():
        return False
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    display(Image(data=buf.getvalue(), format="png"))
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)  # a no-op for figures pyplot does not hold
    return True


def save_figure(fig, name: str, *, folder: str | Path | None = None, dpi: int = 150,
                formats: tuple[str, ...] = ("png", "svg"), show: bool | None = None) -> list[Path]:
    """Save ``fig`` as ``<folder>/<name>.png`` and ``.svg`` atomically; returns the paths.

    ``show`` (default: when running in a Jupyter kernel) also shows the figure as the cell's
    output (:func:`show_figure`), so a notebook cell that saves a figure displays it as well,
    in JupyterLab and in notebooks executed by papermill or nbval.

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
    if show is None or show:
        show_figure(fig)
    return paths


__all__ = ["in_notebook", "save_figure", "show_figure"]
