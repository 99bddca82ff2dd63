"""Interactive viewers for JupyterLab, each degrading to a static matplotlib figure headlessly.

- :func:`compare_frames`: pick a clip, frame, crop and two or more runs; see them side by side
  with their scores.
- :func:`weight_explorer`: one slider per loss term; shows the weighted gradient shares
  ``w_i * |g_i| / sum_j w_j * |g_j|`` from measured gradient norms.

Interactive mode needs ipywidgets, a running Jupyter kernel and a frontend that draws widgets
(JupyterLab, Notebook, VS Code).  It is off (a static figure is returned, which a notebook shows
with :func:`nriqa.viz.save_figure`) with ``interactive=False``, when ``NRIQA_STATIC=1`` or
``NRIQA_BATCH=1`` (set by ``python -m nriqa run``) is in the environment, and when the kernel has
no such frontend: papermill and nbval start bare kernels, so a direct
``papermill notebook.ipynb out.ipynb`` call saves static figures without any flag.
"""
from __future__ import annotations

import io
import os
from typing import Mapping, Sequence

import pandas as pd
import torch

from nriqa.viz.plots import gradient_shares, sample_frames, share_comparison


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip() not in ("", "0")


def has_widget_frontend(shell=None) -> bool:
    """Whether the running kernel was started by a frontend that draws widgets: a Jupyter server
    (JupyterLab, Notebook, Voila) puts ``JPY_SESSION_NAME`` in the kernel's environment, VS Code
    puts ``__vsc_ipynb_file__`` in its namespace. Kernels started by papermill or nbval have neither."""
    if os.environ.get("JPY_SESSION_NAME"):
        return True
    ns = getattr(shell, "user_ns", None) or {}
    return "__vsc_ipynb_file__" in ns


def is_interactive(flag: bool | None = None) -> bool:
    """Whether widgets can be shown: ``flag`` when given, else a Jupyter kernel with ipywidgets,
    a frontend that draws them (:func:`has_widget_frontend`) and neither ``NRIQA_STATIC`` nor
    ``NRIQA_BATCH`` in the environment."""
    if flag is not None:
        return bool(flag)
    if _flag("NRIQA_STATIC") or _flag("NRIQA_BATCH"):
        return False
    try:  # optional: widgets need ipywidgets and IPython; without them figures are static
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel") and has_widget_frontend(shell)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _direction(scores: pd.DataFrame, measure: str) -> str:
    """``↑`` where a higher ``measure`` score is better, ``↓`` where lower is; from the table's
    ``higher_better`` column, else :func:`nriqa.quality.card`; empty when neither knows."""
    if "higher_better" in scores.columns:
        known = scores.loc[scores["measure"] == measure, "higher_better"].dropna()
        if len(known):
            return "\u2191" if bool(known.iloc[0]) else "\u2193"
    from nriqa import quality

    try:
        return "\u2191" if quality.card(measure).higher_better else "\u2193"
    except ValueError:  # a kit measure whose checkpoint is not on this machine
        return ""


def _score_table(scores: pd.DataFrame | None, runs: Sequence[str], clip: str, frame: int,
                 measures: Sequence[str] | None) -> pd.DataFrame | None:
    """Rows ``<measure> ↑|↓`` (the direction that is better), columns = ``runs``: each run's score
    (mean over seeds in ``scores``) on ``frame`` of ``clip``; None without scores."""
    if scores is None or scores.empty:
        return None
    d = scores[(scores["run"].isin(list(runs))) & (scores["clip"] == clip) & (scores["frame"] == frame)]
    if measures is not None:
        d = d[d["measure"].isin(measures)]
    if d.empty:
        return None
    table = d.pivot_table(index="measure", columns="run", values="score", aggfunc="mean", sort=False)
    table = table[[r for r in runs if r in table.columns]]
    table.index = [f"{m} {_direction(scores, m)}".strip() for m in table.index]
    return table


def _check_outputs(outputs: Mapping[str, Mapping[str, torch.Tensor]], gt) -> list[str]:
    if not isinstance(outputs, Mapping) or len(outputs) < 1:
        raise ValueError("outputs must be {run: {clip: (T,3,H,W) tensor}} with at least one run")
    clips = None
    for run, per_clip in outputs.items():
        if not isinstance(per_clip, Mapping) or not per_clip:
            raise ValueError(f"outputs[{run!r}] must be a non-empty {{clip: (T,3,H,W)}} dict")
        names = set(per_clip)
        clips = names if clips is None else clips & names
    if gt is not None:
        clips &= set(gt)
    if not clips:
        raise ValueError("outputs (and gt) share no clip name")
    return sorted(clips)


#: shown under the comparer's crop sliders while the crop is the whole frame (no position to pick)
WHOLE_FRAME_NOTE = "crop covers the whole frame"


def _sync_crop_position(whole: bool, position_sliders, note) -> None:
    """At the largest crop size the crop is the whole frame and its position has no range: the
    position sliders are disabled and ``note`` is shown; a smaller crop enables them again."""
    for slider in position_sliders:
        slider.disabled = whole
    note.layout.display = None if whole else "none"


def compare_frames(outputs: Mapping[str, Mapping[str, torch.Tensor]],
                   gt: Mapping[str, torch.Tensor] | None = None, scores: pd.DataFrame | None = None, *,
                   clip: str | None = None, frame: int = 0, crop: tuple[int, int, int] | None = None,
                   runs: Sequence[str] | None = None, measures: Sequence[str] | None = None,
                   interactive: bool | None = None):
    """Frame/crop comparer.

    Args:
        outputs: ``{run: {clip: (T,3,H,W) or (1,T,3,H,W)}}`` output frames in [0, 1].
        gt: ``{clip: (T,3,H,W)}`` ground truth, shown first when given.
        scores: tidy table from :func:`nriqa.analysis.evaluate` (captions per run/clip/frame).
        clip, frame, crop ``(y, x, size)``, runs, measures: the initial (or static) view.
    Returns:
        an ``ipywidgets.VBox`` when interactive, else a matplotlib ``Figure`` of the view.
    """
    clips = _check_outputs(outputs, gt)
    clip = clip if clip is not None else clips[0]
    if clip not in clips:
        raise ValueError(f"clip {clip!r} not in outputs; clips: {clips}")
    runs = list(runs) if runs is not None else list(outputs)[:4]
    unknown = [r for r in runs if r not in outputs]
    if unknown:
        raise ValueError(f"runs {unknown} not in outputs; runs: {list(outputs)}")

    def view(clip_name: str, frame_idx: int, crop_box, run_names: Sequence[str]):
        panels: dict[str, torch.Tensor] = {}
        if gt is not None:
            panels["ground truth"] = gt[clip_name]
        for r in run_names:
            panels[r] = outputs[r][clip_name]
        table = _score_table(scores, run_names, clip_name, frame_idx, measures)
        note = None if table is None else "scores of this frame: \u2191 higher is better, \u2193 lower is better"
        return sample_frames(panels, index=frame_idx, crop=crop_box, table=table, note=note, cell=1.6,
                             title=f"{clip_name}, frame {frame_idx}")

    if not is_interactive(interactive):
        return view(clip, frame, crop, runs)

    import ipywidgets as W  # optional dependency, present when is_interactive() said so

    first = outputs[runs[0] if runs else next(iter(outputs))][clip]
    h, w = first.shape[-2:]
    n_frames = first.shape[-4] if first.dim() >= 4 else 1
    size0 = crop[2] if crop else min(h, w)
    w_clip = W.Dropdown(options=clips, value=clip, description="clip")
    w_frame = W.IntSlider(value=frame, min=0, max=max(0, n_frames - 1), description="frame")
    w_size = W.IntSlider(value=size0, min=8, max=min(h, w), step=4, description="crop size")
    w_y = W.IntSlider(value=crop[0] if crop else 0, min=0, max=h - 8, description="crop y")
    w_x = W.IntSlider(value=crop[1] if crop else 0, min=0, max=w - 8, description="crop x")
    w_runs = W.SelectMultiple(options=list(outputs), value=tuple(runs), description="runs")
    w_whole = W.Label(value=WHOLE_FRAME_NOTE)
    image = W.Image(format="png")

    def redraw(*_):
        size = w_size.value
        _sync_crop_position(size >= min(h, w), (w_y, w_x), w_whole)
        box = None if size >= min(h, w) else (min(w_y.value, h - size), min(w_x.value, w - size), size)
        frames_here = outputs[next(iter(outputs))][w_clip.value]
        w_frame.max = max(0, (frames_here.shape[-4] if frames_here.dim() >= 4 else 1) - 1)
        image.value = _png(view(w_clip.value, w_frame.value, box, list(w_runs.value)))

    for wd in (w_clip, w_frame, w_size, w_y, w_x, w_runs):
        wd.observe(redraw, names="value")
    redraw()
    controls = W.HBox([W.VBox([w_clip, w_frame, w_runs]), W.VBox([w_size, w_y, w_x, w_whole])])
    return W.VBox([controls, image])


def weight_explorer(norms: Mapping[str, float], weights: Mapping[str, float] | None = None, *,
                    interactive: bool | None = None, low: float = 1e-4, high: float = 1e2,
                    compare: Mapping[str, Mapping[str, float]] | None = None, title: str | None = None):
    """Loss-weight explorer.

    Args:
        norms: measured gradient norm of each *unweighted* loss term, e.g. from
            :func:`nriqa.train.balance.measure_gradients` (``{term: float}``).
        weights: initial weights (default 1.0 each).
        low, high: slider range (log scale).
        compare: named weightings (``{label: {term: weight}}``, e.g. the hand-set and the
            gradient-chosen ones) drawn side by side (:func:`nriqa.viz.plots.share_comparison`):
            the static figure, and beside the sliders' weights when interactive.
        title: the chart's title (default "weighted gradient shares").
    Returns:
        an ``ipywidgets.VBox`` (one log slider per term + the share chart) when interactive,
        else a matplotlib ``Figure`` of the shares for ``weights`` (for ``compare`` when given).
    """
    if not norms:
        raise ValueError("norms must map at least one loss term to its gradient norm")
    bad = {k: v for k, v in norms.items() if not (float(v) >= 0)}
    if bad:
        raise ValueError(f"gradient norms must be finite and >= 0, got {bad}")
    weights = dict(weights or {})
    weights = {t: float(weights.get(t, 1.0)) for t in norms}
    title = title or "weighted gradient shares"
    if not is_interactive(interactive):
        return share_comparison(norms, compare, title=title) if compare else gradient_shares(norms, weights,
                                                                                                title=title)

    import ipywidgets as W  # optional dependency, present when is_interactive() said so

    sliders = {t: W.FloatLogSlider(value=max(weights[t], low), base=10, min=float(torch.log10(torch.tensor(low))),
                                   max=float(torch.log10(torch.tensor(high))), step=0.05, description=t,
                                   readout_format=".3g", style={"description_width": "initial"})
               for t in norms}
    # the PNG at its own pixel size: a stretched widget image distorts the bars and labels
    image = W.Image(format="png", layout=W.Layout(width="auto", height="auto", object_fit="contain"))

    def redraw(*_):
        chosen = {t: s.value for t, s in sliders.items()}
        image.value = _png(share_comparison(norms, {"sliders": chosen, **compare}, title=title) if compare
                           else gradient_shares(norms, chosen, title=title))

    for s in sliders.values():
        s.observe(redraw, names="value")
    redraw()
    return W.VBox([W.VBox(list(sliders.values())), image], layout=W.Layout(align_items="flex-start"))
