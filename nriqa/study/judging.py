"""Judging runs on the profile's held-out clips: panel scores, mean gains, outputs, artifacts.

Gains follow :func:`nriqa.analysis.relative_gain`: ``sign_m * (m(run) - m(baseline)) /
|m(baseline)|`` with ``sign_m = +1`` when higher is better, so a positive gain is better
whatever the measure's direction. Artifact measures are *higher = more artifact*.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import torch

from nriqa import quality
from nriqa.analysis import evaluate, generator_outputs, relative_gain
from nriqa.analysis.artifacts import measure_artifacts
from nriqa.compute import job_threads, resolve_device
from nriqa.data import build_test_set, build_test_sets
from nriqa.paths import atomic_path
from nriqa.train.run_files import read_config

from .runs import _in_pool, profile_root, workers

ARTIFACTS = ("chroma_noise", "edge_artifacts", "eyes", "ringing", "blur", "flicker", "periodic_pattern")
"""The artifact measures of :func:`artifact_table` (:data:`nriqa.analysis.artifacts.MEASURES`):
coloured dots, dotted edges, "eyes", ringing, blur, temporal flicker and a frame-wide periodic
pattern (a fine dot grid / stripes); each validated by injection
(:func:`nriqa.analysis.inject.confusion_table`)."""

_TEST_SETS: dict[str, list] = {}


def test_set(cfg: Mapping[str, Any]) -> list[dict]:
    """The profile's held-out clips ``[{"name", "lr": (1,T,3,h,w), "hr": (1,T,3,H,W)}]``
    (:func:`nriqa.data.build_test_set`), built once per process and ``data`` section."""
    key = json.dumps(cfg["data"], sort_keys=True, default=str)
    if key not in _TEST_SETS:
        _TEST_SETS[key] = build_test_set(dict(cfg["data"]))
    return _TEST_SETS[key]


test_set.__test__ = False  # a package function, not a pytest test


def dataset_label(cfg: Mapping[str, Any]) -> str:
    """The ``dataset`` column of the profile's scores: ``<data.source>-test``."""
    return f"{cfg['data'].get('source', 'embedded')}-test"


def test_sets(cfg: Mapping[str, Any]) -> dict[str, list[dict]]:
    """``{dataset label: clips}``: one test set per ``data.eval_sets`` entry (label: its ``name``,
    else its source; :func:`nriqa.data.build_test_sets`), or, without ``eval_sets``,
    ``{dataset_label(cfg): test_set(cfg)}``. Built once per process and ``data`` section."""
    if not cfg["data"].get("eval_sets"):
        return {dataset_label(cfg): test_set(cfg)}
    key = "sets:" + json.dumps(cfg["data"], sort_keys=True, default=str)
    if key not in _TEST_SETS:
        _TEST_SETS[key] = build_test_sets(dict(cfg["data"]))
    return _TEST_SETS[key]


test_sets.__test__ = False


Runs = Mapping[str, "Path | Mapping[int, Path]"]
"""Runs to judge: ``{label: run folder}`` or, seeded, ``{label: {seed: run folder}}`` (both may mix)."""


def run_seed(run: Path) -> int:
    """The seed a run folder was trained with (its ``config.yaml``)."""
    return int(read_config(run).get("seed", 0))


def seeded(runs: Runs) -> dict[str, dict[int, Path]]:
    """``runs`` as ``{label: {seed: run folder}}`` (a plain folder gets the seed of its config)."""
    return {label: ({int(s): Path(p) for s, p in r.items()} if isinstance(r, Mapping) else {run_seed(Path(r)): Path(r)})
            for label, r in runs.items()}


def evaluate_runs(cfg: Mapping[str, Any], runs: Runs, *, model: str, panel: list[str] | None = None,
                  sets: Mapping[str, list[dict]] | None = None) -> pd.DataFrame:
    """Tidy panel scores (``run, seed, model, dataset, clip, frame, measure, score``) of every run;
    ``runs`` is ``{label: run folder}`` or ``{label: {seed: run folder}}``. ``run`` is the label
    (the arm), ``seed`` the seed of that folder (a baseline row carries the baseline's own seed).
    ``sets``: ``{dataset label: clips}`` to score on (e.g. :func:`test_sets`); default the
    profile's test set, labelled :func:`dataset_label`.
    Cached per (run folder, dataset, measure) under ``<profile>/eval-cache``; with the profile's
    ``workers`` above 1 the run folders are first scored in that many processes (each with the
    profile's threads, as this process computes: the same numbers), then read from the cache here."""
    sets = {dataset_label(cfg): test_set(cfg)} if sets is None else sets
    folders = list(dict.fromkeys(Path(r) for by_seed in seeded(runs).values() for r in by_seed.values()))
    n = workers(cfg)
    if n > 1 and len(folders) > 1:
        _in_pool(_score_folder, [(dict(cfg), f, sets, list(panel or cfg["panel"]), model) for f in folders],
                 n_workers=n, threads=job_threads(cfg))
    frames = []
    for label, by_seed in seeded(runs).items():
        for seed, rdir in by_seed.items():
            for dataset, clips in sets.items():
                df = _score(cfg, rdir, clips, panel or cfg["panel"], run=label, model=model, dataset=dataset)
                df.insert(1, "seed", int(seed))
                frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _score(cfg: Mapping[str, Any], rdir: Path, clips: list[dict], panel: list[str], *, run: str, model: str,
           dataset: str) -> pd.DataFrame:
    return evaluate(rdir, clips, panel, run=run, model=model, dataset=dataset,
                    cache_dir=profile_root(cfg) / "eval-cache", device=resolve_device(cfg.get("device")),
                    progress=False)


def _score_folder(cfg: Mapping[str, Any], rdir: Path, sets: Mapping[str, list[dict]], panel: list[str],
                  model: str) -> None:
    """A worker's job: score one run folder on every set into the evaluation cache."""
    for dataset, clips in sets.items():
        _score(cfg, rdir, clips, panel, run=rdir.name, model=model, dataset=dataset)


def seed_mean(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` averaged over seeds: one score per (run, model, dataset, clip, frame, measure)
    and no ``seed`` column (a table without one is returned as it is)."""
    if "seed" not in scores.columns:
        return scores
    keys = [c for c in scores.columns if c not in ("seed", "score")]
    return scores.groupby(keys, as_index=False, sort=False, dropna=False)["score"].mean()


def first_seed(scores: pd.DataFrame) -> pd.DataFrame:
    """The rows of each run's first seed (in table order): the scores of the outputs that
    :func:`run_outputs` shows. A table without a ``seed`` column is returned as it is."""
    if "seed" not in scores.columns:
        return scores
    first = scores.drop_duplicates("run").set_index("run")["seed"]
    return scores[scores["seed"].to_numpy() == first.loc[scores["run"]].to_numpy()]


def mean_gain(scores: pd.DataFrame, baseline: str = "baseline", exclude: Mapping[str, list] | None = None) -> dict:
    """Run -> mean relative gain over ``baseline`` across the measures in ``scores`` (each measure
    counts once); with several seeds per run, the scores are averaged over seeds first
    (:func:`seed_mean`). ``exclude[run]``: measures left out for that run, e.g. its own loss measure and
    the judges sharing training data with it, so it is judged by held-out measures only
    (:func:`nriqa.study.verdicts.held_out_judges` gives the complement). The baseline itself is not in
    the result."""
    gains = relative_gain(seed_mean(scores), baseline=baseline, by=("measure",))
    out = {}
    for run, rows in gains.groupby("run"):
        drop = set((exclude or {}).get(run, []))
        kept = rows[~rows["measure"].isin(drop)]
        out[run] = float(kept["gain"].mean())
    return out


def fr_measures(names: list[str]) -> list[str]:
    """The full-reference measures among ``names`` (they judge faithfulness to the ground truth)."""
    return [n for n in names if quality.card(n).mode.upper() == "FR"]


def fr_gain(scores: pd.DataFrame, baseline: str) -> dict:
    """Run -> :func:`mean_gain` over ``baseline`` on the full-reference measures only."""
    fr = fr_measures(sorted(set(scores["measure"])))
    return mean_gain(scores[scores["measure"].isin(fr)], baseline=baseline)


def save_table(df: pd.DataFrame, cfg: Mapping[str, Any], name: str) -> Path:
    """Write ``df`` to ``<profile>/tables/<name>.csv`` atomically; returns the path."""
    target = profile_root(cfg) / "tables" / f"{name}.csv"
    with atomic_path(target) as tmp:
        df.to_csv(tmp)
    return target


def run_outputs(cfg: Mapping[str, Any], runs: Runs) -> dict[str, dict[str, torch.Tensor]]:
    """``{run: {clip: (T,3,H,W)}}`` output frames in ``[0, 1]`` on the test clips (CPU), plus
    ``"ground truth"``: the frames :func:`evaluate_runs` scored, read from the ``eval-cache`` when
    it has them, so a generator runs once per checkpoint. ``runs``: ``{label: run folder}`` or
    ``{label: {seed: run folder}}``; of a seeded arm only its *first* seed's outputs are taken
    (pictures and artifact measures show one run per arm, not an average of frames)."""
    clips = test_set(cfg)
    out: dict[str, dict] = {"ground truth": {c["name"]: c["hr"][0] for c in clips}}
    for label, r in runs.items():
        rdir = next(iter(r.values())) if isinstance(r, Mapping) else r
        out[label] = generator_outputs(rdir, clips, cache_dir=profile_root(cfg) / "eval-cache",
                                       device=resolve_device(cfg.get("device")))
    return out


def artifact_table(outputs: Mapping[str, Mapping[str, torch.Tensor]]) -> pd.DataFrame:
    """Rows = runs of :func:`run_outputs` (ground truth left out), columns = :data:`ARTIFACTS`
    (mean over clips of each clip's mean over frames -- over frame pairs for ``flicker``, NaN for
    one-frame clips; higher = more artifact)."""
    gt = outputs["ground truth"]
    rows = {}
    for label, clips in outputs.items():
        if label == "ground truth":
            continue
        per = {m: [] for m in ARTIFACTS}
        for name, frames in clips.items():
            kept = [m for m in ARTIFACTS if m != "flicker" or frames.shape[-4] >= 2]
            for m, v in measure_artifacts(frames, gt[name], kept).items():
                per[m].append(v.float().mean().item())
        rows[label] = {m: sum(v) / len(v) if v else float("nan") for m, v in per.items()}
    return pd.DataFrame.from_dict(rows, orient="index")[list(ARTIFACTS)]
