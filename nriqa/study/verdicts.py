"""The tables behind the verdicts of notebooks 03, 05 and 06: per seed and per clip.

Every fine-tune arm is ``{seed: run folder}`` (:func:`nriqa.study.runs.seeds`); the verdicts of
:mod:`nriqa.analysis.claims` need one value per arm, seed and clip, never an average over seeds:

- :func:`gains`: relative gains over the baseline (:func:`nriqa.analysis.stats.paired_gains`) on
  the measures named, from :func:`nriqa.study.judging.evaluate_runs` scores;
- :func:`artifact_values` / :func:`artifact_changes`: the artifact measures of every seed's
  outputs on every test clip (mean over frames, higher = more artifact), and their change over
  the baseline on the same clip;
- :func:`standardised_effects`: the judges' changes over the baseline in units of each measure's
  seed-to-seed spread (:func:`spread`: the fidelity-only fine-tune arm, :data:`SPREAD_ARM`),
  aggregated over the judges by the median (:mod:`nriqa.analysis.standardise`).

**Independent judges.** A judge shares no training data with a loss term of the run it judges
(``Card.training_data``, :func:`shared_training_data`): a kit model trained on the same distortion set as
the loss term, or two models fitted on KonIQ-10k, agree partly because they learnt the same data. A
run's *held-out* judges (:func:`held_out_judges`) are the judges that are not one of its loss terms
(those give the term's *own score*, reported apart) and share no training data with any of them;
:func:`check_independent_judges` refuses any other judge with a :class:`~nriqa.errors.ConfigError`
before a verdict is computed (:func:`standardised_effects` and :func:`gains` with ``terms``).

The margins, ``n_boot`` and the bootstrap's seed come from the profile's ``verdicts`` section
(:func:`nriqa.analysis.claims.settings`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from nriqa import quality
from nriqa.analysis import generator_outputs
from nriqa.analysis.artifacts import measure_artifacts
from nriqa.analysis.standardise import panel_effect, seed_spread, standardised_changes
from nriqa.analysis.stats import paired_change, paired_gains
from nriqa.compute import resolve_device, use_job_numerics
from nriqa.errors import ConfigError
from nriqa.paths import atomic_write_text
from nriqa.quality.kit import kit_training_data

from .judging import ARTIFACTS, Runs, seeded, test_set
from .runs import profile_root, run_jobs


def measure_training_data(name: str) -> tuple[str, ...]:
    """The ``Card.training_data`` ids of measure ``name``; for a kit model not trained yet
    (``<arch>@<dataset>``) the ids its name implies (:func:`nriqa.quality.kit.kit_training_data`); ``()``
    for a name that is no measure (``charbonnier``, ``gan``, ``weights``: loss terms fitted on nothing)."""
    try:
        return tuple(quality.card(name).training_data)
    except (KeyError, ValueError):
        return kit_training_data(name.partition("@")[2]) if "@" in str(name) else ()


def shared_training_data(judge: str, terms: Iterable[str]) -> set[str]:
    """The training-data ids (:func:`measure_training_data`) that measure ``judge`` shares with any of the
    loss ``terms`` (names; pixel and adversarial terms share nothing). Empty: independent."""
    mine = set(measure_training_data(judge))
    return {d for t in terms for d in measure_training_data(t) if d in mine}


def check_independent_judges(judges: Iterable[str], terms: Iterable[str]) -> None:
    """Refuse judges of a run whose loss has ``terms``: :class:`~nriqa.errors.ConfigError` naming the first
    judge that is itself a loss term (its own score is not a judge) or shares training data with one
    (:func:`shared_training_data`), the term and the shared data. Called before a verdict is computed."""
    terms = [str(t) for t in terms]
    for judge in judges:
        if judge in terms:
            raise ConfigError(f"judge {judge!r} is a loss term of the run it judges: its own score, not a "
                              "judge (leave it out of the judges: held_out_judges)")
        for term in terms:
            shared = shared_training_data(judge, [term])
            if shared:
                raise ConfigError(f"judge {judge!r} shares training data {sorted(shared)} with loss term {term!r} "
                                  "of the run it judges, so its agreement is no independent evidence; judge with "
                                  "measures trained on other data (e.g. a kit model of the other half: "
                                  "<arch>@embedded-b for an <arch>@embedded-a term)")


def held_out_judges(judges: Iterable[str], terms: Iterable[str]) -> list[str]:
    """The judges (in order) that may judge a run whose loss has ``terms``: not one of the terms and
    sharing no training data with any of them (:func:`check_independent_judges` accepts them)."""
    terms = [str(t) for t in terms]
    return [j for j in judges if j not in terms and not shared_training_data(j, terms)]


def gains(scores: pd.DataFrame, measures: Sequence[str], *, baseline: str = "baseline",
          terms: Sequence[str] | None = None) -> pd.DataFrame | None:
    """``run, seed, model, dataset, clip, gain``: the mean relative gain over ``baseline`` on
    ``measures`` (those present in ``scores``), per arm, seed and clip; None when none is present.
    ``terms``: the loss terms of the arms judged; the measures must be independent of them
    (:func:`check_independent_judges`, checked first)."""
    if terms is not None:
        check_independent_judges(measures, terms)
    present = [m for m in measures if m in set(scores["measure"])]
    if not present:
        return None
    return paired_gains(scores, baseline=baseline, measures=present)


SPREAD_ARM = "fidelity-only"
"""The fine-tune arm with Charbonnier alone (``finetune.fidelity_only``), trained once per seed: how
much a measure moves from seed to seed when nothing but the seed changes."""


def spread(scores: pd.DataFrame, arm: str = SPREAD_ARM) -> pd.Series:
    """Per measure, the seed-to-seed spread of ``arm`` (:func:`nriqa.analysis.standardise.seed_spread`);
    a clear error when the scores lack that arm."""
    if arm not in set(scores["run"]):
        raise ConfigError(f"the scores lack the {arm!r} arm whose seed-to-seed spread standardises the effects; "
                          "set finetune.fidelity_only: true in the profile")
    return seed_spread(scores, arm)


def standardised_effects(scores: pd.DataFrame, measures: Sequence[str], spread: pd.Series, *,
                         baseline: str = "baseline", how: str = "median",
                         terms: Sequence[str] | None = None) -> pd.DataFrame | None:
    """``run, seed, model, dataset, clip, value``: the ``how`` (median) over ``measures`` (those in
    ``scores``) of each measure's change over ``baseline`` in units of its seed spread (positive =
    better); None when no measure is present. ``terms``: the loss terms of the arms the measures judge;
    they must be independent judges of them (:func:`check_independent_judges`, checked first); leave
    ``terms`` out for a term's own score."""
    if terms is not None:
        check_independent_judges([m for m in measures if m is not None], terms)
    present = [m for m in measures if m is not None and m in set(scores["measure"])]
    if not present:
        return None
    z = standardised_changes(scores[scores["measure"].isin(present)], spread, baseline=baseline)
    return panel_effect(z, how=how)


def modes(names: Sequence[str], mode: str) -> list[str]:
    """The names among ``names`` whose measure card has ``mode`` (``"NR"`` or ``"FR"``)."""
    return [n for n in names if quality.card(n).mode.upper() == mode]


def artifact_values(cfg: Mapping[str, Any], runs: Runs, measures: Sequence[str] = ARTIFACTS) -> pd.DataFrame:
    """``run, seed, clip, measure, value``: each artifact measure of each seed's outputs on each
    test clip (mean over frames; 0 = no more than the ground truth, higher = more artifact).

    The outputs are the frames :func:`nriqa.study.judging.evaluate_runs` scored, read from the
    ``eval-cache`` (:func:`nriqa.analysis.generator_outputs`): a generator runs only for a folder
    never evaluated. Each folder's values are cached under ``<profile>/eval-cache`` (keyed by the
    test clips and measures) and computed in the profile's ``workers`` processes."""
    clips = test_set(cfg)
    key = hashlib.sha256(json.dumps([[str(c["name"]) for c in clips], list(measures)]).encode()).hexdigest()[:10]
    cache = profile_root(cfg) / "eval-cache"
    folders = list(dict.fromkeys(Path(f) for by_seed in seeded(runs).values() for f in by_seed.values()))
    files = {f: cache / f"artifacts__{f.name}__{key}.csv" for f in folders}
    todo = [(dict(cfg), f, list(measures), files[f]) for f in folders if not files[f].exists()]
    run_jobs(cfg, _folder_artifacts, todo)
    rows = []
    for label, by_seed in seeded(runs).items():
        for seed, folder in by_seed.items():
            t = pd.read_csv(files[Path(folder)])
            rows.append(t.assign(run=label, seed=int(seed)))
    cols = ["run", "seed", "clip", "measure", "value"]
    return pd.concat(rows, ignore_index=True)[cols] if rows else pd.DataFrame(columns=cols)


def _folder_artifacts(cfg: Mapping[str, Any], folder: Path, measures: list[str], out: Path) -> None:
    """One run folder's artifact values per clip and measure (``clip, measure, value``), written to ``out``."""
    use_job_numerics(cfg)
    clips = test_set(cfg)
    outputs = generator_outputs(folder, clips, cache_dir=profile_root(cfg) / "eval-cache",
                                device=resolve_device(cfg.get("device")))
    rows = [{"clip": c["name"], "measure": m, "value": float(v.float().mean())}
            for c in clips for m, v in measure_artifacts(outputs[str(c["name"])], c["hr"][0], measures).items()]
    atomic_write_text(out, pd.DataFrame(rows, columns=["clip", "measure", "value"]).to_csv(index=False))


def artifact_changes(values: pd.DataFrame, *, baseline: str = "baseline") -> pd.DataFrame:
    """``run, seed, clip, measure, change``: :func:`artifact_values` minus the baseline's on the
    same clip (positive = the arm added some of that artifact)."""
    return paired_change(values, baseline=baseline, value="value")


def arms_only(runs: Mapping[str, Any], labels: Sequence[str], *, baseline: str = "baseline") -> dict:
    """``runs`` restricted to ``baseline`` and ``labels`` (in that order)."""
    return {k: runs[k] for k in [baseline, *labels] if k in runs}
