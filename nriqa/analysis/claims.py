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

**Primary and secondary rows.** Each of the seven claims (A1-A4, B1-B3) is decided by *one*
primary row, the contrast the profile's ``verdicts.primary`` names before the run
(:func:`primary_spec`); it is decided on its own 95 % interval (or TOST) as above. Every other row
is *secondary*: it carries its p-value and a Benjamini-Hochberg q-value within its table
(:func:`family`), and is decided on ``q < alpha`` -- so the share of chance decisions among the
decided secondary rows stays at most ``alpha``. Each row keeps the verdict its test would give
(``candidate``) and that test's ``p``; a row without a test (no interval, a detector stuck at its
floor) has ``p = nan`` and stays inconclusive.

Gains are fractions (``0.012`` = +1.2 %), as from :func:`nriqa.analysis.relative_gain`;
artifact values are in the artifact measures' units (:mod:`nriqa.analysis.artifacts`, log2
excess over the ground truth, higher = more artifact).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from nriqa.errors import ConfigError

from .multiplicity import bh_qvalues, min_detectable_rho, rho_equivalence_reachable
from .rankboot import RankCorrelation, gain_cube, hierarchical_replicates, hierarchical_spearman
from .stats import Correlation, Estimate, contrast, seed_bootstrap, spearman_interval, tost

AGREES, DISAGREES, INCONCLUSIVE, EQUIVALENT = "agrees", "disagrees", "inconclusive", "equivalent"
VERDICTS = (AGREES, DISAGREES, INCONCLUSIVE, EQUIVALENT)
ALPHA = 0.05
"""The error rate of every decision: a primary row's 95 % interval, a secondary row's BH q-value."""
PRIMARY_IDS = ("A1", "A2", "A3", "A4", "B1", "B2", "B3")
"""The seven claims, each decided by one primary row (paper A: A1-A4, notebook 03; paper B: B1
notebook 06, B2 and B3 notebook 05)."""
PATCH_LEVEL = ("patchgan", "unet")
TRANSFORMER = ("vit",)


@dataclass(frozen=True)
class Settings:
    """The profile's ``verdicts`` section (every field has a default; see ``profiles/demo.yaml``).

    ``n_boot``: bootstrap replicates; ``seed``: the seed of the bootstrap's generator (verdicts
    are reproducible); ``equivalence_margin``: the largest mean gain (fraction) still called "no
    effect"; ``rho_margin``: the largest |Spearman rho| still called "no
    association" (the bar of "transfers little" comes from the data: :func:`transfer_noise_bar`);
    ``alpha``: the error rate of every decision; ``primary``: claim id -> the contrast that decides it
    (:func:`primary_spec`). Artifact margins are per detector, in the profile's ``artifact_margins``
    (:mod:`nriqa.analysis.margins`).
    """

    n_boot: int = 2000
    seed: int = 0
    equivalence_margin: float = 0.005
    rho_margin: float = 0.3
    alpha: float = ALPHA
    primary: Mapping[str, Any] = field(default_factory=dict)

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
    primary = section.pop("primary", None) or {}
    if not isinstance(primary, Mapping):
        raise ConfigError(f"verdicts.primary must map a claim id to its contrast, got {primary!r}")
    unknown_ids = sorted(set(primary) - set(PRIMARY_IDS))
    if unknown_ids:
        raise ConfigError(f"verdicts.primary: unknown claim ids {unknown_ids}; known: {list(PRIMARY_IDS)}")
    out = Settings(**{k: type(getattr(Settings, k))(v) for k, v in section.items()}, primary=dict(primary))
    if not 0 < out.alpha < 0.5:
        raise ConfigError(f"verdicts.alpha must lie in (0, 0.5), got {out.alpha}")
    if out.n_boot < 100 or min(out.equivalence_margin, out.rho_margin) <= 0:
        raise ConfigError(f"verdicts: n_boot must be >= 100 and every margin > 0, got {out}")
    return out


@dataclass(frozen=True)
class Verdict:
    """One row of a verdict table. ``effect, lo, hi``: the estimate and its 95 % interval (``nan``
    when there is none); ``percent``: whether they are gains shown as percentages (else plain
    numbers); ``n``: what the estimate rests on (``"3 seeds x 3 clips"``); ``rule``: how the
    verdict follows from the numbers. ``p``: the p-value of the row's test, ``candidate``: the
    verdict that test gives when it passes; ``q``: the Benjamini-Hochberg q-value of a secondary
    row (:func:`family`); ``id`` and ``primary``: the claim a primary row decides; ``unit``: what
    a non-percent effect is measured in (``"SD"``: seed-to-seed standard deviations)."""

    claim: str
    effect: float
    lo: float
    hi: float
    n: str
    rule: str
    verdict: str
    percent: bool = True
    note: str = field(default="", compare=False)
    p: float = float("nan")
    candidate: str = ""
    q: float = float("nan")
    id: str = ""
    primary: bool = False
    unit: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.candidate and self.candidate not in VERDICTS:
            raise ValueError(f"candidate must be one of {VERDICTS}, got {self.candidate!r}")


def signed_pct(x: float) -> str:
    """A signed percentage with two significant digits (``0.0123`` -> ``+1.2%``, ``1e-5`` -> ``+0.0010%``)."""
    if not math.isfinite(x):
        return "nan"
    decimals = 2 if abs(x) >= 1e-3 or x == 0 else min(8, 1 - math.floor(math.log10(abs(x) * 100)))
    return f"{x * 100:+.{decimals}f}%"


def _num(x: float, percent: bool, unit: str = "") -> str:
    if not math.isfinite(x):
        return "–"
    return signed_pct(x) if percent else f"{x:+.3g}" + (f" {unit}" if unit else "")


COLUMNS = ("claim", "effect", "interval", "n", "rule", "verdict")
"""The text columns of a verdict table (:func:`rows`, :func:`report`)."""


def _maybe(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def rows(verdicts: Iterable[Verdict]) -> list[dict[str, Any]]:
    """Each verdict as ``{claim, effect, interval, n, rule, verdict, p}`` text cells (gains as
    signed percentages; ``interval`` is ``"none"`` without a 95 % interval; ``p`` a number or
    None), plus ``id`` and ``primary: True`` for a primary row, ``q`` for a secondary one."""
    out = []
    for v in verdicts:
        interval = (f"[{_num(v.lo, v.percent, v.unit)}, {_num(v.hi, v.percent, v.unit)}]"
                    if math.isfinite(v.lo) and math.isfinite(v.hi) else "none")
        claim = v.claim + (f" ({v.note})" if v.note else "")
        row: dict[str, Any] = dict(zip(COLUMNS, (claim, _num(v.effect, v.percent, v.unit), interval, v.n,
                                                 v.rule, v.verdict)))
        row["p"] = _maybe(v.p)
        if v.primary:
            row.update(id=v.id, primary=True)
        else:
            row["q"] = _maybe(v.q)
        out.append(row)
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
        tag = f"**{c['id']}** " if c.get("primary") else ""
        lines.append("| " + tag + " | ".join(text[:5]) + f" | **{text[5]}** |")
    return "\n".join(lines)


def table(verdicts: Iterable[Verdict]) -> pd.DataFrame:
    """The verdicts as a DataFrame (one row each), e.g. to save next to the run's tables."""
    return pd.DataFrame([v.__dict__ for v in verdicts],
                        columns=["claim", "effect", "lo", "hi", "n", "rule", "verdict", "percent", "note",
                                 "p", "candidate", "q", "id", "primary", "unit"])


# --------------------------------------------------------------------------- the rules

_RULE_UP = "agrees if the 95% interval lies above 0, disagrees if below 0"
_RULE_DOWN = "agrees if the 95% interval lies below 0, disagrees if above 0"


def _p(est: Estimate, null: float = 0.0, alternative: str = "two-sided") -> float:
    """``est.p_value`` (nan without an interval)."""
    return float(est.p_value(null, alternative))


def _beyond_p(est: Estimate, bound: float, above: bool) -> float:
    """Two-sided-equivalent p of "the effect lies beyond ``bound``" (above it, or below): twice the
    one-sided p, so ``p < 0.05`` exactly when the 95 % interval lies beyond the bound."""
    return min(1.0, 2 * _p(est, bound, "greater" if above else "less"))


def directional(claim: str, est: Estimate, *, expect_positive: bool = True, percent: bool = True,
                note: str = "", unit: str = "") -> Verdict:
    """A claim that the effect is positive (``expect_positive``) or negative: ``agrees`` when the
    95 % interval excludes zero on the predicted side, ``disagrees`` on the other, else
    ``inconclusive`` (also when there is no interval). ``p``: two-sided against 0."""
    lo, hi = est.interval(0.95)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        verdict = INCONCLUSIVE
    elif lo > 0:
        verdict = AGREES if expect_positive else DISAGREES
    elif hi < 0:
        verdict = DISAGREES if expect_positive else AGREES
    else:
        verdict = INCONCLUSIVE
    candidate = AGREES if (est.effect > 0) == expect_positive else DISAGREES
    return Verdict(claim, est.effect, lo, hi, est.n, _RULE_UP if expect_positive else _RULE_DOWN,
                   verdict, percent, note, p=_p(est), candidate=candidate, unit=unit)


def no_effect(claim: str, est: Estimate, margin: float, *, one_sided: bool = False, percent: bool = True,
              note: str = "") -> Verdict:
    """A claim of *no* effect beyond ``margin`` (``one_sided``: no *increase* beyond it).

    ``equivalent`` when TOST at alpha 0.05 passes (the 90 % interval lies within ``(-margin,
    margin)``, or below ``margin`` one-sided); ``disagrees`` when the 95 % interval lies beyond
    the margin (a resolved effect larger than it); else ``inconclusive``. The row's test is TOST
    while the estimate lies inside the margin, the test of "beyond it" otherwise."""
    lo, hi = est.interval(0.95)
    p, passed = tost(est, margin, lower=-math.inf if one_sided else None)
    m = _num(margin, percent).lstrip("+")
    bounds = f"below {m}" if one_sided else f"within ±{m}"
    rule = (f"equivalent if TOST passes (90% interval {bounds}), "
            f"disagrees if the 95% interval lies beyond {'' if one_sided else '±'}{m}")
    if passed:
        verdict = EQUIVALENT
    elif math.isfinite(lo) and (lo > margin or (not one_sided and hi < -margin)):
        verdict = DISAGREES
    else:
        verdict = INCONCLUSIVE
    inside = est.effect < margin and (one_sided or est.effect > -margin)
    test_p = p if inside else _beyond_p(est, margin if est.effect >= margin else -margin, est.effect >= margin)
    return Verdict(claim, est.effect, lo, hi, est.n, rule, verdict, percent, note, p=test_p,
                   candidate=EQUIVALENT if inside else DISAGREES)


def not_better(claim: str, est: Estimate, margin: float, *, percent: bool = True, note: str = "") -> Verdict:
    """A claim that an arm is *not* better: ``agrees`` when the 95 % interval lies below 0,
    ``equivalent`` when TOST against ``margin`` passes (no difference either way), ``disagrees``
    when the interval lies above 0, else ``inconclusive``. The row's test is TOST while the
    estimate lies within the margin, the directional test against 0 otherwise."""
    lo, hi = est.interval(0.95)
    p, passed = tost(est, margin)
    rule = ("agrees if the 95% interval lies below 0, equivalent if TOST within "
            f"±{signed_pct(margin).lstrip('+') if percent else margin} passes, disagrees if above 0")
    if math.isfinite(lo) and lo > 0:
        verdict = DISAGREES
    elif math.isfinite(hi) and hi < 0:
        verdict = AGREES
    elif passed:
        verdict = EQUIVALENT
    else:
        verdict = INCONCLUSIVE
    inside = abs(est.effect) < margin
    candidate = EQUIVALENT if inside else (AGREES if est.effect < 0 else DISAGREES)
    return Verdict(claim, est.effect, lo, hi, est.n, rule, verdict, percent, note,
                   p=p if inside else _p(est), candidate=candidate)


FLOOR_NOTE = "below the detector's floor"


def artifact_added(claim: str, est: Estimate, margin: float, *, at_floor: bool, source: str = "",
                   note: str = "", unit: str = "") -> Verdict:
    """Three outcomes for "this arm adds the artifact" against the detector's visibility ``margin``
    (the change a person can just see, :mod:`nriqa.analysis.margins`):

    - ``agrees`` (adds it): the estimate exceeds the margin and the 95 % interval lies above 0;
    - ``equivalent`` (artifact-free): one-sided TOST passes, the 90 % interval lies below the margin;
    - ``inconclusive``: anything else, and always when every cell sits at the detector's floor
      (``at_floor``: the arm's values are all 0) or the standard error is 0 -- a detector that sees
      nothing gives no evidence of absence.

    Both outcomes cannot hold at once (TOST passing puts the estimate below the margin)."""
    lo, hi = est.interval(0.95)
    m = f"{margin:.3g}" + (f" {unit}" if unit else "")
    rule = (f"adds if the estimate exceeds the visibility margin {m}{f' ({source})' if source else ''} and the "
            f"95% interval lies above 0; artifact-free (equivalent) if the 90% interval lies below it")
    if at_floor or not (math.isfinite(est.se) and est.se > 0):
        return Verdict(claim, est.effect, lo, hi, est.n, rule, INCONCLUSIVE, False,
                       "; ".join(x for x in (note, FLOOR_NOTE) if x), unit=unit)
    if est.effect > margin:
        p, candidate = _p(est), AGREES
        verdict = AGREES if math.isfinite(lo) and lo > 0 else INCONCLUSIVE
    else:
        p, passed = tost(est, margin, lower=-math.inf)
        candidate, verdict = EQUIVALENT, (EQUIVALENT if passed else INCONCLUSIVE)
    return Verdict(claim, est.effect, lo, hi, est.n, rule, verdict, False, note, p=p, candidate=candidate,
                   unit=unit)


# --------------------------------------------------------------------------- primary and secondary rows

def as_primary(v: Verdict, claim_id: str) -> Verdict:
    """``v`` marked as the primary row of claim ``claim_id`` (its verdict unchanged)."""
    if claim_id not in PRIMARY_IDS:
        raise ConfigError(f"unknown claim id {claim_id!r}; known: {list(PRIMARY_IDS)}")
    return replace(v, id=claim_id, primary=True, q=float("nan"))


SECONDARY_RULE = "secondary row: decided on its Benjamini-Hochberg q < {alpha:g} within this table"


def family(verdicts: Sequence[Verdict], *, alpha: float = ALPHA) -> list[Verdict]:
    """One table: the primary rows first (in claim order, decided on their own tests), then the
    secondary rows in their order with Benjamini-Hochberg q-values over the secondary rows'
    p-values, each decided on ``q < alpha`` (its ``candidate``; ``inconclusive`` otherwise or
    without a p-value)."""
    primary = sorted((v for v in verdicts if v.primary), key=lambda v: PRIMARY_IDS.index(v.id))
    ids = [v.id for v in primary]
    if len(set(ids)) != len(ids):
        raise ValueError(f"a claim has more than one primary row: {ids}")
    secondary = [v for v in verdicts if not v.primary]
    q = bh_qvalues([v.p for v in secondary]) if secondary else np.array([])
    out = list(primary)
    for v, qv in zip(secondary, q):
        qv = float(qv)
        decided = v.candidate if (v.candidate and math.isfinite(qv) and qv < alpha) else INCONCLUSIVE
        out.append(replace(v, q=qv, verdict=decided, rule=f"{v.rule}; {SECONDARY_RULE.format(alpha=alpha)}"))
    return out


def chance_line(verdicts: Sequence[Verdict] | Sequence[Mapping[str, Any]], alpha: float = ALPHA) -> str:
    """How many decisions chance alone would make among the table's secondary rows (``alpha`` x rows
    without any correction), and what the q-value rule keeps instead."""
    k = sum(1 for v in verdicts if not (v.get("primary") if isinstance(v, Mapping) else v.primary))
    if not k:
        return ""
    return (f"{k} secondary rows: with no true effect anywhere, deciding each at p < {alpha:g} would make "
            f"about {alpha * k:.1f} decisions by chance alone; deciding on BH q < {alpha:g} keeps the expected "
            f"share of chance decisions among the decided rows at {alpha:.0%} or less.")


# --------------------------------------------------------------------------- notebook 05

def discriminator_ranking(gains: pd.DataFrame, kinds: Mapping[str, str], s: Settings, *,
                          outcome: str = ("reconstruct detail more faithfully "
                                          "(full-reference measures)"), primary: bool = True) -> list[Verdict]:
    """Patch-level vs vanilla and convolutional vs Transformer discriminators.

    Args:
        gains: :func:`nriqa.analysis.stats.paired_gains` of the GAN arms (``run, seed, clip, gain``
            over one common reference, e.g. the baseline, on the measures the outcome names).
        kinds: GAN arm (run label) -> discriminator kind; a kind's value is the mean over its arms
            (its GAN weights), the two groups' difference is paired on seed index and clip.
        outcome: what the claim says the better kinds do (the claim's wording).

    With ``primary``, the contrast ``verdicts.primary.B2`` names (:func:`primary_spec`) is B2's
    primary row (one call per table may claim it: :func:`family` refuses two).
    """
    present = {r: k for r, k in kinds.items() if r in set(gains["run"])}
    groups = [("patch_vs_vanilla", "patch-level discriminators (PatchGAN, U-Net)", lambda k: k in PATCH_LEVEL,
               "a vanilla one", lambda k: k == "vanilla"),
              ("convolutional_vs_transformer", "convolutional discriminators", lambda k: k not in TRANSFORMER,
               "Transformer ones", lambda k: k in TRANSFORMER)]
    out = []
    for name, subject, is_better, other, is_worse in groups:
        better = [r for r, k in present.items() if is_better(k)]
        worse = [r for r, k in present.items() if is_worse(k)]
        if not (better and worse):
            continue
        est = contrast(gains, better, worse, rng=s.rng(), n_boot=s.n_boot)
        v = directional(f"{subject} {outcome} than {other}", est, note="difference of mean gains over GAN weights")
        out.append(as_primary(v, "B2") if primary and primary_spec(s)["B2"] == name else v)
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


def transfer_noise_bar(transfer: pd.DataFrame) -> tuple[float, str]:
    """The bar of "transfers little": the seed-to-seed spread of one IQA training's held-out SRCC.

    ``transfer``: as :func:`transfer_changes`. Within each discriminator kind (the IQA architecture
    differs per kind), the sample SD (``ddof=1``) over seeds of the *random-init* arm's ``srcc`` --
    what re-running the same training with another seed moves it by; pooled over kinds as
    ``sqrt(sum_k (n_k - 1) s_k^2 / sum_k (n_k - 1))`` (``n_k``: the kind's seeds; a kind with one seed
    adds nothing). A transfer effect below it is smaller than one training's seed noise. Returns
    ``(bar, source)``: ``source`` says where the number comes from (it goes into the verdict's rule);
    ``bar`` is NaN when no kind has two seeds."""
    t = transfer if "seed" in transfer.columns else transfer.assign(seed=0)
    rnd = t[t["init"] == "random"].dropna(subset=["srcc"])
    ss = df = 0.0
    for _, g in rnd.groupby("discriminator", sort=False):
        if len(g) >= 2:
            ss += float(np.var(g["srcc"].to_numpy(float), ddof=1)) * (len(g) - 1)
            df += len(g) - 1
    n_kinds = rnd["discriminator"].nunique()
    if df == 0:
        return float("nan"), "no bar: no discriminator kind has the random-init arm at two seeds"
    bar = math.sqrt(ss / df)
    dof = f"{int(df)} degree{'s' if df != 1 else ''} of freedom"
    return bar, (f"bar = pooled SD over seeds of the random-init arm's held-out SRCC within each kind, "
                 f"pooled over {n_kinds} kind{'s' if n_kinds != 1 else ''} ({dof})")


def transfer_little(transfer: pd.DataFrame, s: Settings, *, per_kind: bool = True,
                    label: str = "SRCC") -> list[Verdict]:
    """Discriminators transfer little when reused to initialise an NR-IQA model.

    ``transfer``: as :func:`transfer_changes` (``srcc``: held-out SRCC on the label ``label``
    names, e.g. "level-order SRCC"). The effect is the mean over kinds and seeds of the paired
    change (discriminator minus random initialisation, same kind and seed); the 95 % interval is
    :func:`~nriqa.analysis.stats.seed_bootstrap` with seeds resampled and the kinds fixed (a
    seed missing a kind's pair is left out). The bar is :func:`transfer_noise_bar` (the seed
    noise of the random-init arm, pooled over kinds; the rule prints its value and source):
    ``agrees`` when the interval lies below it, ``disagrees`` when above it, else ``inconclusive``
    (one seed: no interval, no bar). The first row pools the kinds; the second is the directional
    row against 0 (:func:`transfer_direction`); with ``per_kind`` (and more than one kind) one
    "transfers little" row per kind follows, against the same pooled bar."""
    change = transfer_changes(transfer)
    complete = change.dropna(axis=0, how="any")
    bar, source = transfer_noise_bar(transfer)
    rule = (f"agrees if the 95% interval (bootstrap over seeds, kinds fixed) lies below a {label} change of "
            f"{bar:+.3f}, disagrees if above; {source}")
    note = f"held-out {label} change, discriminator vs random initialisation, paired per seed"

    def verdict(claim: str, arr: np.ndarray, kinds: int) -> Verdict:
        n = f"{len(arr)} seed{'s' if len(arr) != 1 else ''} x {kinds} kind{'s' if kinds != 1 else ''}"
        if not len(arr):
            return Verdict(claim, float("nan"), float("nan"), float("nan"), n, rule, INCONCLUSIVE, False, note)
        est = seed_bootstrap(arr, rng=s.rng(), n_boot=s.n_boot)
        lo, hi = est.interval(0.95)
        if math.isfinite(bar) and math.isfinite(hi) and hi < bar:
            v = AGREES
        elif math.isfinite(bar) and math.isfinite(lo) and lo > bar:
            v = DISAGREES
        else:
            v = INCONCLUSIVE
        above = est.effect > bar
        p = _beyond_p(est, bar, above) if math.isfinite(bar) else float("nan")
        candidate = (DISAGREES if above else AGREES) if math.isfinite(bar) else ""
        return Verdict(claim, est.effect, lo, hi, n, rule, v, False, note, p=p, candidate=candidate)

    out = [verdict("discriminators transfer little when reused to initialise an NR-IQA model",
                   complete.to_numpy(float), change.shape[1]),
           transfer_direction(complete, s, label=label, note=note)]
    if per_kind and change.shape[1] > 1:
        for kind in change.columns:
            col = change[[kind]].dropna()
            out.append(verdict(f"the {kind} discriminator transfers little when reused to initialise an NR-IQA model",
                               col.to_numpy(float), 1))
    return out


def transfer_direction(change: pd.DataFrame, s: Settings, *, label: str = "SRCC", note: str = "") -> Verdict:
    """Discriminator initialisation changes held-out SRCC: the directional row against 0.

    ``change``: ``(seeds, kinds)`` paired changes (:func:`transfer_changes`; seeds with a missing
    pair already dropped). The effect and its 95 % interval are :func:`transfer_little`'s (seeds
    resampled, kinds fixed); :func:`directional`: ``agrees`` when the interval lies above 0 (the
    discriminator's backbone raises held-out {label}), ``disagrees`` when below 0, else
    ``inconclusive`` (also with one seed: no interval)."""
    arr = change.to_numpy(float)
    kinds, seeds = change.shape[1], len(arr)
    n = f"{seeds} seed{'s' if seeds != 1 else ''} x {kinds} kind{'s' if kinds != 1 else ''}"
    claim = f"discriminator initialisation changes held-out {label}"
    if not seeds:
        return Verdict(claim, float("nan"), float("nan"), float("nan"), n, _RULE_UP, INCONCLUSIVE, False, note)
    est = seed_bootstrap(arr, rng=s.rng(), n_boot=s.n_boot)
    return replace(directional(claim, est, percent=False, note=note), n=n)


# --------------------------------------------------------------------------- notebook 06

def assessment_is_not_optimization(corr: Correlation | RankCorrelation, corr90: Correlation | RankCorrelation,
                                   margin: float, *,
                                   units: str | None = None,
                                   resampled: str = "bootstrap over measures") -> Verdict:
    """Spearman rho between assessment SRCC and optimization gain over the measures (``corr``: 95 %
    interval, ``corr90``: the same at 90 % for the equivalence test). ``disagrees`` when the
    95 % interval lies above 0 (good assessors are better objectives), ``agrees`` when below 0,
    ``equivalent`` when the 90 % interval lies within ±``margin`` (no association) -- a branch
    dropped when ``corr.n`` measures cannot reach it even at rho = 0
    (:func:`~nriqa.analysis.multiplicity.rho_equivalence_reachable`) -- else ``inconclusive``,
    including every case without an interval. The rule prints the minimum detectable rho for the
    ``n`` used. ``p``: two-sided against 0 on Fisher's z scale, from the 95 % interval's width."""
    n = int(corr.n)
    reachable = rho_equivalence_reachable(n, margin) if n > 3 else False
    lo, hi = corr.lo, corr.hi
    if math.isfinite(lo) and lo > 0:
        verdict = DISAGREES
    elif math.isfinite(hi) and hi < 0:
        verdict = AGREES
    elif reachable and math.isfinite(corr90.lo) and -margin < corr90.lo and corr90.hi < margin:
        verdict = EQUIVALENT
    else:
        verdict = INCONCLUSIVE
    mdr = f"{min_detectable_rho(n):.2f}" if n > 3 else "none"
    equiv = (f", equivalent if the 90% interval lies within ±{margin:g}" if reachable else
             f"; no equivalence branch: {n} measures cannot put a 90% interval within ±{margin:g}")
    return Verdict("a measure that assesses quality well is not necessarily a good optimization objective",
                   corr.rho, lo, hi, units or f"{n} measures",
                   f"Spearman rho ({resampled}): agrees if the 95% interval lies below 0, "
                   f"disagrees if above 0{equiv}; minimum detectable |rho| at n = {n}: {mdr}",
                   verdict, percent=False, p=_rho_p(corr), candidate=AGREES if corr.rho < 0 else DISAGREES)


def _rho_p(corr: Correlation | RankCorrelation) -> float:
    """Two-sided p of rho = 0 from a 95 % interval on Fisher's z scale (t with n - 3 df)."""
    n = int(corr.n)
    if not (math.isfinite(corr.lo) and math.isfinite(corr.hi) and n > 3):
        return float("nan")
    cap = 0.999
    z = [math.atanh(max(-cap, min(cap, x))) for x in (corr.lo, corr.rho, corr.hi)]
    q = float(sps.t.ppf(0.975, n - 3))
    se = (z[2] - z[0]) / (2 * q)
    return float(2 * sps.t.sf(abs(z[1]) / se, n - 3)) if se > 0 else float("nan")


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
    v = assessment_is_not_optimization(c95, c90, s.rho_margin, units=c95.units,
                                       resampled="measures, seeds and clips resampled")
    return as_primary(v, "B1") if primary_spec(s)["B1"] == "assessment_vs_optimization" else v


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
#
# Effect tables are ``run, seed, clip, <value>`` (``model``, ``dataset`` optional): a standardised
# change of a judge (:mod:`nriqa.analysis.standardise`, seed-to-seed SD units, positive = better) or
# an artifact change (:func:`~nriqa.analysis.stats.paired_change`, with a ``measure`` column).

def naive_nr_tuning(term: str, *, held_out_nr: pd.DataFrame | None, own: pd.DataFrame | None,
                    fr: pd.DataFrame | None, s: Settings, value: str = "value", unit: str = "SD") -> list[Verdict]:
    """A1's secondary rows for the NR-IQA term ``term``: naive fine-tuning raises the held-out NR
    judges and its own score, and lowers the full-reference measures (a table may be None when the
    panel has no such measure; ``value``: the column holding the effect, in ``unit``). Held-out judges
    share no training data with ``term`` (``Card.training_data``; the caller selects them,
    :func:`nriqa.study.verdicts.held_out_judges`); its own score is its own row, never a judge."""
    out = []
    for what, g, up in [("raises the held-out NR-IQA judges", held_out_nr, True),
                        ("raises its own score", own, True),
                        ("lowers the full-reference measures", fr, False)]:
        if g is not None and term in set(g["run"]):
            out.append(directional(f"naive {term} fine-tuning {what}",
                                   contrast(g, [term], rng=s.rng(), n_boot=s.n_boot, value=value),
                                   expect_positive=up, percent=False, unit=unit, note="change over the baseline"))
    return out


def lpips_judges_nr_badly(effects: pd.DataFrame, terms: Sequence[str], lpips: str, s: Settings, *,
                          value: str = "value", unit: str = "SD") -> list[Verdict]:
    """A2's secondary rows: the LPIPS-type measure ``lpips`` scores each NR-only fine-tune worse
    than the baseline. ``effects``: the change on ``lpips`` alone (positive = better)."""
    return [directional(f"{lpips} judges naive {t} fine-tuning worse than the baseline",
                        contrast(effects, [t], rng=s.rng(), n_boot=s.n_boot, value=value), expect_positive=False,
                        percent=False, unit=unit, note=f"change on {lpips}") for t in terms if t in set(effects["run"])]


def lpips_mitigates(combo: str, single: str, *, panel: pd.DataFrame, artifacts: pd.DataFrame | None,
                    s: Settings, value: str = "value", unit: str = "SD") -> list[Verdict]:
    """A3's secondary rows: adding the LPIPS-type term to an NR term (arm ``combo``) raises the
    panel effect over the NR term alone (arm ``single``) and lowers each artifact. Paired on seed
    index and clip: panel ``combo - single``, artifacts ``combo - single`` (negative = fewer)."""
    out = [directional(f"{combo} raises the panel over {single} alone",
                       contrast(panel, [combo], [single], rng=s.rng(), n_boot=s.n_boot, value=value),
                       percent=False, unit=unit, note="difference of panel effects")]
    if artifacts is not None:
        for m, rows in artifacts.groupby("measure", sort=False):
            out.append(directional(f"{combo} has less {m.replace('_', ' ')} than {single} alone",
                                   contrast(rows, [combo], [single], rng=s.rng(), n_boot=s.n_boot, value="change"),
                                   expect_positive=False, percent=False, note=f"{m}: {combo} minus {single}"))
    return out


def at_floor(values: pd.DataFrame, runs: Sequence[str], measure: str | None = None, *, floor: float = 0.0) -> bool:
    """Whether every value of ``runs`` (on ``measure``, when given) sits at the detector's floor
    (``values``: :func:`nriqa.study.verdicts.artifact_values`, ``run, seed, clip, measure, value``)."""
    rows = values[values["run"].isin(list(runs))]
    if measure is not None:
        rows = rows[rows["measure"] == measure]
    return bool(len(rows)) and bool((rows["value"] <= floor).all())


def artifacts_added(changes: pd.DataFrame, values: pd.DataFrame, terms: Sequence[str],
                    margins: Mapping[str, float], s: Settings, *,
                    sources: Mapping[str, str] | None = None) -> list[Verdict]:
    """A1/A4's secondary rows: one row per (term, detector), :func:`artifact_added` against that
    detector's visibility margin (``margins``; ``sources``: where each margin comes from)."""
    out = []
    for t in terms:
        if t not in set(changes["run"]):
            continue
        for m, rows in changes.groupby("measure", sort=False):
            if m not in margins:
                raise ConfigError(f"no visibility margin for the artifact detector {m!r}; margins: {sorted(margins)}")
            est = contrast(rows, [t], rng=s.rng(), n_boot=s.n_boot, value="change")
            out.append(artifact_added(f"naive {t} fine-tuning adds {m.replace('_', ' ')}", est, float(margins[m]),
                                      at_floor=at_floor(values, [t], m), note=f"{m} minus the baseline's"))
    return out


def artifact_score(changes: pd.DataFrame, margins: Mapping[str, float]) -> pd.DataFrame:
    """``run, seed, clip, change``: the artifact load -- the mean over detectors of each detector's
    *added* artifact, ``max(change / margin, 0)`` (1 = one just-visible artifact's worth; a detector
    that improves does not offset another that worsens)."""
    missing = sorted(set(changes["measure"]) - set(margins))
    if missing:
        raise ConfigError(f"no visibility margin for the artifact detectors {missing}")
    scaled = (changes["change"] / changes["measure"].map(lambda m: float(margins[m]))).clip(lower=0)
    t = changes.assign(change=scaled)
    keys = [c for c in ("run", "seed", "model", "dataset", "clip") if c in t.columns]
    return t.groupby(keys, as_index=False, sort=False)["change"].mean()


def any_artifact_added(claim: str, changes: pd.DataFrame, values: pd.DataFrame, terms: Sequence[str],
                       margins: Mapping[str, float], s: Settings, *, note: str = "") -> Verdict:
    """Whether the arms ``terms`` (pooled) add a visible artifact of *any* detector, in margin units
    (each detector's change / its margin, 1 = just visible):

    - ``agrees`` (adds): some detector's estimate exceeds 1 and its interval at ``1 - alpha / k``
      (Bonferroni over the ``k`` detectors) lies above 0 -- the row shows that detector;
    - ``equivalent`` (artifact-free): every detector's one-sided TOST against 1 passes at ``alpha``
      (an intersection-union test: no correction needed) -- the row shows the worst detector;
    - ``inconclusive`` otherwise, and when every value of the arms sits at the detectors' floor."""
    k = changes["measure"].nunique()
    level = 1 - s.alpha / max(k, 1)
    ests = {}
    for m, rows in changes.groupby("measure", sort=False):
        t = rows.assign(change=rows["change"] / float(margins[m]))
        ests[m] = contrast(t, list(terms), rng=s.rng(), n_boot=s.n_boot, value="change")
    worst = max(ests, key=lambda m: ests[m].effect)
    est = ests[worst]
    lo, hi = est.interval(0.95)
    rule = (f"adds if a detector's estimate exceeds 1 margin and its {100 * level:.1f}% interval (Bonferroni over "
            f"{k} detectors) lies above 0; artifact-free (equivalent) if every detector's 90% interval lies below "
            "1 margin; the row shows the detector with the largest estimate and its 95% interval")
    note = "; ".join(x for x in (note, f"largest: {worst}") if x)
    if at_floor(values, terms):
        return Verdict(claim, est.effect, lo, hi, est.n, rule, INCONCLUSIVE, False,
                       "; ".join((note, FLOOR_NOTE)), unit="margins")
    adds = {m: e.p_value() * k for m, e in ests.items() if e.effect > 1}
    if adds:
        p = min(1.0, min(adds.values()))
        verdict = AGREES if p < s.alpha else INCONCLUSIVE
        return Verdict(claim, est.effect, lo, hi, est.n, rule, verdict, False, note, p=p, candidate=AGREES,
                       unit="margins")
    p_free = max(tost(e, 1.0, lower=-math.inf)[0] for e in ests.values())
    verdict = EQUIVALENT if math.isfinite(p_free) and p_free < s.alpha else INCONCLUSIVE
    return Verdict(claim, est.effect, lo, hi, est.n, rule, verdict, False, note, p=p_free, candidate=EQUIVALENT,
                   unit="margins")


def paper_a_primary(*, held_out: pd.DataFrame | None, lpips: pd.DataFrame | None, lpips_name: str | None,
                    changes: pd.DataFrame | None, values: pd.DataFrame | None, margins: Mapping[str, float],
                    terms: Sequence[str], pairs: Sequence[tuple[str, str]], s: Settings,
                    value: str = "value") -> list[Verdict]:
    """The primary rows of A1-A4, each pooled over the NR-only arms ``terms`` (``pairs``: ``(combo,
    single)`` of NR + LPIPS and the NR term alone) -- a claim whose arms are missing has no row:

    - A1 ``held_out_nr_judges``: the held-out NR judges' standardised change (``held_out``: judges sharing
      no training data with the arm's term, :func:`nriqa.study.verdicts.held_out_judges`), > 0;
    - A2 ``lpips_judge``: the LPIPS-type judge's standardised change (``lpips``), < 0;
    - A3 ``combo_artifacts``: artifact load (:func:`artifact_score`) of NR + LPIPS minus NR alone, < 0;
    - A4 ``nr_artifacts``: does any detector see a visible artifact added by the NR-only arms
      (:func:`any_artifact_added`: adds / artifact-free / inconclusive).
    """
    spec = primary_spec(s)
    out: list[Verdict] = []
    pooled = f"{len(terms)} NR-only arms pooled"
    if held_out is not None and terms and spec["A1"] == "held_out_nr_judges":
        est = contrast(held_out, list(terms), rng=s.rng(), n_boot=s.n_boot, value=value)
        out.append(as_primary(directional("naive NR-IQA fine-tuning raises the held-out NR-IQA judges", est,
                                          percent=False, unit="SD", note=f"{pooled}; median judge"), "A1"))
    if lpips is not None and terms and spec["A2"] == "lpips_judge":
        est = contrast(lpips, list(terms), rng=s.rng(), n_boot=s.n_boot, value=value)
        out.append(as_primary(directional(f"{lpips_name} judges naive NR-IQA fine-tuning worse than the baseline",
                                          est, expect_positive=False, percent=False, unit="SD", note=pooled), "A2"))
    if changes is None or values is None:
        return out
    score = artifact_score(changes, margins)
    if pairs and spec["A3"] == "combo_artifacts":
        combos, singles = [c for c, _ in pairs], [t for _, t in pairs]
        est = contrast(score, combos, singles, rng=s.rng(), n_boot=s.n_boot, value="change")
        out.append(as_primary(directional("adding an LPIPS-type term to an NR-IQA term lowers its artifacts", est,
                                          expect_positive=False, percent=False, unit="margins",
                                          note=f"{len(pairs)} NR + LPIPS minus NR alone; artifact load"), "A3"))
    if terms and spec["A4"] == "nr_artifacts":
        out.append(as_primary(any_artifact_added("naive NR-IQA fine-tuning adds a visible artifact", changes, values,
                                                 terms, margins, s, note=pooled), "A4"))
    return out


#: claim id -> the contrasts that can decide it (the first is the default)
CONTRASTS = {
    "A1": ("held_out_nr_judges",), "A2": ("lpips_judge",), "A3": ("combo_artifacts",), "A4": ("nr_artifacts",),
    "B1": ("assessment_vs_optimization",), "B2": ("patch_vs_vanilla", "convolutional_vs_transformer"),
    "B3": ("transfers_little",),
}


def primary_spec(s: Settings) -> dict[str, str]:
    """Claim id -> the contrast that decides it: the profile's ``verdicts.primary`` (``{A1: {contrast:
    held_out_nr_judges}, ...}`` or ``{A1: held_out_nr_judges}``) over the defaults of :data:`CONTRASTS`."""
    out = {}
    for cid, options in CONTRASTS.items():
        given = s.primary.get(cid, options[0])
        name = given.get("contrast") if isinstance(given, Mapping) else given
        if name not in options:
            raise ConfigError(f"verdicts.primary.{cid}: contrast {name!r} is not one of {list(options)}")
        out[cid] = str(name)
    return out
