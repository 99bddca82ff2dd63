"""Figures and widgets: matplotlib plots (:mod:`nriqa.viz.plots`), ipywidgets viewers
(:mod:`nriqa.viz.widgets`) and :func:`save_figure`, which writes every figure as PNG and SVG and
records in the PNG how small its text gets at README width (:func:`text_sizes`)."""
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


#: the width (CSS px) README.md shows a figure at on GitHub (wider PNGs are shrunk to it)
README_PX = 800
#: CSS px per inch: a browser shows a PNG at one CSS px per pixel
SCREEN_DPI = 96


def text_sizes(fig, *, dpi: int = 150, display_px: int = README_PX) -> dict:
    """The pixel size of ``fig`` saved at ``dpi`` (``bbox_inches="tight"``) and the smallest font of
    the text it draws (every visible, non-empty string: titles, labels, tick labels, annotations).

    Returns ``{"width_px", "height_px", "min_pt", "display_pt"}``: ``min_pt`` is the nominal size
    (pt), about what JupyterLab at 100 % shows (it draws figures at 100 dpi); ``display_pt`` the
    smaller of that and the size at README width, where the PNG is shown at
    ``min(width_px, display_px)`` CSS px (96 per inch): ``min_pt * min(1, dpi / 96 * display_px / width_px)``.
    A 150-dpi figure up to 1250 px (8.3 in) wide keeps its nominal sizes; a 2500-px one halves them.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    old = fig.canvas
    canvas = FigureCanvasAgg(fig)  # attaches itself to fig; the old canvas is put back below
    try:
        renderer = canvas.get_renderer()
        sizes: list[float] = []
        draw_text = renderer.draw_text

        def record(gc, x, y, s, prop, angle, ismath=False, mtext=None):
            if str(s).strip():
                sizes.append(float(prop.get_size_in_points()))
            return draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

        renderer.draw_text = record
        fig.draw(renderer)
        box = fig.get_tightbbox(renderer)
    finally:
        fig.set_canvas(old)
    pad = 0.1  # savefig's pad_inches
    width, height = round((box.width + 2 * pad) * dpi), round((box.height + 2 * pad) * dpi)
    smallest = min(sizes) if sizes else float("nan")
    scale = min(1.0, dpi / SCREEN_DPI * display_px / width) if width else 1.0
    return {"width_px": width, "height_px": height, "min_pt": smallest, "display_pt": smallest * scale}


def discard_figure(name: str, *, folder: str | Path | None = None,
                   formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Remove ``<folder>/<name>.png`` and ``.svg`` if they exist (a figure a run no longer draws, so
    an older run's copy does not stay behind); returns the paths removed."""
    out_dir = Path(folder) if folder is not None else figures_dir()
    gone = [out_dir / f"{name}.{fmt}" for fmt in formats if (out_dir / f"{name}.{fmt}").exists()]
    for path in gone:
        path.unlink()
    return gone


def save_figure(fig, name: str, *, folder: str | Path | None = None, dpi: int = 150,
                formats: tuple[str, ...] = ("png", "svg"), show: bool | None = None) -> list[Path]:
    """Save ``fig`` as ``<folder>/<name>.png`` and ``.svg`` atomically; returns the paths.

    ``show`` (default: when running in a Jupyter kernel) also shows the figure as the cell's
    output (:func:`show_figure`), so a notebook cell that saves a figure displays it as well,
    in JupyterLab and in notebooks executed by papermill or nbval.

    ``folder`` defaults to :func:`nriqa.paths.figures_dir` (``$NRIQA_FIGURES`` or ``<repo>/figures``).
    The files carry no date and the SVG ids are salted with ``name``, so the same figure
    redrawn gives the same bytes (committed figures change only when their content does).
    The PNG carries :func:`text_sizes` as text chunks ``nriqa:min_pt`` and ``nriqa:display_pt``
    (``benchmarks/figure_sizes.py`` reads them); the dict is also kept as ``fig.text_sizes``.
    """
    import matplotlib  # imported when a figure is saved, not when nriqa.viz is imported

    if not name or "/" in name or "\\" in name:
        raise ValueError(f"figure name must be a plain file stem like 'gain_heatmap', got {name!r}")
    out_dir = Path(folder) if folder is not None else figures_dir()
    paths = []
    fig.text_sizes = text_sizes(fig, dpi=dpi)
    for fmt in formats:
        target = out_dir / f"{name}.{fmt}"
        meta = {"Date": None} if fmt in ("svg", "pdf") else {}
        if fmt == "png":
            meta = {f"nriqa:{k}": f"{fig.text_sizes[k]:.2f}" for k in ("min_pt", "display_pt")}
        with atomic_path(target) as tmp, matplotlib.rc_context({"svg.hashsalt": name}):
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=meta)
        paths.append(target)
    if show is None or show:
        show_figure(fig)
    return paths


__all__ = ["README_PX", "discard_figure", "in_notebook", "save_figure", "show_figure", "text_sizes"]
