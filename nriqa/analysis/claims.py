"""The papers' claims tested against the tables notebooks 03, 05 and 06 measure.

Every arm is trained with several seeds and scored on the same clips as the baseline; an effect
is a mean over seeds x clips with a 95 % interval from the hierarchical bootstrap of
:mod:`nriqa.analysis.stats`. Each function returns :class:`Verdict` rows: the claim, the
effect, its interval, what ``n`` counts, the rule, and one verdict:

- ``agrees`` / ``disagrees``: the 95 % interval excludes zero in the claim's direction / the other;
- ``equivalent``: a claim of *no* effect passed the equivalence test (TOST) against the margin
  stated in the profile's ``verdicts`` section;
- ``inconclusive``: everything else -- the data can neither confirm nor rule out the claim
  (too few seeds or clips, or an effect too small next to its spread). It is never read as
  agreement.

Gains are fractions (``0.012`` = +1.2 %), as from :func:`nriqa.analysis.relative_gain`;
artifact values are in the artifact measures' units (:mod:`nriqa.analysis.artifacts`, log2
excess over the ground truth, higher = more artifact).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from nriqa.errors import ConfigError

from .rankboot import RankCorrelation, gain_cube, hierarchical_replicates, hierarchical_spearman
from .stats import Correlation, Estimate, contrast, seed_bootstrap, spearman_interval, tost

AGREES, DISAGREES, INCONCLUSIVE, EQUIVALENT = "agrees", "disagrees", "inconclusive", "equivalent"
VERDICTS = (AGREES, DISAGREES, INCONCLUSIVE, EQUIVALENT)
PATCH_LEVEL = ("patchgan", "unet")
TRANSFORMER = ("vit",)


@dataclass(frozen=True)
class Settings:
    """The profile's ``verdicts`` section (every field has a default; see ``profiles/demo.yaml``).

    ``n_boot``: bootstrap replicates; ``seed``: the seed of the bootstrap's generator (verdicts
    are reproducible); ``equivalence_margin``: the largest mean gain (fraction) still called "no
    effect"; ``artifact_margin``: the largest increase of an artifact measure (its units) still
    called "artifact-free"; ``rho_margin``: the largest |Spearman rho| still called "no
    association"; ``transfer_bar``: the held-out SRCC change still called "transfers little".
    """

    n_boot: int = 2000
    seed: int = 0
    equivalence_margin: float = 0.005
    artifact_margin: float = 0.05
    rho_margin: float = 0.3
    transfer_bar: float = 0.1

    def rng(self) -> np.random.Generator:
        """A fresh generator seeded with ``seed`` (each table's verdicts start from the same state)."""
        return np.random.default_rng(self.seed)


def settings(cfg: Mapping[str, Any]) -> Settings:
    """:class:`Settings` from ``cfg["verdicts"]`` (absent keys keep their defaults)."""
    section = dict(cfg.get("verdicts") or {})
    known = Settings.__dataclass_fields__
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise ConfigError(f"verdicts: unknown keys {unknown}; known: {sorted(known)}")
    out = Settings(**{k: type(getattr(Settings, k))(v) for k, v in section.items()})
    if out.n_boot < 100 or min(out.equivalence_margin, out.artifact_margin, out.rho_margin) <= 0:
        raise ConfigError(f"verdicts: n_boot must be >= 100 and every margin > 0, got {out}")
    return out


@dataclass(frozen=True)
class Verdict:
    """One row of a verdict table. ``effect, lo, hi``: the estimate and its 95 % interval (``nan``
    when there is none); ``percent``: whether they are gains shown as percentages (else plain
    numbers); ``n``: what the estimate rests on (``"3 seeds x 3 clips"``); ``rule``: how the
    verdict follows from the numbers."""

    claim: str
    effect: float
    lo: float
    hi: float
    n: str
    rule: str
    verdict: str
    percent: bool = True
    note: str = field(default="", compare=False)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def signed_pct(x: float) -> str:
    """A signed percentage with two significant digits (``0.0123`` -> ``+1.2%``, ``1e-5`` -> ``+0.0010%``)."""
    if not math.isfinite(x):
        return "nan"
    decimals = 2 if abs(x) >= 1e-3 or x == 0 else min(8, 1 - math.floor(math.log10(abs(x) * 100)))
    return f"{x * 100:+.{decimals}f}%"


def _num(x: float, percent: bool) -> str:
    if not math.isfinite(x):
        return "–"
    return signed_pct(x) if percent else f"{x:+.3g}"


COLUMNS = ("claim", "effect", "interval", "n", "rule", "verdict")
"""The columns of a verdict table (:func:`rows`, :func:`report`)."""


def rows(verdicts: Iterable[Verdict]) -> list[dict[str, str]]:
    """Each verdict as formatted text cells ``{claim, effect, interval, n, rule, verdict}``
    (gains as signed percentages; ``interval`` is ``"none"`` when there is no 95 % interval)."""
    out = []
    for v in verdicts:
        interval = (f"[{_num(v.lo, v.percent)}, {_num(v.hi, v.percent)}]"
                    if math.isfinite(v.lo) and math.isfinite(v.hi) else "none")
        claim = v.claim + (f" ({v.note})" if v.note else "")
        out.append(dict(zip(COLUMNS, (claim, _num(v.effect, v.percent), interval, v.n, v.rule, v.verdict))))
    return out


def report(verdicts: Iterable[Verdict] | Iterable[Mapping[str, str]]) -> str:
    """A Markdown table ``claim | effect | 95% interval | n | rule | verdict`` of verdicts (or of
    their :func:`rows`); a sentence when there is none."""
    cells = [v if isinstance(v, Mapping) else rows([v])[0] for v in verdicts]
    if not cells:
        return "_No claim is testable with this profile's settings (too few arms, seeds or measures)._"
    lines = ["| claim (papers) | effect | 95% interval | n | rule | verdict |", "|---|---|---|---|---|---|"]
    for c in cells:
        text = [str(c[k]).replace("|", "/").replace("\n", " ") for k in COLUMNS]
        lines.append("| " + " | ".join(text[:5]) + f" | **{text[5]}** |")
    return "\n".join(lines)


def table(verdicts: Iterable[Verdict]) -> pd.DataFrame:
    """The verdicts as a DataFrame (one row each), e.g. to save next to the run's tables."""
    return pd.DataFrame([v.__dict__ for v in verdicts],
                        columns=["claim", "effect", "lo", "hi", "n", "rule", "verdict", "percent", "note"])


# --------------------------------------------------------------------------- the three rules

_RULE_UP = "agrees if the 95% interval lies above 0, disagrees if below 0"
_RULE_DOWN = "agrees if the 95% interval lies below 0, disagrees if above 0"


def directional(claim: str, est: Estimate, *, expect_positive: bool = True, percent: bool = True,
                note: str = "") -> Verdict:
    """A claim that the effect is positive (``expect_positive``) or negative: ``agrees`` when the
    95 % interval excludes zero on the predicted side, ``disagrees`` on the other, else
    ``inconclusive`` (also when there is no interval)."""
    lo, hi = est.interval(0.95)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        verdict = INCONCLUSIVE
    elif lo > 0:
        verdict = AGREES if expect_positive else DISAGREES
    elif hi < 0:
        verdict = DISAGREES if expect_positive else AGREES
    else:
        verdict = INCONCLUSIVE
    return Verdict(claim, est.effect, lo, hi, est.n, _RULE_UP if expect_positive else _RULE_DOWN,
                   verdict, percent, note)


def no_effect(claim: str, est: Estimate, margin: float, *, one_sided: bool = False, percent: bool = True,
              note: str = "") -> Verdict:
    """A claim of *no* effect beyond ``margin`` (``one_sided``: no *increase* beyond it).

    ``equivalent`` when TOST at alpha 0.05 passes (the 90 % interval lies within ``(-margin,
    margin)``, or below ``margin`` one-sided); ``disagrees`` when the 95 % interval lies beyond
    the margin (a resolved effect larger than it); else ``inconclusive``."""
    lo, hi = est.interval(0.95)
    p, passed = tost(est, margin, lower=-math.inf if one_sided else None)
    m = _num(margin, percent).lstrip("+")
    bounds = f"below {m}" if one_sided else f"within ±{m}"
    rule = (f"equivalent if TOST passes (90% interval {bounds}; p = {p:.3f}), "
            f"disagrees if the 95% interval lies beyond {'' if one_sided else '±'}{m}")
    if passed:
        verdict = EQUIVALENT
    elif math.isfinite(lo) and (lo > margin or (not one_sided and hi < -margin)):
        verdict = DISAGREES
    else:
        verdict = INCONCLUSIVE
    return Verdict(claim, est.effect, lo, hi, est.n, rule, verdict, percent, note)


def not_better(claim: str, est: Estimate, margin: float, *, percent: bool = True, note: str = "") -> Verdict:
    """A claim that an arm is *not* better: ``agrees`` when the 95 % interval lies below 0,
    ``equivalent`` when TOST against ``margin`` passes (no difference either way), ``disagrees``
    when the interval lies above 0, else ``inconclusive``."""
    lo, hi = est.interval(0.95)
    p, passed = tost(est, margin)
    rule = ("agrees if the 95% interval lies below 0, equivalent if TOST within "
            f"±{signed_pct(margin).lstrip('+') if percent else margin} "
            f"passes (p = {p:.3f}), disagrees if above 0")
    if math.isfinite(lo) and lo > 0:
        verdict = DISAGREES
    elif math.isfinite(hi) and hi < 0:
        verdict = AGREES
    elif passed:
        verdict = EQUIVALENT
    else:
        verdict = INCONCLUSIVE
    return Verdict(claim, est.effect, lo, hi, est.n, rule, verdict, percent, note)


# --------------------------------------------------------------------------- notebook 05

def discriminator_ranking(gains: pd.DataFrame, kinds: Mapping[str, str], s: Settings, *,
                          outcome: str = ("reconstruct detail more faithfully "
                                          "(full-reference measures)")) -> list[Verdict]:
    """Patch-level vs vanilla and convolutional vs Transformer discriminators.

    Args:
        gains: :func:`nriqa.analysis.stats.paired_gains` of the GAN arms (``run, seed, clip, gain``
            over one common reference, e.g. the baseline, on the measures the outcome names).
        kinds: GAN arm (run label) -> discriminator kind; a kind's value is the mean over its arms
            (its GAN weights), the two groups' difference is paired on seed index and clip.
        outcome: what the claim says the better kinds do (the claim's wording).
    """
    present = {r: k for r, k in kinds.items() if r in set(gains["run"])}
    groups = [("patch-level discriminators (PatchGAN, U-Net)", lambda k: k in PATCH_LEVEL,
               "a vanilla one", lambda k: k == "vanilla"),
              ("convolutional discriminators", lambda k: k not in TRANSFORMER,
               "Transformer ones", lambda k: k in TRANSFORMER)]
    out = []
    for subject, is_better, other, is_worse in groups:
        better = [r for r, k in present.items() if is_better(k)]
        worse = [r for r, k in present.items() if is_worse(k)]
        if not (better and worse):
            continue
        est = contrast(gains, better, worse, rng=s.rng(), n_boot=s.n_boot)
        out.append(directional(f"{subject} {outcome} than {other}", est,
                               note="difference of mean gains over GAN weights"))
    return out


def artifact_suppression(changes: pd.DataFrame, *, without: str, with_gan: str, measures: Sequence[str],
                         term: str, s: Settings) -> list[Verdict]:
    """Does adding a discriminator suppress the artifacts an NR-IQA loss ``term`` introduces?

    ``changes``: artifact values ``run, seed, clip, measure, value`` (higher = more artifact) of
    the fine-tune with ``term`` (run ``without``) and the same plus a GAN term (``with_gan``). The
    effect is ``without - with_gan`` per seed and clip: positive = the GAN removed some."""
    out = []
    for m in measures:
        rows = changes[changes["measure"] == m]
        est = contrast(rows, [without], [with_gan], rng=s.rng(), n_boot=s.n_boot, value="value")
        out.append(directional(f"a discriminator suppresses the {m.replace('_', ' ')} "
                               f"an NR-IQA loss ({term}) introduces",
                               est, percent=False, note=f"{m} without GAN minus with GAN"))
    return out


def transfer_changes(transfer: pd.DataFrame) -> pd.DataFrame:
    """The paired change of held-out SRCC from discriminator initialisation, one per (kind, seed).

    ``transfer``: rows ``discriminator, seed, init ("random" | "discriminator"), srcc`` (``seed``
    optional: one seed, 0). Returns a ``(seeds, kinds)`` table of ``srcc(discriminator) -
    srcc(random)`` of the same kind and seed (seeds sorted, kinds in the table's order; NaN where an
    arm is missing)."""
    t = transfer if "seed" in transfer.columns else transfer.assign(seed=0)
    missing = {"discriminator", "init", "srcc"} - set(t.columns)
    if missing:
        raise ConfigError(f"the transfer table lacks columns {sorted(missing)}")
    piv = t.pivot_table(index=["seed", "discriminator"], columns="init", values="srcc", dropna=False)
    for arm in ("random", "discriminator"):
        if arm not in piv.columns:
            piv[arm] = np.nan
    change = (piv["discriminator"] - piv["random"]).unstack("discriminator")
    return change[list(dict.fromkeys(t["discriminator"]))].sort_index()   # kinds in the table's order


def transfer_little(transfer: pd.DataFrame, s: Settings, *, per_kind: bool = True,
                    label: str = "SRCC") -> list[Verdict]:
    """Discriminators transfer little when reused to initialise an NR-IQA model.

    ``transfer``: as :func:`transfer_changes` (``srcc``: held-out SRCC on the label ``label``
    names, e.g. "level-order SRCC"). The effect is the mean over kinds and seeds of the paired
    change (discriminator minus random initialisation, same kind and seed); the 95 % interval is
    :func:`~nriqa.analysis.stats.seed_bootstrap` with seeds resampled and the kinds fixed (a
    seed missing a kind's pair is left out). ``agrees`` when the interval lies below
    ``s.transfer_bar``, ``disagrees`` when above it, else ``inconclusive`` (one seed: no interval).
    The first row pools the kinds; with ``per_kind`` (and more than one kind) one row per kind follows."""
    change = transfer_changes(transfer)
    complete = change.dropna(axis=0, how="any")
    rule = (f"agrees if the 95% interval (bootstrap over seeds, kinds fixed) lies below a {label} change of "
            f"{s.transfer_bar:+.2f}, disagrees if above")
    note = f"held-out {label} change, discriminator vs random initialisation, paired per seed"

    def verdict(claim: str, arr: np.ndarray, kinds: int) -> Verdict:
        n = f"{len(arr)} seed{'s' if len(arr) != 1 else ''} x {kinds} kind{'s' if kinds != 1 else ''}"
        if not len(arr):
            return Verdict(claim, float("nan"), float("nan"), float("nan"), n, rule, INCONCLUSIVE, False, note)
        est = seed_bootstrap(arr, rng=s.rng(), n_boot=s.n_boot)
        lo, hi = est.interval(0.95)
        if math.isfinite(hi) and hi < s.transfer_bar:
            v = AGREES
        elif math.isfinite(lo) and lo > s.transfer_bar:
            v = DISAGREES
        else:
            v = INCONCLUSIVE
        return Verdict(claim, est.effect, lo, hi, n, rule, v, False, note)

    out = [verdict("discriminators transfer little when reused to initialise an NR-IQA model",
                   complete.to_numpy(float), change.shape[1])]
    if per_kind and change.shape[1] > 1:
        for kind in change.columns:
            col = change[[kind]].dropna()
            out.append(verdict(f"the {kind} discriminator transfers little when reused to initialise an NR-IQA model",
                               col.to_numpy(float), 1))
    return out


# --------------------------------------------------------------------------- notebook 06

def assessment_is_not_optimization(corr: Correlation | RankCorrelation, corr90: Correlation | RankCorrelation,
                                   margin: float, *,
                                   units: str | None = None,
                                   resampled: str = "bootstrap over measures") -> Verdict:
    """Spearman rho between assessment SRCC and optimization gain over the measures (``corr``: 95 %
    interval, ``corr90``: the same at 90 % for the equivalence test). ``disagrees`` when the
    95 % interval lies above 0 (good assessors are better objectives), ``agrees`` when below 0,
    ``equivalent`` when the 90 % interval lies within ±``margin`` (no association), else
    ``inconclusive`` -- including every case without an interval (too few measures).
    ``units``: what ``n`` says (default ``"<n> measures"``); ``resampled``: how the interval was
    bootstrapped, for the rule."""
    lo, hi = corr.lo, corr.hi
    if math.isfinite(lo) and lo > 0:
        verdict = DISAGREES
    elif math.isfinite(hi) and hi < 0:
        verdict = AGREES
    elif math.isfinite(corr90.lo) and -margin < corr90.lo and corr90.hi < margin:
        verdict = EQUIVALENT
    else:
        verdict = INCONCLUSIVE
    return Verdict("a measure that assesses quality well is not necessarily a good optimization objective",
                   corr.rho, lo, hi, units or f"{corr.n} measures",
                   f"Spearman rho ({resampled}): agrees if the 95% interval lies below 0, "
                   f"disagrees if above 0, equivalent if the 90% interval lies within ±{margin:g}",
                   verdict, percent=False)


def asymmetry(table: pd.DataFrame, s: Settings, *, x: str = "srcc", y: str = "gain") -> Verdict:
    """:func:`assessment_is_not_optimization` of an asymmetry table (``measure, srcc, gain``)."""
    if len(table[[x, y]].dropna()) < 3:
        return Verdict("a measure that assesses quality well is not necessarily a good optimization objective",
                       float("nan"), float("nan"), float("nan"), f"{len(table)} measures",
                       "a rank correlation needs at least 3 measures", INCONCLUSIVE, percent=False)
    c95 = spearman_interval(table[x], table[y], rng=s.rng(), n_boot=s.n_boot, level=0.95)
    c90 = spearman_interval(table[x], table[y], rng=s.rng(), n_boot=s.n_boot, level=0.90)
    return assessment_is_not_optimization(c95, c90, s.rho_margin)


def asymmetry_over_seeds(srcc: Mapping[str, float], gains: pd.DataFrame, s: Settings) -> Verdict:
    """:func:`assessment_is_not_optimization` with the seed and clip spread in the interval.

    ``srcc``: measure -> assessment accuracy; ``gains``: ``run, seed, clip, gain`` with ``run`` the
    measure used as a loss (:func:`~nriqa.analysis.stats.paired_gains` on the held-out panel),
    one row per fine-tune seed and test clip. The effect is Spearman's rho between the accuracy and
    each measure's mean gain over its seeds and clips; the interval is
    :func:`~nriqa.analysis.rankboot.hierarchical_spearman`'s (measures, then seeds and clips, the
    same seed indices and clips for every measure of a replicate). The accuracy is taken as exact
    (:func:`~nriqa.analysis.rankboot.hierarchical_replicates` says why). Fewer than 3 measures
    with both values: ``inconclusive`` without an effect."""
    names = [m for m in srcc if math.isfinite(float(srcc[m])) and m in set(gains["run"])]
    claim = "a measure that assesses quality well is not necessarily a good optimization objective"
    if len(names) < 3:
        return Verdict(claim, float("nan"), float("nan"), float("nan"), f"{len(names)} measures",
                       "a rank correlation needs at least 3 measures", INCONCLUSIVE, percent=False)
    x = np.array([float(srcc[m]) for m in names])
    cube = gain_cube(gains, names)
    reps = hierarchical_replicates(x, cube, rng=s.rng(), n_boot=s.n_boot)
    c95 = hierarchical_spearman(x, cube, rng=s.rng(), n_boot=s.n_boot, level=0.95, replicates=reps)
    c90 = hierarchical_spearman(x, cube, rng=s.rng(), n_boot=s.n_boot, level=0.90, replicates=reps)
    return assessment_is_not_optimization(c95, c90, s.rho_margin, units=c95.units,
                                          resampled="measures, seeds and clips resampled")


def adversarial_fidelity(gains: Mapping[str, pd.DataFrame], srcc: Mapping[str, float], reference: str,
                         s: Settings) -> list[Verdict]:
    """Under adversarial training, is a better-assessing fidelity term a better objective?

    ``gains[measure]``: :func:`~nriqa.analysis.stats.paired_gains` (held-out panel: the measure
    itself left out) of the arms ``measure`` (Charbonnier + measure + GAN) and ``reference``
    (Charbonnier + GAN). The effect is their paired difference; the claim (no improvement) is
    tested with :func:`not_better` against ``equivalence_margin``."""
    out = []
    for name, g in gains.items():
        est = contrast(g, [name], [reference], rng=s.rng(), n_boot=s.n_boot)
        out.append(not_better("under adversarial training, a good assessor "
                              f"({name}, SRCC {srcc.get(name, float('nan')):.2f}) "
                              f"is not a better fidelity term than {reference}", est, s.equivalence_margin,
                              note="held-out panel gain difference"))
    return out


# --------------------------------------------------------------------------- notebook 03 (paper A)

def naive_nr_tuning(term: str, *, held_out_nr: pd.DataFrame | None, own: pd.DataFrame | None,
                    fr: pd.DataFrame | None, artifacts: pd.DataFrame | None, s: Settings) -> list[Verdict]:
    """A1: naive fine-tuning with the NR-IQA term ``term`` raises the NR judges (held out) and its
    own score, while the full-reference measures fall and artifacts appear.

    Tables are :func:`~nriqa.analysis.stats.paired_gains` over the baseline on the measures named
    (a table may be None when the panel has no such measure) and, for ``artifacts``,
    :func:`~nriqa.analysis.stats.paired_change` of artifact values with a ``measure`` column."""
    out = []
    for what, g, up in [("raises the held-out NR-IQA judges", held_out_nr, True),
                        ("raises its own score", own, True),
                        ("lowers the full-reference measures", fr, False)]:
        if g is not None and term in set(g["run"]):
            out.append(directional(f"naive {term} fine-tuning {what}",
                                   contrast(g, [term], rng=s.rng(), n_boot=s.n_boot), expect_positive=up,
                                   note="mean gain over the baseline"))
    if artifacts is not None and term in set(artifacts["run"]):
        for m, rows in artifacts.groupby("measure", sort=False):
            out.append(directional(f"naive {term} fine-tuning adds {m.replace('_', ' ')}",
                                   contrast(rows, [term], rng=s.rng(), n_boot=s.n_boot, value="change"),
                                   percent=False, note=f"{m} minus the baseline's"))
    return out


def lpips_judges_nr_badly(gains: pd.DataFrame, terms: Sequence[str], lpips: str, s: Settings) -> list[Verdict]:
    """A2: the LPIPS-type measure ``lpips`` scores NR-only fine-tunes worse than the baseline.
    ``gains``: paired gains on ``lpips`` alone (positive = better) of the NR-only arms ``terms``."""
    return [directional(f"{lpips} judges naive {t} fine-tuning worse than the baseline",
                        contrast(gains, [t], rng=s.rng(), n_boot=s.n_boot), expect_positive=False,
                        note=f"gain on {lpips}") for t in terms if t in set(gains["run"])]


def lpips_mitigates(combo: str, single: str, *, gains: pd.DataFrame, artifacts: pd.DataFrame | None,
                    s: Settings) -> list[Verdict]:
    """A3: adding the LPIPS-type term to an NR term (arm ``combo``) mitigates the artifacts of the
    NR term alone (arm ``single``) and raises the mean panel gain. Differences are paired on seed
    index and clip: artifacts ``single - combo`` (positive = fewer with LPIPS), gains ``combo -
    single``."""
    out = [directional(f"{combo} raises the mean panel gain over {single} alone",
                       contrast(gains, [combo], [single], rng=s.rng(), n_boot=s.n_boot),
                       note="difference of mean panel gains")]
    if artifacts is not None:
        for m, rows in artifacts.groupby("measure", sort=False):
            out.append(directional(f"{combo} has less {m.replace('_', ' ')} than {single} alone",
                                   contrast(rows, [single], [combo], rng=s.rng(), n_boot=s.n_boot, value="change"),
                                   percent=False, note=f"{m}: {single} minus {combo}"))
    return out


def artifact_free(artifacts: pd.DataFrame, terms: Sequence[str], s: Settings) -> list[Verdict]:
    """A4: some NR terms stay artifact-free: per term and artifact measure, a one-sided equivalence
    (non-inferiority) test that the term adds no more than ``artifact_margin`` over the baseline.
    ``artifacts``: :func:`~nriqa.analysis.stats.paired_change` with a ``measure`` column."""
    out = []
    for t in terms:
        if t not in set(artifacts["run"]):
            continue
        for m, rows in artifacts.groupby("measure", sort=False):
            out.append(no_effect(f"{t} fine-tuning adds no {m.replace('_', ' ')}",
                                 contrast(rows, [t], rng=s.rng(), n_boot=s.n_boot, value="change"),
                                 s.artifact_margin, one_sided=True, percent=False, note=f"{m} minus the baseline's"))
    return out


def artifact_free_terms(verdicts: Iterable[Verdict], terms: Sequence[str]) -> list[str]:
    """The terms whose every :func:`artifact_free` row is ``equivalent``."""
    rows = list(verdicts)
    out = []
    for t in terms:
        mine = [v for v in rows if v.claim.startswith(f"{t} fine-tuning adds no ")]
        if mine and all(v.verdict == EQUIVALENT for v in mine):
            out.append(t)
    return out
