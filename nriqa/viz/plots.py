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
    :func:`nriqa.analysis.relative_gain`), rows ``row``, columns ``col`` and, last, each row's
    ``held-out average`` (:func:`nriqa.analysis.gain.held_out_average`: the run's own measures left
    out; ``average`` of every column when ``own`` is not given), drawn by :func:`matrix_heatmap`.
    ``own``: run -> the measure(s) it optimized; runs flagged by :func:`nriqa.analysis.metric_hacking`
    (own gain > held-out mean + ``hacking_threshold``) get their own-measure cells outlined, and a
    note under the plot; the flag table is ``fig.hacking``."""
    from nriqa.analysis.gain import gain_matrix, held_out_average, metric_hacking

    mat = gain_matrix(gains, row=row, col=col, value=value, average=False)
    if mat.empty:
        raise ValueError("gains is empty: nothing to draw")
    if own:
        mat["held-out average"] = held_out_average(mat, own)
    else:
        mat["average"] = mat.mean(axis=1)
    flags = metric_hacking(gains, own, threshold=hacking_threshold, row=row, col=col, value=value) if own else None
    fig = matrix_heatmap(mat, flags=flags, row_labels=row_labels, hacking_threshold=hacking_threshold,
                         title=title, vmax=vmax, cmap=cmap)
    if own:
        _note(fig, "held-out average: the mean over every measure except the run's own loss measure(s).")
    return fig


def color_limit(values, *, quantile: float = 0.9, slack: float = 1.25) -> float:
    """A colour-scale limit that no single cell sets: the ``quantile`` of ``|values|`` (finite
    ones), or their maximum where that is at most ``slack`` times the quantile (then nothing is
    clipped); 1.0 when every value is 0 or NaN. Cells beyond it are drawn at the scale's end."""
    a = np.abs(np.asarray(values, dtype=float))
    a = a[np.isfinite(a)]
    if not a.size or not a.max():
        return 1.0
    q = float(np.quantile(a, quantile))
    top = float(a.max())
    return top if q <= 0 or top <= slack * q else q


def _sd_cell(v: float, lim: float) -> str:
    """A standardised change (seed-SD units) short enough for a heatmap cell."""
    return f"{v:+.{0 if abs(v) >= 9.95 else 1}f}".replace("-", "\u2212")


def _pct_cell(v: float, lim: float) -> str:
    """A gain (fraction) as a signed percent short enough for a heatmap cell: no decimal from 10 %
    up, one below, two when the whole scale is under 1 % (a short CPU run's gains can be tiny)."""
    p = 100 * v
    digits = 0 if abs(p) >= 9.95 else (1 if lim >= 0.01 else 2)
    return f"{p:+.{digits}f}".replace("-", "\u2212")


def _wrap_label(label: str, width: int = 18) -> str:
    """A long row or column label broken before each `` + `` so it fits beside a heatmap."""
    return str(label).replace(" + ", "\n+ ") if len(str(label)) > width else str(label)


def _note(fig, text: str, *, fontsize: float = 9) -> None:
    """``text`` under the figure, wrapped to the figure's width (a note wider than the figure would
    widen the saved PNG and shrink everything at README width); notes added later go under it."""
    import textwrap

    chars = max(30, int(fig.get_figwidth() * 72 / (0.56 * fontsize)))
    lines = textwrap.fill(text, chars)
    notes = getattr(fig, "_nriqa_notes", [])
    notes.append(lines)
    fig._nriqa_notes = notes
    for t in [t for t in fig.texts if getattr(t, "_nriqa_note", False)]:
        t.remove()
    t = fig.text(0.01, 0.0, "\n".join(notes), fontsize=fontsize, ha="left", va="top")
    t._nriqa_note = True


def matrix_heatmap(matrix: pd.DataFrame, *, flags: pd.DataFrame | None = None,
                   row_labels: Mapping[str, str] | None = None, hacking_threshold: float = 0.1,
                   title: str | None = None, vmax: float | None = None, cmap: str = "RdBu",
                   xlabel: str = "evaluation measure", quantile: float = 0.9, unit: str = "%"):
    """Heatmap of mean relative gain (fractions; drawn in %; ``unit="SD"``: standardised changes in
    seed-to-seed SD units, drawn as they are): rows = runs (the extra loss term added
    to Charbonnier), columns = measures, the last column their average (set apart by a line);
    the number (in %) in every cell; diverging colormap centred on 0 (blue = better than the
    baseline, red = worse, whatever the measure's direction).

    The colour scale is ``±vmax``, by default :func:`color_limit` (the ``quantile`` of |gain|, so
    no single cell sets it): cells beyond it are drawn at its end with their number in bold, the
    colour bar gets end triangles and a note says so. ``flags``: the metric-hacking table (``run,
    own, flagged``; :func:`nriqa.analysis.metric_hacking`); the own-measure cells of flagged runs
    are outlined (their numbers stay readable), with a note naming ``hacking_threshold``. The table
    is kept as ``fig.hacking``, the limit as ``fig.color_limit``.
    """
    from matplotlib.patches import Rectangle  # imported on use, as in _figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if matrix.empty:
        raise ValueError("gain matrix is empty: nothing to draw")
    data = matrix.to_numpy(dtype=float)
    lim = float(vmax) if vmax is not None else color_limit(data, quantile=quantile)
    n_r, n_c = data.shape
    labels = [_wrap_label(row_labels.get(r, r) if row_labels else r) for r in matrix.index]
    label_w = 0.085 * max(len(line) for t in labels for line in t.split("\n"))
    fig = _figure((1.6 + label_w + 0.44 * n_c, 1.9 + 0.44 * n_r + 0.07 * max(len(str(c)) for c in matrix.columns)))
    ax = fig.add_subplot()
    im = ax.imshow(np.clip(data, -lim, lim), cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
    clipped = np.isfinite(data) & (np.abs(data) > lim * (1 + 1e-9))
    for i in range(n_r):
        for j in range(n_c):
            v = data[i, j]
            if np.isfinite(v):
                ax.text(j, i, (_sd_cell if unit == "SD" else _pct_cell)(v, lim), ha="center", va="center", fontsize=9,
                        fontweight="bold" if clipped[i, j] else "normal",
                        color="white" if abs(v) > 0.6 * lim else "black")
    ax.axvline(n_c - 1.5, color="black", lw=2)  # separates the average column
    ax.set_xticks(range(n_c), [_wrap_label(c) for c in matrix.columns], rotation=45, ha="right",
                  rotation_mode="anchor", fontsize=9)
    ax.set_yticks(range(n_r), labels, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_ylabel("extra loss term (+ Charbonnier)", fontsize=10)
    bar = fig.colorbar(im, ax=ax, extend="both" if clipped.any() else "neither", fraction=0.05, pad=0.02)
    bar.locator = MaxNLocator(nbins=5, symmetric=True, steps=[1, 2, 2.5, 5, 10])
    if unit == "SD":
        bar.formatter = FuncFormatter(lambda x, _: f"{x:+.3g}".replace("-", "\u2212"))
    else:
        bar.formatter = FuncFormatter(lambda x, _: "0 %" if abs(x) < 1e-9 * lim else
                                      f"{100 * x:+.{0 if lim >= 0.05 else 1}f} %".replace("-", "\u2212"))
    bar.update_ticks()
    bar.ax.tick_params(labelsize=9)
    bar.set_label("change over the baseline in seed-SD units\n(+ better, \u2212 worse)" if unit == "SD" else
                  "relative gain over the baseline\n(+ better, \u2212 worse)", fontsize=10)
    if title:
        ax.set_title(title, fontsize=11)
    fig.hacking = flags if flags is not None else pd.DataFrame()
    fig.color_limit = lim
    if flags is not None and flags["flagged"].any():
        cols, rows = list(matrix.columns), list(matrix.index)
        for rec in flags[flags["flagged"]].itertuples():
            for m in rec.own.split(","):
                i, j = rows.index(rec.run), cols.index(m)
                for inset, colour, lw in ((0.0, "black", 3.0), (0.08, "white", 1.5)):  # seen on light and dark
                    ax.add_patch(Rectangle((j - 0.5 + inset, i - 0.5 + inset), 1 - 2 * inset, 1 - 2 * inset,
                                           fill=False, edgecolor=colour, lw=lw))
        _note(fig, "outlined: metric hacking - the run's own loss measure gains more than "
              f"{100 * hacking_threshold:.0f} points above its held-out average.")
    if clipped.any():
        why = f" ({100 * quantile:.0f}th percentile of |value|)" if vmax is None else ""
        scale = f"\u00b1{lim:.3g} SD" if unit == "SD" else f"\u00b1{100 * lim:.3g} %"
        _note(fig, f"colour scale {scale}{why}; bold numbers lie beyond it and are drawn in its end colour.")
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
                ax.set_title(_wrap_label(name, 16), fontsize=10)
            if j == 0:
                ax.set_ylabel(f"f{c.frame} ({c.y},{c.x})", fontsize=9)
            if scores and name in scores:
                ax.set_xlabel(f"{scores[name][i]:.3g}", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def tile_grid(tiles: Mapping[str, Mapping[str, torch.Tensor]], *,
              captions: Mapping[str, Mapping[str, str]] | None = None, title: str | None = None,
              note: str | None = None, cell: float = 1.5, fontsize: float = 9):
    """A grid of image tiles: ``tiles[row][column]`` is a ``(3,h,w)`` tile in ``[0,1]`` (already
    cropped and zoomed by the caller); ``captions[row][column]`` is written under the tile (e.g.
    detector scores with arrows) at ``fontsize`` pt; rows are labelled on the left, columns on top
    (the first row's keys); ``note`` goes under the figure, wrapped to its width. Missing tiles
    leave their cell empty. ``cell``: a tile's side in inches (five columns of 1.5 in stay under
    the 8.3 in that README shows at full size, :func:`nriqa.viz.text_sizes`)."""
    if not tiles or not any(tiles.values()):
        raise ValueError("tiles is empty: nothing to draw")
    cols = list(dict.fromkeys(c for row in tiles.values() for c in row))
    n_lines = max([1] + [len(t.splitlines()) for row in (captions or {}).values() for t in row.values()])
    line = fontsize * 1.25 / 72  # inches per caption line
    fig = _figure((cell * len(cols) + 0.5, (cell + line * n_lines + 0.15) * len(tiles) + 0.5))
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
                ax.set_title(_wrap_label(c, 16), fontsize=10)
            if j == 0:
                ax.set_ylabel(r, fontsize=10)
            text = (captions or {}).get(r, {}).get(c)
            if text:
                ax.set_xlabel(text, fontsize=fontsize, linespacing=1.15)
    if title:
        fig.suptitle(title, fontsize=11)
    if note:
        _note(fig, note)
    return fig


def tile_score_grid(tiles: Mapping[str, Mapping[str, torch.Tensor]], scores: Mapping[str, pd.DataFrame], *,
                    reference: str, tie: float = 0.02, title: str | None = None, note: str | None = None,
                    cell: float = 1.1):
    """Image tiles over a score table each: ``tiles[row][column]`` a ``(3,h,w)`` tile in ``[0,1]``;
    ``scores[row]`` a table (index = detector names, columns = ``tiles[row]``'s columns) of artifact
    scores (higher = more artifact). Under each tile its column of the table, the detector names once
    at the left of each row; every score but the ``reference`` column's carries an arrow against
    the reference column of its row (``↑`` more artifact, red cell; ``↓`` less, blue; no arrow
    and white within ``tie``). Columns are titled on top of the first row, rows labelled on the left."""
    import textwrap

    if not tiles or not any(tiles.values()):
        raise ValueError("tiles is empty: nothing to draw")
    cols = list(dict.fromkeys(c for row in tiles.values() for c in row))
    n_det = max(len(scores[r]) for r in tiles)
    table_h = 0.2 * n_det
    fig = _figure((1.6 + cell * len(cols), (cell + table_h + 0.35) * len(tiles) + 0.6))
    axes = fig.subplots(2 * len(tiles), len(cols), squeeze=False,
                        gridspec_kw={"height_ratios": [cell, table_h] * len(tiles)})
    for i, (r, row) in enumerate(tiles.items()):
        table = scores[r]
        for j, c in enumerate(cols):
            img, tab = axes[2 * i, j], axes[2 * i + 1, j]
            for ax in (img, tab):
                ax.set_xticks([])
                ax.set_yticks([])
            if c not in row:
                img.set_axis_off()
                tab.set_axis_off()
                continue
            img.imshow(_to_image(row[c]), interpolation="nearest")
            if i == 0:
                img.set_title(_wrap_label(c, 16), fontsize=10)
            if j == 0:  # horizontal, over the detector names, so it cannot run into the row above
                img.set_ylabel("\n".join(textwrap.fill(part, 16) for part in r.split("\n")), fontsize=10,
                               rotation=0, ha="right", va="center")
            _score_column(tab, table[c], None if c == reference else table[reference], tie)
            if j == 0:
                tab.set_yticks(range(len(table)), list(table.index), fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    if note:
        _note(fig, note)
    return fig


def _score_column(ax, values: pd.Series, ref: pd.Series | None, tie: float) -> None:
    """One column of :func:`tile_score_grid`'s table: a cell per detector with its score (three
    significant digits) and, against ``ref``, an arrow and a red (more) or blue (less) background."""
    colours = np.ones((len(values), 1, 3))
    for k, (name, v) in enumerate(values.items()):
        text = f"{v:.3g}"
        if ref is not None and abs(v - ref[name]) > tie:
            up = v > ref[name]
            text += " \u2191" if up else " \u2193"
            colours[k, 0] = (0.98, 0.80, 0.78) if up else (0.80, 0.87, 0.97)
        ax.text(0, k, text, ha="center", va="center", fontsize=9)
    ax.imshow(colours, aspect="auto", interpolation="nearest")
    for side in ax.spines.values():
        side.set_linewidth(0.5)


def zoom_tile(x: torch.Tensor, *, y: int, x0: int, size: int, zoom: int = 3) -> torch.Tensor:
    """The ``size``-px window at ``(y, x0)`` of a ``(3,H,W)`` frame, enlarged ``zoom`` times by
    pixel repetition (no interpolation, so single-pixel artifacts stay visible)."""
    t = torch.as_tensor(x).detach().float().cpu()[:, y:y + size, x0:x0 + size]
    return t.repeat_interleave(zoom, -2).repeat_interleave(zoom, -1)


def difference_tile(x: torch.Tensor, ref: torch.Tensor, *, gain: float = 4.0) -> torch.Tensor:
    """``0.5 + gain * (x - ref)`` clamped to ``[0,1]``: a difference image (grey = no change,
    colour = what changed, amplified ``gain`` times) for changes too small to see directly."""
    return (0.5 + gain * (torch.as_tensor(x).float() - torch.as_tensor(ref).float())).clamp(0, 1)


def injected_pairs(pairs: Mapping[str, Mapping], *, title: str | None = None, note: str | None = None,
                   cell: float = 1.1):
    """Positive controls, one column per detector: a clean crop over the same crop with the
    detector's own artifact injected. ``pairs[detector]`` holds ``clean`` and ``injected`` (``(3,h,w)``
    tiles in ``[0,1]``, already cropped and zoomed), ``kind`` and ``strength`` (what was injected),
    ``clean_value`` and ``value`` (the detector's score of each tile's clip; higher = more artifact)
    and optionally ``margin``; each score is written under its tile (three significant digits)."""
    import textwrap

    if not pairs:
        raise ValueError("pairs is empty: nothing to draw")
    rows = ("clean", "injected")
    tiles: dict = {r: {} for r in rows}
    caps: dict = {r: {} for r in rows}
    for det, p in pairs.items():
        col = "\n".join(textwrap.wrap(det.replace("_", " "), 12))
        tiles["clean"][col], tiles["injected"][col] = p["clean"], p["injected"]
        caps["clean"][col] = f"{p['clean_value']:.3g}"
        caps["injected"][col] = "\n".join([f"{p['kind'].replace('_', ' ')} {p['strength']:g}", f"{p['value']:.3g}"]
                                          + ([f"margin {p['margin']:.3g}"] if p.get("margin") is not None else []))
    return tile_grid(tiles, captions=caps, title=title, note=note, cell=cell)


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


def validation_curves(curves: pd.DataFrame, *, panel: str = "discriminator", hue: str = "init",
                      line: str = "seed", x: str = "step", y: str = "score", best: str = "best",
                      ylabel: str = "validation SRCC", title: str | None = None, note: str | None = None):
    """Validation score against training step, one small panel per ``panel`` value (in table order),
    one thin line per ``line`` value coloured by ``hue``, and a dot at each line's ``best`` row (the
    evaluation whose weights were kept). Higher = better. ``curves``: one row per evaluation."""
    from matplotlib.lines import Line2D

    missing = {panel, hue, line, x, y} - set(curves.columns)
    if missing:
        raise ValueError(f"curves lacks columns {sorted(missing)}; it has {list(curves.columns)}")
    panels, hues = list(dict.fromkeys(curves[panel])), list(dict.fromkeys(curves[hue]))
    colours = dict(zip(hues, ["tab:grey", "tab:blue", "tab:orange", "tab:green", "tab:red"]))
    fig = _figure((min(10.0, 1.2 + 2.3 * len(panels)), 2.8))
    axes = fig.subplots(1, max(1, len(panels)), sharey=True, squeeze=False).ravel()
    for ax, p in zip(axes, panels):
        for (h, _), g in curves[curves[panel] == p].groupby([hue, line], sort=False):
            g = g.sort_values(x)
            ax.plot(g[x], g[y], color=colours[h], lw=1.0, alpha=0.8)
            if best in g.columns and g[best].any():
                b = g[g[best]]
                ax.plot(b[x], b[y], "o", color=colours[h], ms=4, zorder=3)
        ax.set_title(str(p), fontsize=9)
        ax.set_xlabel(x, fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0].set_ylabel(ylabel, fontsize=9)
    handles = [Line2D([], [], color=colours[h], lw=1.5, label=str(h)) for h in hues]
    if best in curves.columns:
        handles.append(Line2D([], [], color="black", marker="o", ls="", ms=4, label="kept"))
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=8,
                    title=hue, title_fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    if note:
        _note(fig, note)
    return fig


def sample_frames(frames: Mapping[str, torch.Tensor], *, index: int = 0,
                  crop: tuple[int, int, int] | None = None, scores: Mapping[str, str] | None = None,
                  title: str | None = None, cell: float = 2.6, table: pd.DataFrame | None = None,
                  note: str | None = None, columns: int | None = None):
    """Side-by-side frames: ``{label: (3,H,W) | (T,3,H,W) | (1,T,3,H,W)}``; ``index`` picks the
    frame of videos, ``crop=(y, x, size)`` zooms in (nearest-neighbour, pixels stay visible),
    ``scores`` adds a caption per label. ``table`` (rows = e.g. measures, their names at the left;
    columns = labels of ``frames``): numbers (four significant digits) or strings drawn in a table
    under the frames, aligned with them. ``cell``: a panel's width in inches; ``note`` goes under
    the figure, wrapped to its width; ``columns``: panels per row (several rows; not with ``table``)."""
    if not frames:
        raise ValueError("frames is empty: nothing to draw")
    if columns is not None and table is not None:
        raise ValueError("columns (several rows of panels) and table (one row over a table) do not combine")
    imgs = {}
    for name, f in frames.items():
        img = _frames(f, name)
        img = img[min(index, img.shape[0] - 1)]
        if crop is not None:
            y, x, s = crop
            img = img[:, y:y + s, x:x + s]
        imgs[name] = img
    aspect = max(im.shape[-2] / im.shape[-1] for im in imgs.values())
    n_lines = max([1] + [len(str(t).splitlines()) for t in (scores or {}).values()])
    n_cols = min(columns or len(frames), len(frames))
    rows = 2 if table is not None else -(-len(frames) // n_cols)
    table_h = 0.2 * len(table) if table is not None else 0.0
    names_left = table is not None and next(iter(frames)) in table.columns  # else the first panel's cell has them
    fig = _figure((cell * n_cols + (1.4 if names_left else 0.2),
                   (cell * aspect + 0.5 + 0.2 * n_lines) * (1 if table is not None else rows) + table_h + 0.2))
    axes = fig.subplots(rows, n_cols, squeeze=False,
                        gridspec_kw={"height_ratios": [cell * aspect, table_h]} if table is not None else None)
    panels = axes[0] if table is not None else axes.ravel()
    for ax in panels[len(frames):]:
        ax.set_axis_off()
    for j, (ax, (name, img)) in enumerate(zip(panels, imgs.items())):
        ax.imshow(_to_image(img), interpolation="nearest")
        ax.set_title(_wrap_label(name, 18), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if scores and name in scores:
            ax.set_xlabel(scores[name], fontsize=9)
        if table is not None:
            tab = axes[1, j]
            tab.set_xticks([])
            tab.set_yticks([])
            if name in table.columns:
                col = table[name]
                _text_column(tab, pd.Series([v if isinstance(v, str) else f"{v:.4g}" for v in col], index=col.index))
            elif j == 0:  # no scores (e.g. the ground truth): its cell holds the row names
                _text_column(tab, pd.Series(list(table.index)), frame=False)
            else:
                tab.set_axis_off()
            if j == 0 and name in table.columns:  # the row names once, at the far left
                tab.set_yticks(range(len(table)), list(table.index), fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    if note:
        _note(fig, note)
    return fig


def _text_column(ax, texts: pd.Series, *, frame: bool = True) -> None:
    """One column of strings, a white cell each, top to bottom (a table under a panel); without
    ``frame`` no border (a column of row names)."""
    ax.imshow(np.ones((len(texts), 1, 3)), aspect="auto", interpolation="nearest")
    for k, t in enumerate(texts):
        ax.text(0, k, str(t), ha="center", va="center", fontsize=9)
    for side in ax.spines.values():
        side.set_linewidth(0.5)
        side.set_visible(frame)


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


def seed_dots(table: pd.DataFrame, seeds: pd.DataFrame | None = None, *, group: str, hue: str,
              value: str = "gain", interval: tuple[str, str] | None = None, seed_value: str = "gain",
              xlabel: str | None = None, ylabel: str = "gain over the baseline (%, \u2191 better)",
              title: str | None = None, linthresh: float = 1.0, note: str | None = None,
              numbers: bool | None = None):
    """Means with their seeds: per ``group`` (categorical x, in table order) and ``hue`` (colour,
    side by side within a group), ``table[value]`` (a fraction, drawn in %) as a thick mark with its
    number (``numbers``; default: with at most three hues, where there is room), ``interval=(lo, hi)``
    columns as a thin line (e.g. a 95 % interval), and each seed's
    ``seeds[seed_value]`` (rows matched on ``group`` and ``hue``) as an open circle; no line joins
    groups. Positive = better than the baseline. The y axis is linear within ``±linthresh`` % and
    logarithmic beyond, so a gain of 0.3 % stays visible beside one of -50 % (said in a note)."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    kinds, groups = list(dict.fromkeys(table[hue])), list(dict.fromkeys(table[group]))
    colours = dict(zip(kinds, ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]))
    width = 0.8 / max(1, len(kinds))
    numbers = len(kinds) <= 3 if numbers is None else numbers
    fig = _figure((min(8.0, 3.4 + 0.55 * len(groups) * len(kinds)), 4.0))
    ax = fig.add_subplot()
    ys = [0.0]  # every value drawn, for the y range
    for r in table.to_dict("records"):
        x = groups.index(r[group]) - 0.4 + width * (kinds.index(r[hue]) + 0.5)
        c, mean = colours[r[hue]], 100 * float(r[value])
        if interval and np.isfinite(r[interval[0]]) and np.isfinite(r[interval[1]]):
            ax.vlines(x, 100 * r[interval[0]], 100 * r[interval[1]], color=c, lw=1.2, alpha=0.7)
            ys += [100 * r[interval[0]], 100 * r[interval[1]]]
        pts = np.zeros(0) if seeds is None or seeds.empty else \
            seeds[(seeds[group] == r[group]) & (seeds[hue] == r[hue])][seed_value].to_numpy(float)
        if len(pts):
            ax.scatter(x + np.linspace(-0.15, 0.15, len(pts)) * width, 100 * pts, s=24, facecolors="none",
                       edgecolors=c, lw=1.2, zorder=3)
            ys += list(100 * pts[np.isfinite(pts)])
        if np.isfinite(mean):
            ys.append(mean)
            ax.hlines(mean, x - 0.38 * width, x + 0.38 * width, color=c, lw=3, zorder=4)
        if np.isfinite(mean) and numbers:
            ax.annotate(f"{mean:+.2g} %".replace("-", "\u2212"), (x + 0.4 * width, mean), xytext=(1, 0),
                        textcoords="offset points", va="center", fontsize=9, zorder=5,
                        bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 0.5})
    ax.axhline(0, color="black", lw=0.8)
    ax.set_yscale("symlog", linthresh=linthresh, linscale=1.0)
    scale = ax.yaxis.get_transform()  # pad the y range in the drawn (symlog) units, so no point sits on the frame
    lo, hi = np.ravel(scale.transform(np.array([min(ys), max(ys)])))
    pad = 0.07 * (hi - lo) or 0.5
    ax.set_ylim(*np.ravel(scale.inverted().transform(np.array([lo - pad, hi + pad]))))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:+g} %".replace("-", "\u2212") if v else "0 %"))
    ax.set_xticks(range(len(groups)), [_wrap_label(g) for g in groups], fontsize=10)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=10)
    ax.tick_params(labelsize=9)
    handles = [Line2D([], [], color=colours[k], lw=3, label=str(k)) for k in kinds]
    handles.append(Line2D([], [], color="grey", lw=3, label="mean"))
    if interval:
        handles.append(Line2D([], [], color="grey", lw=1.2, label="95 % interval"))
    if seeds is not None and not seeds.empty:
        handles.append(Line2D([], [], color="grey", marker="o", mfc="none", ls="", label="one seed"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=9,
              title=hue, title_fontsize=9)
    if title:
        ax.set_title(title, fontsize=11)
    _note(fig, (note + " " if note else "") + f"y axis: linear within \u00b1{linthresh:g} %, logarithmic beyond.")
    return fig


def share_comparison(norms: Mapping[str, float], weightings: Mapping[str, Mapping[str, float]], *,
                     title: str | None = None):
    """Each term's share of the weighted gradient ``w_i * n_i / sum_j w_j * n_j`` (in %) under
    several weightings side by side (``weightings``: label -> ``{term: weight}``, e.g. the hand-set
    weights and the gradient-chosen ones), grouped by term, the weights named in the legend."""
    terms = [t for t in norms if all(t in w for w in weightings.values())]
    if not terms or not weightings:
        raise ValueError(f"norms {list(norms)} and the weightings share no term")
    from matplotlib.ticker import PercentFormatter

    fig = _figure((min(8.0, 3.2 + 1.2 * len(terms) * len(weightings) * 0.6), 3.4))
    ax = fig.add_subplot()
    width = 0.8 / len(weightings)
    for k, (label, w) in enumerate(weightings.items()):
        vals = np.array([abs(w[t]) * float(norms[t]) for t in terms])
        shares = vals / vals.sum() if vals.sum() > 0 else vals
        xs = np.arange(len(terms)) - 0.4 + width * (k + 0.5)
        weights = ", ".join(f"{t} {w[t]:.3g}" for t in terms)
        ax.bar(xs, shares, width * 0.9, label=f"{label}: {weights}")
        for x, s in zip(xs, shares):
            ax.text(x, s + 0.02, f"{100 * s:.0f} %", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(terms)), terms, fontsize=10)
    ax.set_ylim(0, 1.18)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.tick_params(labelsize=9)
    ax.set_ylabel("share of the weighted\ngradient norm", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False, fontsize=9, title="weights",
              title_fontsize=9)
    if title:
        ax.set_title(title, fontsize=11)
    return fig


_SIDES = [(4, 3, "left", "bottom"), (4, -3, "left", "top"), (-4, 3, "right", "bottom"),
          (-4, -3, "right", "top"), (0, 6, "center", "bottom"), (0, -6, "center", "top"),
          (8, 12, "left", "bottom"), (8, -12, "left", "top"), (-8, 12, "right", "bottom"),
          (-8, -12, "right", "top"), (0, 18, "center", "bottom"), (0, -18, "center", "top"),
          (8, 22, "left", "bottom"), (8, -22, "left", "top")]


def _place_labels(fig, ax, xs, ys, texts, fontsize: int = 9, bars=()) -> list:
    """Label each point, trying the sides of :data:`_SIDES` in turn: a label takes the first side where
    its drawn box overlaps no label placed before it, no other point and no other point's vertical bar
    (``bars[i] = (x, y_low, y_high)`` of point ``i`` in data units, e.g. seed ranges), and stays inside
    the axes (no clipped or colliding names); where no side is free, the one with the least overlap.
    Returns the annotations."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.canvas.draw()  # settles the layout, so the boxes measured below are the saved ones
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    pts = ax.transData.transform(np.column_stack([xs, ys])) if len(xs) else np.zeros((0, 2))
    placed, anns = [], []
    segs = [(k, *ax.transData.transform((x, lo)), ax.transData.transform((x, hi))[1])
            for k, (x, lo, hi) in enumerate(bars) if np.isfinite(lo) and np.isfinite(hi)]

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
        crossed = sum(1 for k, bx, by0, by1 in segs if k != i and box.x0 - pad / 2 <= bx <= box.x1 + pad / 2
                      and min(by0, by1) <= box.y1 and max(by0, by1) >= box.y0)  # another point's bar
        return over + 400.0 * hits + 50.0 * outside + 200.0 * crossed

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
                      title: str | None = None, xlabel: str | None = None, spread: tuple[str, str] | None = None,
                      ylabel: str | None = None):
    """Scatter of assessment accuracy (``x``, e.g. SRCC) vs optimization value (``y``, mean
    relative gain as a loss), one labelled point per row of ``table`` with all three values, and
    Spearman's rho with its p-value and n in the title (kept as ``fig.spearman``). ``xlabel`` (e.g.
    what the SRCC is against) replaces the x axis label; ``spread=(lo, hi)``: columns of ``table``
    drawn as a vertical bar through each point (e.g. its lowest and highest seed's gain,
    :func:`nriqa.study.assess_vs_optimize.seed_range`); ``ylabel`` replaces the y axis label (and
    its percent ticks, which otherwise read a ``gain`` column as a fraction). Fewer than 3 points:
    the title says so instead of a rank correlation."""
    from scipy import stats

    for c in (x, y, label, *(spread or ())):
        if c not in table.columns:
            raise ValueError(f"table lacks column {c!r}; it has {list(table.columns)}")
    d = table[[x, y, label]].dropna()
    if len(d) < 2:
        raise ValueError(f"need at least 2 measures with both {x} and {y}, got {len(d)}")
    rho, p = stats.spearmanr(d[x], d[y])
    spearman = (float(rho), float(p))
    fig = _figure((7.0, 5.0))
    ax = fig.add_subplot()
    bars = []
    if spread is not None:
        lo, hi = (table.loc[d.index, c].to_numpy(float) for c in spread)
        ax.vlines(d[x], lo, hi, color="tab:purple", alpha=0.35, lw=2)
        bars = list(zip(d[x].to_numpy(float), lo, hi))
    ax.scatter(d[x], d[y], color="tab:purple")
    ax.axhline(0, color="gray", lw=0.8, ls="--")
    ax.set_xlabel(f"assessment accuracy ({x.upper()}, \u2192 better)", fontsize=10)
    ax.tick_params(labelsize=9)
    if ylabel is not None:
        ax.set_ylabel(ylabel, fontsize=10)
    elif y == "gain":  # a fraction: shown in %
        from matplotlib.ticker import PercentFormatter

        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("mean relative gain as a loss, \u2191 better (%)", fontsize=10)
    else:
        ax.set_ylabel(y, fontsize=10)
    lines = [title] if title else []
    lines.append(f"Spearman rho = {rho:.2f}, p = {p:.3g} (n = {len(d)})" if len(d) >= 3
                 else f"n = {len(d)} measures: too few for a rank correlation")
    ax.set_title("\n".join(lines), fontsize=10)
    ax.margins(x=0.12, y=0.1)  # room for the labels of points at the edges
    if xlabel:  # before the labels are placed: the axis label's size moves the axes
        ax.set_xlabel(xlabel + ("" if "better" in xlabel else " (\u2192 better)"), fontsize=10)
    if spread is not None:
        _note(fig, "vertical bars: the lowest to the highest seed's gain.")
    _place_labels(fig, ax, d[x].to_numpy(float), d[y].to_numpy(float), list(d[label]), bars=bars)
    fig.spearman = spearman
    return fig


# ----------------------------------------------------------------------------- claims scoreboard
#: colour of each verdict in the scoreboard
VERDICT_COLOURS = {"agrees": "tab:green", "disagrees": "tab:red", "equivalent": "tab:blue", "inconclusive": "0.6"}


def _scaled(row: Mapping) -> tuple[float, float, float]:
    """A verdict row's effect and 95 % interval divided by the interval's half-width (``nan`` without one)."""
    e, lo, hi = (float(row.get(k, np.nan)) for k in ("effect", "lo", "hi"))
    if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
        half = (hi - lo) / 2
        return e / half, lo / half, hi / half
    return (0.0, 0.0, 0.0) if e == 0 and lo == hi == 0 else (np.nan, np.nan, np.nan)


def claims_scoreboard(board: Sequence[Mapping], *, title: str | None = None, limit: float = 6.0):
    """The claims scoreboard: one line per claim of ``board`` (:func:`nriqa.study.summary.scoreboard`:
    the primary rows, ``id, what, effect, lo, hi, n, verdict, effect_text, interval``): the effect (dot)
    and its 95 % interval (line), both divided by the interval's half-width, so that claims in seed-SD
    units, artifact margins and Spearman rho share one axis (0 = no effect; an interval clear of 0 sits
    beyond +-1), coloured by the verdict; the claim and its n on the left, the effect and verdict on the
    right. Values beyond ``limit`` are drawn at the edge; a claim without an interval is listed, not drawn."""
    from matplotlib.lines import Line2D

    if not board:
        raise ValueError("no primary verdict rows: nothing to draw")
    fig = _figure((9.0, 1.5 + 0.62 * len(board)))
    ax = fig.add_subplot()
    labels = []
    for i, c in enumerate(board):
        x, lo, hi = np.clip(_scaled(c), -limit, limit)   # nan stays nan
        colour = VERDICT_COLOURS.get(c.get("verdict"), "k")
        if np.isfinite(lo):
            ax.hlines(-i, lo, hi, color=colour, lw=2.2)
        if np.isfinite(x):
            ax.plot([x], [-i], "o", ms=6, color=colour)
        labels.append(f"{c['id']}  " + _wrap(str(c["what"]), 44) + f"\nn = {_wrap(str(c['n']), 50)}")
        ax.annotate(f"{c.get('effect_text', '')} {c.get('interval', '')}\n{c['verdict']}", xy=(1.01, -i),
                    xycoords=("axes fraction", "data"), va="center", fontsize=9, color=colour)
    ax.axvline(0, color="k", lw=0.8)
    for edge in (-1, 1):
        ax.axvline(edge, color="0.8", lw=0.6, ls=":")
    drawn = [abs(v) for c in board for v in _scaled(c) if np.isfinite(v)]
    edge = min(limit, np.ceil(max(drawn, default=1.0) + 0.5))
    ax.set_xlim(-edge, edge)
    ax.set_ylim(-len(board) + 0.4, 0.6)
    ax.set_yticks([-i for i in range(len(board))], labels, fontsize=9)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("effect / half-width of its 95% interval (0 = no effect; beyond ±1 = interval clear of 0)",
                  fontsize=9)
    handles = [Line2D([], [], color=c, marker="o", ms=4, lw=2, label=v) for v, c in VERDICT_COLOURS.items()]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False, fontsize=9)
    ax.set_title(title or "The seven claims, each decided by its primary row", fontsize=10, pad=20)
    return fig


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text
