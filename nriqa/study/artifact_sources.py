"""Notebook 03: which loss terms produce which artifacts, and does a run hack its own measure?

Artifact values come from :func:`nriqa.study.judging.artifact_table` (rows = runs, columns =
:data:`nriqa.study.judging.ARTIFACTS`, higher = more artifact).
"""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd
import torch

from nriqa import quality
from nriqa.analysis import claims
from nriqa.analysis.artifacts import measure_artifacts, top_crops
from nriqa.analysis.inject import confusion_table
from nriqa.analysis.margins import profile_margins
from nriqa.analysis.pixel_optimization import pixel_gallery as run_pixel_gallery
from nriqa.data import bicubic_resize
from nriqa.data.embedded import embedded_clips
from nriqa.viz.plots import difference_tile, tile_grid, tile_score_grid, zoom_tile

from . import verdicts as vt
from .judging import ARTIFACTS, evaluate_runs, first_seed, test_set


def own_measures(grid: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Run label -> the measures its objective optimizes (the extra terms of the grid entry)."""
    return {label: list(terms) for label, terms in grid.items()}


def worst_run(artifacts: pd.DataFrame, measure: str) -> str:
    """The run (baseline excluded when others exist) with the highest value of ``measure``."""
    col = artifacts[measure]
    others = col.drop(index="baseline", errors="ignore")
    return str((others if len(others) else col).idxmax())


def worst_clip(outputs: Mapping[str, Mapping[str, torch.Tensor]], run: str, measure: str) -> str:
    """The test clip on which ``run`` scores highest on artifact ``measure`` (mean over frames)."""
    gt = outputs["ground truth"]
    vals = {name: measure_artifacts(fr, gt[name], [measure])[measure].float().mean().item()
            for name, fr in outputs[run].items()}
    return max(vals, key=vals.get)


#: what each artifact measure detects, in the sentences of :func:`describe_artifacts`
ARTIFACT_NAMES = {"chroma_noise": "coloured dots", "edge_artifacts": "dotted edges", "eyes": "dark blobs",
                  "ringing": "oscillation across edges", "blur": "added blur", "flicker": "temporal flicker",
                  "periodic_pattern": "a frame-wide dot grid or stripes"}


#: the unit of a measure's score where it is not a log2 energy ratio (figure notes)
SCALES = {"periodic_pattern": "log2(1 + RMS of the added grid in 8-bit grey levels)"}


def _num(v: float) -> str:
    return f"{v:.2g}" if v != 0 else "0"


def _artifact_label(measure: str) -> str:
    """``chroma_noise (coloured dots)``: the measure and what it detects, said once."""
    what = ARTIFACT_NAMES.get(measure, measure)
    return measure if what.replace(" ", "_") == measure else f"{measure} ({what})"


def describe_artifacts(artifacts: pd.DataFrame, *, floor: float = 1e-3, rel: float = 0.01,
                       above: float = 0.05) -> str:
    """One measured sentence per artifact measure: which run has most of it, against the baseline
    (two significant digits: these values are small). Ties, near-zeros and non-results are said as such
    instead of naming an arbitrary "highest" run: every run below ``floor`` (the measures are log2 energy
    ratios: 0.001 is 0.07 % more energy) is "none detected"; runs within ``floor`` or ``rel``
    of the largest value of each other are "no run stands out"; a highest run within ``above`` (5 %) or
    ``floor`` of the baseline is "none detected above the baseline"."""
    lines = []
    for m in [a for a in ARTIFACTS if a in artifacts.columns]:
        col = artifacts[m].astype(float)
        label = _artifact_label(m)
        top, spread = float(col.abs().max()), float(col.max() - col.min())
        if top < floor:
            level = "0.000" if top < 5e-4 else f"below {floor:g}"
            lines.append(f"{label}: all runs {level}: none detected")
            continue
        if spread <= max(floor, rel * top):
            lines.append(f"{label}: all runs {float(col.mean()):.3g} (spread {spread:.2g}): no run stands out")
            continue
        run = worst_run(artifacts, m)
        val = float(artifacts.loc[run, m])
        if "baseline" not in artifacts.index:
            lines.append(f"{label}: highest in {run!r} ({_num(val)})")
            continue
        base = float(artifacts.loc["baseline", m])
        if val - base <= max(floor, above * abs(base)):
            lines.append(f"{label}: none detected above the baseline's {_num(base)} (highest: {run!r}, {_num(val)})")
            continue
        ratio = f", {val / base:.1f}x the baseline's {_num(base)}" if base > floor else f" vs baseline {_num(base)}"
        lines.append(f"{label}: highest in {run!r} ({_num(val)}{ratio})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- pixel optimization
PIXEL_DEFAULTS = {"steps": 200, "lr": 0.01, "crop": 96, "anchor_weight": 1.0, "terms": ["gmsd"],
                  "start": ["bicubic", "baseline"], "with": ["alone"]}
"""Defaults of the profile's ``pixels`` section (notebook 03's pixel-optimization gallery)."""


def pixel_settings(cfg: Mapping[str, Any]) -> dict:
    """The profile's ``pixels`` section over :data:`PIXEL_DEFAULTS`; kit terms (``arch@dataset``)
    whose checkpoint is not on disk are left out (train them in notebook 00 / ``nriqa train-iqa``)."""

    s = {**PIXEL_DEFAULTS, **dict(cfg.get("pixels") or {})}
    unknown = set(s["start"]) - {"bicubic", "baseline"}
    if unknown:
        raise ValueError(f"pixels.start: unknown start(s) {sorted(unknown)}; use bicubic and/or baseline")
    known = []
    for t in s["terms"]:
        try:
            quality.card(t)
            known.append(t)
        except ValueError:
            if "@" not in t:
                raise
    s["terms"] = known
    return s


def pixel_starts(cfg: Mapping[str, Any], outputs: Mapping[str, Mapping[str, torch.Tensor]], *,
                 clip: str | None = None, frame: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Start images ``{"bicubic" | "baseline": (1,3,c,c)}`` and the ground truth ``(1,3,c,c)``:
    the centre ``pixels.crop`` px of one held-out frame (``clip``: default the first test clip),
    as the bicubic x scale upscale of its LR frame and as the baseline run's output
    (``outputs`` of :func:`nriqa.study.judging.run_outputs`)."""
    s = pixel_settings(cfg)
    clips = {c["name"]: c for c in test_set(cfg)}
    name = clip or next(iter(clips))
    gt = outputs["ground truth"][name][frame]
    c = min(int(s["crop"]), *gt.shape[-2:])
    h, w = gt.shape[-2:]
    top, left = (h - c) // 2, (w - c) // 2

    def cut(x: torch.Tensor) -> torch.Tensor:
        return x[..., top:top + c, left:left + c].reshape(1, 3, c, c).clamp(0, 1).float()

    starts = {}
    for kind in s["start"]:
        if kind == "bicubic":
            lr = clips[name]["lr"][0, frame]
            starts[kind] = cut(bicubic_resize(lr, size=(h, w)))
        else:
            starts[kind] = cut(outputs["baseline"][name][frame])
    return starts, cut(gt)


def profile_pixel_gallery(cfg: Mapping[str, Any], starts: Mapping[str, torch.Tensor], gt: torch.Tensor):
    """:func:`nriqa.analysis.pixel_optimization.pixel_gallery` with the profile's ``pixels`` settings."""

    s = pixel_settings(cfg)
    return run_pixel_gallery(starts, gt, s["terms"], variants=s["with"], steps=int(s["steps"]), lr=float(s["lr"]),
                             anchor_weight=float(s["anchor_weight"]))


def busiest_window(diffs: list[torch.Tensor], size: int) -> tuple[int, int]:
    """``(y, x)`` of the ``size``-px window where the differences ``diffs`` (each ``(1,3,H,W)`` or
    ``(3,H,W)``, one shape) are largest (mean absolute value over all of them)."""
    import torch.nn.functional as F

    hw = diffs[0].shape[-2:]
    diff = sum(d.reshape(-1, *d.shape[-3:]).abs().mean((0, 1)) for d in diffs).reshape(1, 1, *hw)
    size = min(size, *hw)
    pooled = F.avg_pool2d(diff, size, stride=max(1, size // 4))[0, 0]
    iy, ix = divmod(int(pooled.argmax()), pooled.shape[-1])
    return iy * max(1, size // 4), ix * max(1, size // 4)


def gallery_figure(gallery, *, window: int = 40, zoom: int = 3, title: str | None = None):
    """Figure of a pixel gallery: rows = (start, variant), columns = the start then each term; each
    tile is the same ``window``-px crop (where the results differ most from their starts) enlarged
    ``zoom`` x, over a table of the artifact detectors' scores (named as in :data:`ARTIFACTS`) with
    arrows for their change from the start tile (:func:`nriqa.viz.plots.tile_score_grid`)."""

    imgs, scores = gallery.images, gallery.scores
    starts = {(s, v): imgs[(s, v, "start")] for (s, v, t) in imgs if t == "start"}
    y, x = busiest_window([im - starts[(s, v)] for (s, v, t), im in imgs.items() if t != "start"]
                          or list(starts.values()), window)
    tiles: dict = {}
    tables: dict = {}
    for (s, v, t), im in imgs.items():
        row = f"{s} start" + ("" if v == "alone" else f"\n+ {v} to start")
        tiles.setdefault(row, {})[t] = zoom_tile(im[0], y=y, x0=x, size=window, zoom=zoom)
        tables.setdefault(row, {})[t] = scores.loc[(s, v, t)]
    tables = {row: pd.DataFrame(cols) for row, cols in tables.items()}
    note = ("Under each tile: each artifact detector's score against the ground truth (log2 energy ratio; "
            f"periodic_pattern: {SCALES['periodic_pattern']}; 0 = as clean as the ground truth, higher = more "
            "artifact). Arrows and colours: change from the start tile (\u2191 red: more artifact, \u2193 blue: "
            f"less, none: within 0.02). Tiles: a {window}-px crop enlarged {zoom}\u00d7.")
    return tile_score_grid(tiles, tables, reference="start", tie=0.02, title=title, note=note)


def inheritance(scores: pd.DataFrame, artifacts: pd.DataFrame, *, start: str = "baseline",
                variant: str | None = None) -> pd.DataFrame:
    """How much of what pixel optimization does the fine-tunes inherit: per term that is both in the
    gallery and a fine-tune run (``artifacts`` rows, a ``baseline`` row among them) and per detector,
    the change of the pixel-optimized image from its ``start`` and the change of the fine-tuned run
    from the baseline run. Columns: term, detector, pixels, finetune (higher = more artifact)."""
    variants = list(dict.fromkeys(scores.index.get_level_values("with")))
    v = variant or ("charbonnier" if "charbonnier" in variants else variants[0])
    base = scores.loc[(start, v, "start")]
    rows = []
    for t in dict.fromkeys(scores.index.get_level_values("term")):
        if t == "start" or t not in artifacts.index or (start, v, t) not in scores.index:
            continue
        for d in scores.columns:
            if d in artifacts.columns:
                rows.append({"term": t, "detector": d, "pixels": float(scores.loc[(start, v, t), d] - base[d]),
                             "finetune": float(artifacts.loc[t, d] - artifacts.loc["baseline", d])})
    return pd.DataFrame(rows, columns=["term", "detector", "pixels", "finetune"])


def describe_inheritance(table: pd.DataFrame, *, tie: float = 1e-3) -> str:
    """Measured sentences: per term, how many detectors move the same way in pixel optimization and
    in fine-tuning, and the Spearman correlation over all (term, detector) pairs."""
    if table.empty:
        return "no term is both in the pixel gallery and among the fine-tunes: nothing to compare"
    import numpy as np

    lines = []
    for t, rows in table.groupby("term", sort=False):
        moved = rows[(rows["pixels"].abs() > tie) | (rows["finetune"].abs() > tie)]
        same = int((np.sign(moved["pixels"].round(6)) == np.sign(moved["finetune"].round(6))).sum())
        lines.append(f"{t}: {same} of {len(moved)} moving detectors change the same way in pixels and fine-tune"
                     + (" (no detector moves)" if moved.empty else ""))
    if len(table) >= 3 and table["pixels"].nunique() > 1 and table["finetune"].nunique() > 1:
        rho = table["pixels"].rank().corr(table["finetune"].rank())
        lines.append(f"Spearman rho over {len(table)} (term, detector) pairs: {rho:.2f}")
    else:
        lines.append("too few varying pairs for a correlation")
    return "\n".join(lines)


# --------------------------------------------------------------------------- detector check, crops
def detector_confusion(strength: float = 0.5, *, clips: tuple[str, ...] = ("bikes-shot3/00", "carphone/00"),
                       frames: int = 4, size: int = 96) -> pd.DataFrame:
    """:func:`nriqa.analysis.inject.confusion_table` on real video frames: the centre ``size`` px of
    the first ``frames`` frames of the named embedded test clips (rows = detectors, columns =
    injected kinds at ``strength``; a good detector is high on its own kind only)."""

    named = {c.name: c.hr for c in embedded_clips("test", progress=False)}
    picked = []
    for n in clips:
        h, w = named[n].shape[-2:]
        picked.append(named[n][:frames, :, (h - size) // 2:(h - size) // 2 + size,
                               (w - size) // 2:(w - size) // 2 + size])
    return confusion_table(picked, strength=strength)


def margin_crops(cfg: Mapping[str, Any], *, size: int = 32, zoom: int = 3, seed: int = 0) -> dict[str, dict]:
    """The positive controls behind the profile's ``artifact_margins``, per detector: on the test clip
    whose value is nearest the detector's margin (a typical clip), the ``size``-px window where the
    injected artifact scores highest, enlarged ``zoom`` x, clean and with the detector's own kind
    injected at the profile's strength (the values and seed of :func:`nriqa.analysis.margins.margin_table`).
    ``flicker``'s tiles show frame t left of the middle and frame t+1 right of it (a flicker is a seam).
    Returns ``{detector: {clean, injected, kind, strength, clean_value, value, margin, clip, frame, y,
    x}}`` for :func:`nriqa.viz.plots.injected_pairs`; values in the detector's units, higher = more."""
    from nriqa.analysis.artifacts import MEASURES
    from nriqa.analysis.inject import DETECTS, inject
    from nriqa.analysis.margins import clip_value, profile_strengths
    from nriqa.viz.plots import zoom_tile

    margins, strengths = profile_margins(cfg), profile_strengths(cfg)
    clips = {str(c["name"]): c["hr"][0] for c in test_set(cfg)}
    out: dict[str, dict] = {}
    for d in margins:
        kind, s = DETECTS[d], strengths[DETECTS[d]]
        runs = {}  # clip -> (injected clip, its ArtifactMap): the injected values of margin_table
        for name, c in clips.items():
            dirty = inject(c, kind, s, seed=seed)
            runs[name] = (dirty, MEASURES[d](dirty, c))
        name = min(runs, key=lambda n: abs(float(runs[n][1].scores.float().mean()) - margins[d]))
        clean, (dirty, res) = clips[name], runs[name]
        side = min(size, *clean.shape[-2:])
        crop = top_crops(dirty, clean, lambda p, g, r=res: r, k=1, size=side)[0]

        def tile(x: torch.Tensor, f: int = crop.frame) -> torch.Tensor:
            t = zoom_tile(x[f], y=crop.y, x0=crop.x, size=side, zoom=zoom)
            if d != "flicker":
                return t
            nxt = zoom_tile(x[f + 1], y=crop.y, x0=crop.x, size=side, zoom=zoom)
            return torch.cat([t[..., : t.shape[-1] // 2], nxt[..., t.shape[-1] // 2:]], -1)

        out[d] = {"clean": tile(clean), "injected": tile(dirty), "kind": kind, "strength": float(s),
                  "clean_value": clip_value(clean, clean, d), "value": float(res.scores.float().mean()),
                  "margin": margins[d], "clip": name, "frame": crop.frame, "y": crop.y, "x": crop.x}
    return out


def runs_with_artifact(artifacts: pd.DataFrame, measure: str, k: int = 3, *, floor: float = 1e-3,
                       rel: float = 0.01) -> list[str]:
    """The up to ``k`` runs (baseline excluded) with *more* of ``measure`` than the baseline, highest
    first: above the baseline row by more than ``max(floor, rel * |baseline|)`` (the ties of
    :func:`describe_artifacts`; higher = more artifact). Empty when no run has more (a table without a
    ``baseline`` row: the ``k`` highest runs)."""
    col = artifacts[measure].astype(float)
    others = col.drop(index="baseline", errors="ignore")
    if "baseline" in col.index:
        base = float(col["baseline"])
        others = others[others > base + max(floor, rel * abs(base))]
    return list(others.sort_values(ascending=False).index[:k])


def no_crops_line(measure: str) -> str:
    """What notebook 03 prints instead of a crop figure when :func:`runs_with_artifact` is empty."""
    return f"{measure}: none detected \u2014 no run has more than the baseline (no crop figure)"


def _sig(v: float) -> str:
    return f"{v:.3g}" if v != 0 else "0"


def crops_figure(outputs: Mapping[str, Mapping[str, torch.Tensor]], artifacts: pd.DataFrame, measure: str, *,
                 k_runs: int = 3, size: int = 32, zoom: int = 3, gain: float = 4.0, floor: float = 1e-3,
                 rel: float = 0.01):
    """Crops where ``measure`` is highest for the run with most of it, shown for ground truth, the
    baseline and the up to ``k_runs`` runs with more of it than the baseline (:func:`runs_with_artifact`);
    ``None`` when no run has more (print :func:`no_crops_line` instead). One row of images and one row of
    differences to the baseline (amplified ``gain`` times, grey = equal); under each tile the run's
    ``measure`` score on that clip (three significant digits) and its change from the baseline (arrow,
    or '= baseline' within ``max(floor, rel * |baseline score|)``)."""

    shown = runs_with_artifact(artifacts, measure, k_runs, floor=floor, rel=rel)
    if not shown:
        return None
    clip = worst_clip(outputs, shown[0], measure)
    gt = outputs["ground truth"][clip]
    size = min(size, *gt.shape[-2:])
    crop = top_crops(outputs[shown[0]][clip], gt, measure, k=1, size=size)[0]
    frame = min(crop.frame + (1 if measure == "flicker" else 0), gt.shape[0] - 1)
    cols = {"ground truth": gt, "baseline": outputs["baseline"][clip], **{r: outputs[r][clip] for r in shown}}
    score = {name: float(measure_artifacts(fr, gt, [measure])[measure].float().mean()) for name, fr in cols.items()}
    tie = max(floor, rel * abs(score["baseline"]))
    diff_row = f"difference to baseline,\namplified {gain:g}\u00d7"
    tiles: dict = {"image": {}, diff_row: {}}
    caps: dict = {"image": {}}
    for name, fr in cols.items():
        tiles["image"][name] = zoom_tile(fr[frame], y=crop.y, x0=crop.x, size=size, zoom=zoom)
        tiles[diff_row][name] = zoom_tile(difference_tile(fr[frame], cols["baseline"][frame], gain=gain),
                                          y=crop.y, x0=crop.x, size=size, zoom=zoom)
        d = score[name] - score["baseline"]
        change = "" if name in ("ground truth", "baseline") else (
            "= baseline" if abs(d) <= tie else ("\u2191 " if d > 0 else "\u2193 ") + f"{d:+.2g} vs baseline")
        caps["image"][name] = f"{measure}\n{_sig(score[name])}" + (f"\n{change}" if change else "")
    scale = SCALES.get(measure, "log2 energy ratio against the ground truth")
    note = (f"{measure} on clip {clip} ({scale}; 0 = clean, higher = more artifact; \u2191 more than the "
            f"baseline, \u2193 less). Crop: frame {frame}, top-left (y {crop.y}, x {crop.x}), {size}\u00d7{size} px "
            f"enlarged {zoom}\u00d7.")
    return tile_grid(tiles, captions=caps, title=f"{measure}: the runs with more of it than the baseline",
                     note=note, cell=1.5)

# --------------------------------------------------------------------------- the temporal judge
TEMPORAL_JUDGE = "cvvdp"
"""The judge shown next to the ``flicker`` detector: ColorVideoVDP (:mod:`nriqa.quality.cvvdp_measure`), a
full-reference video measure in JOD (10 = no visible difference from the ground truth, lower = a larger one)."""


def _judge_from_panel(scores: pd.DataFrame | None, judge: str, runs: list[str]) -> dict[str, float] | None:
    """Run -> mean over the test clips of ``judge``'s clip score in the cached panel ``scores`` (each run's
    first seed, the outputs :func:`nriqa.study.judging.run_outputs` shows); None when a run lacks it."""
    if scores is None or "measure" not in scores.columns:
        return None
    mine = first_seed(scores[scores["measure"] == judge])
    if mine.empty:
        return None
    mine = mine[mine["dataset"] == mine["dataset"].iloc[0]] if "dataset" in mine.columns else mine
    per_run = mine.groupby(["run", "clip"])["score"].mean().groupby(level="run").mean()  # a clip's frames share it
    if not set(runs) <= set(per_run.index):
        return None
    return {r: float(per_run[r]) for r in runs}


def _judge_computed(outputs: Mapping[str, Mapping[str, torch.Tensor]], judge: str, runs: list[str],
                    device: str | torch.device) -> dict[str, float]:
    """Run -> mean over the test clips of ``judge`` on each whole output clip against its ground truth."""
    m = quality.create(judge, device=device)
    gt = outputs["ground truth"]
    out = {}
    with torch.no_grad():
        for r in runs:
            vals = [float(m(frames[None].float().to(device), gt[name][None].float().to(device)))
                    for name, frames in outputs[r].items()]
            out[r] = sum(vals) / len(vals)
    return out


def temporal_judge_table(outputs: Mapping[str, Mapping[str, torch.Tensor]], artifacts: pd.DataFrame,
                         scores: pd.DataFrame | None = None, *, judge: str = TEMPORAL_JUDGE,
                         device: str | torch.device = "cpu") -> pd.DataFrame:
    """ColorVideoVDP next to the ``flicker`` detector, per run (rows: ``artifacts``' runs, baseline first).

    Columns: ``jod`` (``judge``'s score of the run's output clips against the ground truth, mean over the
    test clips, each run's first seed; higher = closer), ``jod_lost`` (the baseline's ``jod`` minus the
    run's: > 0 = a larger visible difference than the baseline's), ``flicker`` (from ``artifacts``,
    :func:`nriqa.study.judging.artifact_table`; higher = more) and ``flicker_added`` (the run's minus the
    baseline's). The JODs come from the cached panel ``scores`` when ``judge`` is in the profile's panel
    (``attrs["source"] == "panel"``), else they are computed here from ``outputs`` on ``device``
    (``"computed"``; :func:`nriqa.study.judging.run_outputs`). Without a baseline row the changes are NaN."""
    runs = list(artifacts.index)
    runs = ["baseline", *[r for r in runs if r != "baseline"]] if "baseline" in runs else runs
    values = _judge_from_panel(scores, judge, runs)
    source = "panel" if values is not None else "computed"
    if values is None:
        values = _judge_computed(outputs, judge, runs, device)
    t = pd.DataFrame({"jod": pd.Series(values, dtype=float), "flicker": artifacts["flicker"].astype(float)}).loc[runs]
    has_base = "baseline" in t.index
    t["jod_lost"] = t.loc["baseline", "jod"] - t["jod"] if has_base else float("nan")
    t["flicker_added"] = t["flicker"] - t.loc["baseline", "flicker"] if has_base else float("nan")
    t = t[["jod", "jod_lost", "flicker", "flicker_added"]]
    t.index.name = "run"
    t.attrs.update(source=source, judge=judge)
    return t


def temporal_judge_note(table: pd.DataFrame) -> str:
    """Where :func:`temporal_judge_table`'s JODs come from, in one line (printed under it)."""
    judge = table.attrs.get("judge", TEMPORAL_JUDGE)
    if table.attrs.get("source") == "panel":
        return f"{judge}: read from the panel's cached evaluation scores (each arm's first seed)"
    return (f"{judge} is not in the profile's panel: computed here on the runs' outputs (each arm's first "
            f"seed); add {judge} to the profile's `panel` to score it once with the other measures")


def temporal_judge_figure(table: pd.DataFrame, *, title: str | None = None):
    """Two bar panels per fine-tune arm of :func:`temporal_judge_table`: ``jod_lost`` and ``flicker_added``
    (both: right of 0 = worse than the baseline), each bar labelled with its value."""
    from matplotlib.figure import Figure  # imported when drawn, as nriqa.viz does

    judge = table.attrs.get("judge", TEMPORAL_JUDGE)
    arms = [r for r in table.index if r != "baseline"] or list(table.index)
    fig = Figure(figsize=(8, 1.6 + 0.4 * len(arms)), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    panels = ((axes[0], "jod_lost", f"{judge}: JOD lost vs the baseline"),
              (axes[1], "flicker_added", "flicker: added vs the baseline"))
    for ax, col, label in panels:
        vals = table.loc[arms, col].astype(float)
        ax.barh(range(len(arms)), vals.fillna(0).to_numpy(),
                color=["tab:red" if v > 0 else "tab:blue" for v in vals.fillna(0)])
        ax.axvline(0, color="black", lw=0.8)
        for i, v in enumerate(vals):
            ax.text(0 if v != v else v, i, " n/a" if v != v else f" {v:+.3g} ", va="center", fontsize=8,
                    ha="left" if not v < 0 else "right")
        ax.set_xlabel(label, fontsize=10)
        ax.margins(x=0.3)
        ax.tick_params(labelsize=8)
    axes[0].set_yticks(range(len(arms)), arms, fontsize=9)
    axes[0].invert_yaxis()
    if title:
        fig.suptitle(title, fontsize=11)
    if "baseline" in table.index:
        base = table.loc["baseline"]
        fig.supxlabel(f"red: worse than the baseline (a larger visible difference from the ground truth; more "
                      f"flicker), blue: better. Baseline: {base['jod']:.3g} JOD, flicker {base['flicker']:.3g}.",
                      fontsize=8)
    return fig


# --------------------------------------------------------------------------- paper A verdicts

def nr_terms(grid: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The grid entries that add one no-reference (NR-IQA) term alone (label == the term)."""
    return [label for label, terms in grid.items()
            if len(terms) == 1 and label in terms and vt.modes([label], "NR")]


def lpips_term(cfg: Mapping[str, Any]) -> str | None:
    """The profile's LPIPS-type loss term: the first term of
    ``finetune.extra_terms`` or ``finetune.combos`` whose name contains ``lpips``."""
    ft = cfg.get("finetune", {})
    names = [n for n, w in (ft.get("extra_terms") or {}).items() if w is not None]
    names += [n for combo in ft.get("combos") or [] for n in combo]
    return next((n for n in names if "lpips" in n.lower()), None)


def nr_lpips_pairs(grid: Mapping[str, Mapping[str, Any]], lpips: str | None) -> list[tuple[str, str]]:
    """``(combo label, NR term)``: the grid's combos of one NR term with ``lpips`` whose NR term
    also has a run of its own."""
    singles = set(nr_terms(grid))
    out = []
    for label, terms in grid.items():
        names = [n for n in terms if n != lpips]
        if lpips in terms and len(terms) == 2 and len(names) == 1 and names[0] in singles:
            out.append((label, names[0]))
    return out


def paper_a_verdicts(cfg: Mapping[str, Any], model: str, runs: Mapping[str, Any], scores: pd.DataFrame,
                     grid: Mapping[str, Mapping[str, Any]]) -> list[claims.Verdict]:
    """Paper A's table on notebook 02's arms (every seed and clip): the primary rows of A1-A4
    (:func:`nriqa.analysis.claims.paper_a_primary`, pooled over the NR-only arms) first, then the
    secondary rows decided on Benjamini-Hochberg q (:func:`nriqa.analysis.claims.family`):

    - A1 per NR term: the held-out NR judges (sharing no training data with the term:
      :func:`nriqa.study.verdicts.held_out_judges`), its own score, the FR measures;
    - A2 per NR term: the LPIPS-type judge (:func:`lpips_term`, scored here if the panel lacks it);
    - A3 per NR + LPIPS pair: the panel and each artifact detector against the NR term alone;
    - A1/A4 per (NR term, detector): adds / artifact-free / inconclusive against the detector's
      visibility margin (the profile's ``artifact_margins``, :mod:`nriqa.analysis.margins`).

    Judges' changes are standardised by the seed-to-seed spread of the fidelity-only arm
    (:func:`nriqa.study.verdicts.standardised_effects`); ``runs``: :func:`nriqa.study.runs.finetune_runs`;
    ``scores``: their panel scores."""
    s = claims.settings(cfg)
    margins = profile_margins(cfg)
    panel = sorted(set(scores["measure"]))
    terms = nr_terms(grid)
    values = vt.artifact_values(cfg, runs)
    changes = vt.artifact_changes(values)
    lp = lpips_term(cfg)
    extra = [t for t in terms if t not in panel] + ([lp] if lp is not None and lp not in panel and terms else [])
    if extra:  # score the arms on their own measures (and the LPIPS judge) too
        more = evaluate_runs(cfg, vt.arms_only(runs, list(dict.fromkeys([*terms, vt.SPREAD_ARM]))), model=model,
                             panel=extra)
        scores = pd.concat([scores, more], ignore_index=True)
    spread = vt.spread(scores)
    nr_judges = vt.modes(panel, "NR")
    held = {t: vt.standardised_effects(scores, vt.held_out_judges(nr_judges, [t]), spread, terms=[t]) for t in terms}
    held_out = _stack({t: h[h["run"] == t] for t, h in held.items() if h is not None})
    fr = vt.standardised_effects(scores, vt.modes(panel, "FR"), spread)
    lp_fx = vt.standardised_effects(scores, [lp], spread) if lp is not None else None
    rows: list[claims.Verdict] = []
    for t in terms:
        rows += claims.naive_nr_tuning(t, held_out_nr=held.get(t), own=vt.standardised_effects(scores, [t], spread),
                                       fr=fr, s=s)
    if lp_fx is not None and terms:
        rows += claims.lpips_judges_nr_badly(lp_fx, terms, lp, s)
    pairs = nr_lpips_pairs(grid, lp)
    panel_fx = vt.standardised_effects(scores, panel, spread)
    for combo, single in pairs:
        rows += claims.lpips_mitigates(combo, single, panel=panel_fx, artifacts=changes, s=s)
    rows += claims.artifacts_added(changes, values, terms, margins, s)
    rows += claims.paper_a_primary(held_out=held_out, lpips=lp_fx, lpips_name=lp, changes=changes, values=values,
                                   margins=margins, terms=terms, pairs=pairs, s=s)
    return claims.family(rows, alpha=s.alpha)


def _stack(parts: Mapping[str, pd.DataFrame]) -> pd.DataFrame | None:
    frames = [p for p in parts.values() if p is not None and len(p)]
    return pd.concat(frames, ignore_index=True) if frames else None


def artifact_verdict_counts(verdicts: list[claims.Verdict], terms: list[str]) -> pd.DataFrame:
    """Per NR term, how many detectors' rows read adds / artifact-free / inconclusive (the (term,
    detector) rows of :func:`paper_a_verdicts`; ``floor``: inconclusive because the detector saw nothing)."""
    out = []
    for t in terms:
        mine = [v for v in verdicts if not v.primary and v.claim.startswith(f"naive {t} fine-tuning adds ")
                and v.note.split(";")[0].endswith("minus the baseline's")]
        out.append({"term": t, "adds": sum(v.verdict == claims.AGREES for v in mine),
                    "artifact-free": sum(v.verdict == claims.EQUIVALENT for v in mine),
                    "inconclusive": sum(v.verdict == claims.INCONCLUSIVE for v in mine),
                    "floor": sum(claims.FLOOR_NOTE in v.note for v in mine)})
    return pd.DataFrame(out, columns=["term", "adds", "artifact-free", "inconclusive", "floor"])


