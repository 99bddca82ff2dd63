"""Artifact margins from positive controls: one margin per detector, each the rise of that detector
when its own artifact is put into real frames at the smallest strength a person can see.

The verdict "fine-tuning with term T is artifact-free" asks whether each artifact measure rises by
less than a margin over the baseline. The seven detectors of :data:`nriqa.analysis.artifacts.MEASURES`
are on scales of their own, so one margin for all of them would follow from the scales, not from what
is visible. Here detector ``d`` gets

    ``margin_d = mean over clips c of [ v_d(inject(c, kind_d, s), c) - v_d(c, c) ]``

with ``v_d(pred, gt)`` the value the verdicts compare (:func:`nriqa.study.verdicts.artifact_values`):
the mean over frames (``flicker``: over frame pairs) of :func:`nriqa.analysis.artifacts.measure_artifacts`,
output against ground truth, at the profile's test resolution. ``c`` are the clean ground-truth
frames of the profile's test clips, used as the "output" too, so ``v_d(c, c)`` is the detector's floor
(0 for every detector). ``kind_d`` = :data:`nriqa.analysis.inject.DETECTS` ``[d]``, the injected kind
``d`` is meant to find; ``s`` = the smallest strength at which that kind is visible (:data:`VISIBLE`).
Units: those of each detector (log2 excess over the ground truth; ``periodic_pattern``: log2(1 + RMS
in 8-bit grey levels)); higher = more artifact.

A profile holds the numbers in its ``artifact_margins`` section (detector -> ``{margin, strength,
kind, source}``), printed by ``python -m nriqa.analysis.margins --profile demo``;
:func:`profile_margins` reads them.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Mapping, Sequence

import pandas as pd
import torch

from nriqa.errors import ConfigError

from .artifacts import MEASURES, measure_artifacts
from .inject import DETECTS, inject

Tensor = torch.Tensor

#: injected kind -> the smallest strength at which it was visible in 48-64 px crops of the demo's test
#: frames (HR, up to 256 x 192 px) enlarged 3x next to the clean crop (ladder 0.02, 0.05, 0.1, 0.15,
#: 0.2, 0.35, 0.5; blur 0.1 to 0.7). What was seen at that strength, and just below it:
VISIBLE: dict[str, float] = {
    "coloured_dots": 0.1,   # faint green/magenta specks on carphone's flat wall; none at 0.05; obvious at 0.2
    "dotted_edges": 0.2,    # green dots along the blue/white stripes and poster edges; at 0.15 only at 4x zoom
    "eyes": 0.05,           # faint grey spots on carphone's wall and beside the sign; dark-in-bright rings at 0.1
    "ringing": 0.1,         # a faint extra dark band beside the car window's frame; clear bands at 0.2; none at 0.05
    "blur": 0.2,            # (sigma 0.5 px) fur strands, helmet vents and branches softer; 0.1 identical to clean
    "flicker": 0.1,         # frames t | t+1 split in one crop: a brightness seam on the flat wall; a hint at 0.05
    "periodic": 0.1,        # a faint fine grid on the flat pink background and the wall; clear at 0.2; none at 0.05
}

SOURCE = "inject {kind} at strength {strength:g} on the {profile}'s {n} test clips; " \
         "the smallest strength visible in notebook 03's crops"
"""The ``source`` line of each detector's entry in a profile's ``artifact_margins``."""

COMMAND = "python -m nriqa.analysis.margins --profile {profile}"


def clip_value(pred: Tensor, gt: Tensor, detector: str) -> float:
    """The value a verdict compares: ``detector``'s scores of ``pred`` against ``gt`` (one clip
    ``(T,3,H,W)`` in ``[0,1]``), averaged over frames (``flicker``: frame pairs); 0 = clean."""
    return float(measure_artifacts(pred, gt, [detector])[detector].float().mean())


def _named(clips: Sequence[Tensor] | Mapping[str, Tensor]) -> dict[str, Tensor]:
    named = {str(k): v for k, v in clips.items()} if isinstance(clips, Mapping) else \
        {str(i): v for i, v in enumerate(clips)}
    if not named:
        raise ValueError("clips is empty: nothing to inject into")
    return named


def _detectors(strengths: Mapping[str, float], detectors: Sequence[str] | None) -> list[str]:
    if detectors is None:
        return [d for d in MEASURES if DETECTS[d] in strengths]
    unknown = [d for d in detectors if d not in DETECTS]
    if unknown:
        raise ValueError(f"unknown detector(s) {unknown}; known: {list(DETECTS)}")
    missing = [d for d in detectors if DETECTS[d] not in strengths]
    if missing:
        raise ValueError(f"no strength for the kind(s) {[DETECTS[d] for d in missing]} that {missing} detect")
    return list(detectors)


def margin_table(clips: Sequence[Tensor] | Mapping[str, Tensor], strengths: Mapping[str, float], *,
                 detectors: Sequence[str] | None = None, seed: int = 0) -> pd.DataFrame:
    """``detector, kind, strength, clip, clean, injected, change``: per detector and clean clip
    ``(T,3,H,W)`` in ``[0,1]`` (T >= 2; a mapping names them), :func:`clip_value` of the clip against
    itself (``clean``, the floor) and of ``inject(clip, DETECTS[detector], strengths[kind], seed=seed)``
    against the clip (``injected``); ``change = injected - clean`` (>= 0 up to the floor).
    ``detectors``: default every detector whose kind has a strength."""
    named = _named(clips)
    rows = []
    for d in _detectors(strengths, detectors):
        kind = DETECTS[d]
        s = float(strengths[kind])
        for name, clip in named.items():
            clean = clip_value(clip, clip, d)
            injected = clip_value(inject(clip, kind, s, seed=seed), clip, d)
            rows.append({"detector": d, "kind": kind, "strength": s, "clip": name, "clean": clean,
                         "injected": injected, "change": injected - clean})
    return pd.DataFrame(rows, columns=["detector", "kind", "strength", "clip", "clean", "injected", "change"])


def artifact_margins(clips: Sequence[Tensor] | Mapping[str, Tensor], strengths: Mapping[str, float], *,
                     detectors: Sequence[str] | None = None, seed: int = 0) -> dict[str, float]:
    """``{detector: margin}``: the mean over ``clips`` of :func:`margin_table`'s ``change`` (the
    detector's value with its own kind injected at ``strengths[kind]`` minus its value on the clean
    frames), in the detector's units. Deterministic for a given ``seed``."""
    table = margin_table(clips, strengths, detectors=detectors, seed=seed)
    means = table.groupby("detector", sort=False)["change"].mean()
    return {str(d): float(v) for d, v in means.items()}


def clean_clips(cfg: Mapping[str, Any]) -> dict[str, Tensor]:
    """``{clip name: (T,3,H,W)}``: the ground-truth frames of the profile's test clips, the ones the
    verdicts judge (:func:`nriqa.data.build_test_set` of the ``data`` section)."""
    from nriqa.data import build_test_set

    return {str(c["name"]): c["hr"][0] for c in build_test_set(dict(cfg["data"]))}


def _entries(cfg: Mapping[str, Any], detectors: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    """The profile's ``artifact_margins`` entries of ``detectors``, checked: a mapping with a ``kind``
    that is the detector's, a ``strength`` in ``[0, 1]`` and a ``margin`` >= 0 (numbers)."""
    name = cfg.get("name", "?")
    section = cfg.get("artifact_margins") or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"profile {name!r}: artifact_margins must map detector -> {{margin, strength, kind, "
                          f"source}}, got {type(section).__name__}")
    fix = f"run `{COMMAND.format(profile=name)}` and paste its block into the profile"
    out = {}
    for d in detectors:
        e = section.get(d)
        if not isinstance(e, Mapping) or e.get("margin") is None:
            raise ConfigError(f"profile {name!r}: artifact_margins has no margin for detector {d!r}; {fix}")
        for key, low, high in (("margin", 0.0, float("inf")), ("strength", 0.0, 1.0)):
            v = e.get(key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not low <= v <= high:
                raise ConfigError(f"profile {name!r}: artifact_margins.{d}.{key} must be a number in "
                                  f"[{low:g}, {high:g}], got {v!r}; {fix}")
        if e.get("kind") != DETECTS[d]:
            raise ConfigError(f"profile {name!r}: artifact_margins.{d}.kind must be {DETECTS[d]!r} (the kind "
                              f"{d!r} detects), got {e.get('kind')!r}")
        out[d] = e
    return out


def profile_margins(cfg: Mapping[str, Any], detectors: Sequence[str] = tuple(MEASURES)) -> dict[str, float]:
    """``{detector: margin}`` from the profile's ``artifact_margins`` section (the largest rise of
    each artifact measure over the baseline that still counts as artifact-free, in that measure's
    units); :class:`~nriqa.errors.ConfigError` naming the detector when one lacks a margin."""
    return {d: float(e["margin"]) for d, e in _entries(cfg, detectors).items()}


def profile_strengths(cfg: Mapping[str, Any], detectors: Sequence[str] = tuple(MEASURES)) -> dict[str, float]:
    """``{injected kind: strength}`` the profile's margins were measured at (its ``artifact_margins``)."""
    return {DETECTS[d]: float(e["strength"]) for d, e in _entries(cfg, detectors).items()}


def margins_block(cfg: Mapping[str, Any], strengths: Mapping[str, float] | None = None, *,
                  clips: Mapping[str, Tensor] | None = None, seed: int = 0) -> str:
    """The profile's ``artifact_margins:`` section as YAML text: every detector's margin on the
    profile's test clips (:func:`clean_clips`) at ``strengths`` (default :data:`VISIBLE`)."""
    strengths = dict(VISIBLE if strengths is None else strengths)
    clips = clean_clips(cfg) if clips is None else clips
    margins = artifact_margins(clips, strengths, detectors=list(MEASURES), seed=seed)
    name = str(cfg.get("name", "?"))
    lines = [f"# printed by `{COMMAND.format(profile=name)}` (nriqa.analysis.margins): per detector, its",
             "# rise on the test clips' ground truth when its own artifact is injected at the smallest visible",
             "# strength; the largest rise over the baseline that still counts as artifact-free (its units,",
             "# at this profile's test resolution: a profile with other test clips needs a block of its own)",
             "artifact_margins:"]
    for d, m in margins.items():
        kind = DETECTS[d]
        source = SOURCE.format(kind=kind, strength=strengths[kind], profile=name, n=len(clips))
        lines += [f"  {d}:", f"    margin: {m:.8g}", f"    strength: {strengths[kind]:g}", f"    kind: {kind}",
                  f'    source: "{source}"']
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nriqa.analysis.margins --profile demo``: print the profile's ``artifact_margins`` block."""
    from nriqa.compute import use_job_numerics
    from nriqa.config import load_profile

    p = argparse.ArgumentParser(prog="python -m nriqa.analysis.margins", description=main.__doc__)
    p.add_argument("--profile", default="demo", help="profile whose test clips give the margins (default demo)")
    p.add_argument("--strengths", choices=("visible", "profile"), default="visible",
                   help="visible: nriqa.analysis.margins.VISIBLE (default); profile: the profile's own strengths")
    p.add_argument("--seed", type=int, default=0, help="seed of the injections' random placements")
    args = p.parse_args(argv)
    cfg = load_profile(args.profile)
    use_job_numerics(cfg)  # the profile's torch threads: the same numbers on any machine
    strengths = profile_strengths(cfg) if args.strengths == "profile" else None
    sys.stdout.write(margins_block(cfg, strengths, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
