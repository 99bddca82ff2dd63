"""Matplotlib figures: the relative-gain heatmap, crop grids, training curves, sample frames,
and the assessment-vs-optimization scatter.  Every function returns a ``Figure`` (save it with
:func:`nriqa.viz.save_figure`); none calls ``plt.show``."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch


def _figure(figsize):
    # matplotlib is imported when a figure is drawn, not when nriqa.viz is imported
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _to_image(x: torch.Tensor) -> np.ndarray:
    """(3,H,W) tensor in [0,1] -> (H,W,3) array for imshow."""
    x = torch.as_tensor(x).detach().float().cpu()
    if x.dim() != 3 or x.shape[0] != 3:
        raise ValueError(f"expected a (3,H,W) frame, got shape {tuple(x.shape)}")
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


def _frames(x: torch.Tensor, name: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    shape = tuple(x.shape)
    if x.dim() == 5:
        x = x.flatten(0, 1)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be (3,H,W), (N,3,H,W) or (B,T,3,H,W) RGB frames, got {shape}")
    return x


# ----------------------------------------------------------------------------- gain heatmap
def gain_heatmap(gains: pd.DataFrame, *, row: str = "run", col: str = "measure", value: str = "gain",
                 row_labels: Mapping[str, str] | None = None, own: Mapping[str, str | Sequence[str]] | None = None,
                 hacking_threshold: float = 0.1, title: str | None = None, vmax: float | None = None,
                 cmap: str = "RdBu"):
    """Heatmap of the mean relative gain of ``gains`` (output of
    :func:`nriqa.analysis.relative_gain`), rows ``row``, columns ``col`` and their ``average``
    (:func:`nriqa.analysis.gain_matrix`), drawn by :func:`matrix_heatmap`. ``own``: run -> the
    measure(s) it optimized; runs flagged by :func:`nriqa.analysis.metric_hacking` (own gain >
    held-out mean + ``hacking_threshold``) get their own-measure cells boxed and hatched, and a note
    under the plot; the flag table is ``fig.hacking``."""
    from nriqa.analysis.gain import gain_matrix, metric_hacking

    mat = gain_matrix(gains, row=row, col=col, value=value, average=True)
    if mat.empty:
        raise ValueError("gains is empty: nothing to draw")
    flags = metric_hacking(gains, own, threshold=hacking_threshold, row=row, col=col, value=value) if own else None
    return matrix_heatmap(mat, flags=flags, row_labels=row_labels, hacking_threshold=hacking_threshold,
                          title=title, vmax=vmax, cmap=cmap)


def matrix_heatmap(matrix: pd.DataFrame, *, flags: pd.DataFrame | None = None,
                 row_labels: Mapping[str, str] | None = None, hacking_threshold: float = 0.1,
                 title: str | None = None, vmax: float | None = None, cmap: str = "RdBu",
                 xlabel: str = "evaluation measure"):
    """Heatmap of mean relative gain: rows = runs (the extra loss term added to Charbonnier),
    columns = measures, the last column their ``average`` (:func:`nriqa.analysis.gain_matrix`);
    numbers (in %) in every cell; diverging colormap centred on 0 (blue = better than the
    baseline, red = worse).

    ``flags``: the metric-hacking table (``run, own, flagged``; :func:`nriqa.analysis.metric_hacking`);
    the own-measure cells of flagged runs get boxed and hatched, with a note under the plot
    naming ``hacking_threshold``.  The table is kept as ``fig.hacking``.
    """
    from matplotlib.patches import Rectangle  # imported on use, as in _figure

    if matrix.empty:
        raise ValueError("gain matrix is empty: nothing to draw")
    data = matrix.to_numpy(dtype=float)
    lim = vmax if vmax is not None else float(np.nanmax(np.abs(data))) or 1.0
    n_r, n_c = data.shape
    label_w = 0.09 * max(len(str(r)) for r in (row_labels or {}).values() or matrix.index) if n_r else 1.0
    fig = _figure((2.5 + label_w + 0.85 * n_c, 2.2 + 0.5 * n_r))
    ax = fig.add_subplot()
    im = ax.imshow(data, cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
    digits = 1 if lim >= 0.01 else 2  # relative gains of a short CPU run can be tiny
    for i in range(n_r):
        for j in range(n_c):
            v = data[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{100 * v:+.{digits}f}", ha="center", va="center", fontsize=8,
                        color="white" if abs(v) > 0.6 * lim else "black")
    ax.axvline(n_c - 1.5, color="black", lw=1.5)  # separates the average column
    ax.set_xticks(range(n_c), list(matrix.columns), rotation=45, ha="right")
    labels = [row_labels.get(r, r) if row_labels else r for r in matrix.index]
    ax.set_yticks(range(n_r), labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("extra loss term (+ Charbonnier)")
    fig.colorbar(im, ax=ax, label="relative gain over baseline (%)",
                 format=lambda x, _: f"{100 * x:+.2g}")
    if title:
        ax.set_title(title)
    if flags is None:
        flags = pd.DataFrame()
    else:
        cols = list(matrix.columns)
        rows = list(matrix.index)
        for rec in flags[flags["flagged"]].itertuples():
            for m in rec.own.split(","):
                i, j = rows.index(rec.run), cols.index(m)
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black",
                                       lw=2.0, hatch="///"))
        if flags["flagged"].any():
            fig.text(0.01, -0.02, "hatched box: metric hacking - the run's own loss measure gains "
                     f"> {100 * hacking_threshold:.0f} points more than the held-out mean",
                     fontsize=8, ha="left", va="top")
    fig.hacking = flags  # the flag table behind the boxes, for the notebook to print
    return fig


def model_dataset_heatmap(table: pd.DataFrame, *, title: str | None = None, vmax: float | None = None):
    """The first paper's Fig. 2 as a heatmap: rows = loss terms, columns = the (model, test set)
    cells as given (labels ``<model> / <dataset>``) then their ``mean`` (last); cells hold the
    relative gain over each model's baseline (fractions, drawn in %; blue = better). Thin lines
    separate consecutive columns whose model (the label before `` / ``) differs."""
    fig = matrix_heatmap(table, title=title, vmax=vmax, xlabel="model / test set")
    ax = fig.axes[0]
    models = [str(c).split(" / ")[0] for c in table.columns[:-1]]
    for j in range(1, len(models)):
        if models[j] != models[j - 1]:
            ax.axvline(j - 0.5, color="black", lw=0.6)
    return fig


# ----------------------------------------------------------------------------- crops
def crop_grid(crops: Sequence, gt: torch.Tensor, outputs: Mapping[str, torch.Tensor], *,
              scores: Mapping[str, Sequence[float]] | None = None, title: str | None = None,
              cell: float = 1.6):
    """Rows = crops (``Crop(frame, y, x, size, value)`` from :func:`nriqa.analysis.artifacts.top_crops`),
    columns = ground truth then each output in ``outputs`` order (e.g. baseline, runs).
    ``scores``: optional ``{output: per-crop numbers}`` written under each crop."""
    if not crops:
        raise ValueError("crops is empty: nothing to draw")
    g = _frames(gt, "gt")
    outs = {k: _frames(v, f"outputs[{k!r}]") for k, v in outputs.items()}
    for k, v in outs.items():
        if v.shape != g.shape:
            raise ValueError(f"outputs[{k!r}] has shape {tuple(v.shape)}, gt {tuple(g.shape)}")
    cols = {"ground truth": g, **outs}
    fig = _figure((cell * len(cols), cell * len(crops) + 0.4))
    axes = fig.subplots(len(crops), len(cols), squeeze=False)
    for i, c in enumerate(crops):
        for j, (name, frames) in enumerate(cols.items()):
            ax = axes[i, j]
            ax.imshow(_to_image(frames[c.frame, :, c.y:c.y + c.size, c.x:c.x + c.size]),
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"f{c.frame} ({c.y},{c.x})", fontsize=7)
            if scores and name in scores:
                ax.set_xlabel(f"{scores[name][i]:.3g}", fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def tile_grid(tiles: Mapping[str, Mapping[str, torch.Tensor]], *,
              captions: Mapping[str, Mapping[str, str]] | None = None, title: str | None = None,
              note: str | None = None, cell: float = 1.9, fontsize: float = 6.5):
    """A grid of image tiles: ``tiles[row][column]`` is a ``(3,h,w)`` tile in ``[0,1]`` (already
    cropped and zoomed by the caller); ``captions[row][column]`` is written under the tile (e.g.
    detector scores with arrows); rows are labelled on the left, columns on top (the first row's
    keys); ``note`` goes under the figure. Missing tiles leave their cell empty."""
    if not tiles or not any(tiles.values()):
        raise ValueError("tiles is empty: nothing to draw")
    cols = list(dict.fromkeys(c for row in tiles.values() for c in row))
    n_lines = max([1] + [len(t.splitlines()) for row in (captions or {}).values() for t in row.values()])
    fig = _figure((cell * len(cols) + 0.6, (cell + 0.13 * n_lines + 0.15) * len(tiles) + 0.4))
    axes = fig.subplots(len(tiles), len(cols), squeeze=False)
    for i, (r, row) in enumerate(tiles.items()):
        for j, c in enumerate(cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if c not in row:
                ax.set_axis_off()
                continue
            ax.imshow(_to_image(row[c]), interpolation="nearest")
            if i == 0 or c not in list(tiles.values())[i - 1]:
                ax.set_title(c, fontsize=8)
            if j == 0:
                ax.set_ylabel(r, fontsize=8)
            text = (captions or {}).get(r, {}).get(c)
            if text:
                ax.set_xlabel(text, fontsize=fontsize, family="monospace", linespacing=1.1)
    if title:
        fig.suptitle(title, fontsize=10)
    if note:
        fig.text(0.01, 0.0, note, fontsize=7, ha="left", va="top")
    return fig


def zoom_tile(x: torch.Tensor, *, y: int, x0: int, size: int, zoom: int = 3) -> torch.Tensor:
    """The ``size``-px window at ``(y, x0)`` of a ``(3,H,W)`` frame, enlarged ``zoom`` times by
    pixel repetition (no interpolation, so single-pixel artifacts stay visible)."""
    t = torch.as_tensor(x).detach().float().cpu()[:, y:y + size, x0:x0 + size]
    return t.repeat_interleave(zoom, -2).repeat_interleave(zoom, -1)


def difference_tile(x: torch.Tensor, ref: torch.Tensor, *, gain: float = 4.0) -> torch.Tensor:
    """``0.5 + gain * (x - ref)`` clamped to ``[0,1]``: a difference image (grey = no change,
    colour = what changed, amplified ``gain`` times) for changes too small to see directly."""
    return (0.5 + gain * (torch.as_tensor(x).float() - torch.as_tensor(ref).float())).clamp(0, 1)


# ----------------------------------------------------------------------------- curves, frames
def training_curves(log: pd.DataFrame, columns: Sequence[str] | None = None, *, x: str = "step",
                    logy: bool = True, smooth: int = 1, title: str | None = None):
    """Curves of ``columns`` (default: ``total`` and every numeric ``loss*`` column, e.g. ``loss/<term>``)
    against ``x`` from a training log (:func:`nriqa.train.read_log`); one panel per column."""
    if x not in log.columns:
        raise ValueError(f"log has no column {x!r}; it has {list(log.columns)}")
    if columns is None:
        columns = [c for c in log.columns if (c == "total" or c.startswith("loss"))
                   and pd.api.types.is_numeric_dtype(log[c])]
    columns = [c for c in columns if c in log.columns]
    if not columns:
        raise ValueError(f"no column to plot; log has {list(log.columns)}")
    fig = _figure((3.2 * min(len(columns), 4), 2.6 * int(np.ceil(len(columns) / 4))))
    axes = fig.subplots(int(np.ceil(len(columns) / 4)), min(len(columns), 4), squeeze=False).ravel()
    for ax, c in zip(axes, columns):
        d = log[[x, c]].dropna()
        y = d[c].rolling(smooth, min_periods=1).mean() if smooth > 1 else d[c]
        ax.plot(d[x], y, lw=1.2)
        if logy and (y > 0).all():
            ax.set_yscale("log")
        ax.set_title(c, fontsize=9)
        ax.set_xlabel(x)
    for ax in axes[len(columns):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig


def sample_frames(frames: Mapping[str, torch.Tensor], *, index: int = 0,
                  crop: tuple[int, int, int] | None = None, scores: Mapping[str, str] | None = None,
                  title: str | None = None, cell: float = 2.6):
    """Side-by-side frames: ``{label: (3,H,W) | (T,3,H,W) | (1,T,3,H,W)}``; ``index`` picks the
    frame of videos, ``crop=(y, x, size)`` zooms in, ``scores`` adds a caption per label."""
    if not frames:
        raise ValueError("frames is empty: nothing to draw")
    fig = _figure((cell * len(frames), cell + 0.4))
    axes = fig.subplots(1, len(frames), squeeze=False)[0]
    for ax, (name, f) in zip(axes, frames.items()):
        img = _frames(f, name)
        img = img[min(index, img.shape[0] - 1)]
        if crop is not None:
            y, x, s = crop
            img = img[:, y:y + s, x:x + s]
        ax.imshow(_to_image(img), interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if scores and name in scores:
            ax.set_xlabel(scores[name], fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def gradient_shares(norms: Mapping[str, float], weights: Mapping[str, float], *, ax=None,
                    title: str | None = None):
    """Bar chart of weighted gradient shares ``w_i * n_i / sum_j w_j * n_j`` per loss term."""
    terms = [t for t in norms if t in weights]
    if not terms:
        raise ValueError(f"norms {list(norms)} and weights {list(weights)} share no term")
    vals = np.array([abs(weights[t]) * float(norms[t]) for t in terms])
    shares = vals / vals.sum() if vals.sum() > 0 else vals
    fig = None
    if ax is None:
        fig = _figure((1.2 + 0.9 * len(terms), 2.8))
        ax = fig.add_subplot()
    from matplotlib.ticker import PercentFormatter

    ax.bar(range(len(terms)), shares, color="tab:blue")
    ax.set_xticks(range(len(terms)), terms, rotation=30, ha="right")
    ax.set_ylim(0, 1.15)  # room above a 100 % bar for its label
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("share of weighted\ngradient norm")
    for i, s in enumerate(shares):
        ax.text(i, s + 0.02, f"{100 * s:.0f} %", ha="center", va="bottom", fontsize=8)
    if title:
        ax.set_title(title)
    return fig if fig is not None else ax.figure


_SIDES = [(4, 3, "left", "bottom"), (4, -3, "left", "top"), (-4, 3, "right", "bottom"),
          (-4, -3, "right", "top"), (0, 6, "center", "bottom"), (0, -6, "center", "top")]


def _place_labels(fig, ax, xs, ys, texts, fontsize: int = 8) -> list:
    """Label each point, trying the sides of :data:`_SIDES` in turn: a label takes the first side where
    its drawn box overlaps no label placed before it and no other point, and stays inside the axes
    (no clipped or colliding names); where no side is free, the one with the least overlap.
    Returns the annotations."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.canvas.draw()  # settles the layout, so the boxes measured below are the saved ones
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    pts = ax.transData.transform(np.column_stack([xs, ys])) if len(xs) else np.zeros((0, 2))
    placed, anns = [], []

    def cost(box, i) -> float:
        over = sum(max(0.0, min(box.x1, b.x1) - max(box.x0, b.x0)) * max(0.0, min(box.y1, b.y1) - max(box.y0, b.y0))
                   for b in placed)
        pad = 6 * fig.dpi / 72  # a marker's radius and a little
        hits = sum(1 for j, (px, py) in enumerate(pts) if j != i and box.x0 - pad <= px <= box.x1 + pad
                   and box.y0 - pad <= py <= box.y1 + pad)
        # a label nearer another point than its own would name the wrong point
        cx, cy = np.clip(pts[:, 0], box.x0, box.x1), np.clip(pts[:, 1], box.y0, box.y1)
        dist = np.hypot(pts[:, 0] - cx, pts[:, 1] - cy)
        hits += int(len(pts) > 1 and dist.argmin() != i and dist.min() < dist[i])
        outside = (max(0.0, frame.x0 - box.x0) + max(0.0, box.x1 - frame.x1)
                   + max(0.0, frame.y0 - box.y0) + max(0.0, box.y1 - frame.y1))
        return over + 400.0 * hits + 50.0 * outside

    for i, (xi, yi, t) in enumerate(zip(xs, ys, texts)):
        ann = ax.annotate(str(t), (xi, yi), textcoords="offset points", xytext=_SIDES[0][:2], fontsize=fontsize)
        best = None
        for dx, dy, ha, va in _SIDES:
            ann.xyann = (dx, dy)
            ann.set_ha(ha)
            ann.set_va(va)
            box = ann.get_window_extent(renderer)
            c = cost(box, i)
            if best is None or c < best[0]:
                best = (c, (dx, dy, ha, va), box)
            if c == 0:
                break
        _, (dx, dy, ha, va), box = best
        ann.xyann = (dx, dy)
        ann.set_ha(ha)
        ann.set_va(va)
        placed.append(box)
        anns.append(ann)
    return anns


def asymmetry_scatter(table: pd.DataFrame, *, x: str = "srcc", y: str = "gain", label: str = "measure",
                      title: str | None = None, xlabel: str | None = None, spread: tuple[str, str] | None = None):
    """Scatter of assessment accuracy (``x``, e.g. SRCC) vs optimization value (``y``, mean
    relative gain as a loss), one labelled point per row of ``table`` with all three values, and
    Spearman's rho with its p-value and n in the title (kept as ``fig.spearman``). ``xlabel`` (e.g.
    what the SRCC is against) replaces the x axis label; ``spread=(lo, hi)``: columns of ``table``
    drawn as a vertical bar through each point (e.g. its lowest and highest seed's gain,
    :func:`nriqa.study.assess_vs_optimize.seed_range`)."""
    from scipy import stats

    for c in (x, y, label, *(spread or ())):
        if c not in table.columns:
            raise ValueError(f"table lacks column {c!r}; it has {list(table.columns)}")
    d = table[[x, y, label]].dropna()
    if len(d) < 2:
        raise ValueError(f"need at least 2 measures with both {x} and {y}, got {len(d)}")
    rho, p = stats.spearmanr(d[x], d[y])
    spearman = (float(rho), float(p))
    fig = _figure((4.8, 3.8))
    ax = fig.add_subplot()
    if spread is not None:
        lo, hi = (table.loc[d.index, c].to_numpy(float) for c in spread)
        ax.vlines(d[x], lo, hi, color="tab:purple", alpha=0.35, lw=2)
    ax.scatter(d[x], d[y], color="tab:purple")
    ax.axhline(0, color="gray", lw=0.8, ls="--")
    ax.set_xlabel(f"assessment accuracy ({x.upper()})")
    if y == "gain":  # a fraction: shown in %, the unit of every gain in the notebooks
        from matplotlib.ticker import PercentFormatter

        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("mean relative gain as a loss (%)")
    else:
        ax.set_ylabel(y)
    lines = [title] if title else []
    lines.append(f"Spearman rho = {rho:.2f}, p = {p:.3g} (n = {len(d)})")
    ax.set_title("\n".join(lines), fontsize=9)
    ax.margins(x=0.12, y=0.1)  # room for the labels of points at the edges
    _place_labels(fig, ax, d[x].to_numpy(float), d[y].to_numpy(float), list(d[label]))
    if xlabel:
        ax.set_xlabel(xlabel)
    fig.spearman = spearman
    return fig
