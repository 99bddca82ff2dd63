"""The papers' claims tested against the tables notebooks 05 and 06 measure.

Each function turns measured numbers into a :class:`Verdict`: the claim, the evidence (the
numbers, formatted) and one of ``agrees`` / ``disagrees`` / ``not resolved``. An effect counts
only when it exceeds ``NOISE_FACTOR`` times the *seed noise*, the difference between two runs
that differ only in their training seed (sampled batches). On a CPU budget many effects are
smaller than that; the verdict then says "not resolved" instead of reading the sign of noise.

Gains are fractions (``0.012`` = +1.2 %), as returned by :func:`nriqa.analysis.relative_gain`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import pandas as pd

NOISE_FACTOR = 2.0
AGREES, DISAGREES, UNRESOLVED = "agrees", "disagrees", "not resolved"
PATCH_LEVEL = ("patchgan", "unet")
TRANSFORMER = ("vit",)
#: A discriminator-initialised IQA model "transfers little" when its held-out SRCC rises by less
#: than this over the same architecture from random initialisation (a stated, not a fitted, bar).
TRANSFER_BAR = 0.1


@dataclass(frozen=True)
class Verdict:
    claim: str
    evidence: str
    verdict: str


def compare(effect: float, noise: float, *, expect_positive: bool = True) -> str:
    """Verdict on ``effect``, which the claim predicts to be positive (or negative when
    ``expect_positive`` is False): unresolved when ``|effect| <= NOISE_FACTOR * noise`` or not finite."""
    if not math.isfinite(effect):
        return UNRESOLVED
    if math.isfinite(noise) and abs(effect) <= NOISE_FACTOR * noise:
        return UNRESOLVED
    return AGREES if (effect > 0) == expect_positive else DISAGREES


def report(verdicts: Iterable[Verdict]) -> str:
    """A Markdown table ``claim | measured here | verdict`` (a sentence when there is none)."""
    verdicts = list(verdicts)
    if not verdicts:
        return "_No claim is testable with this profile's settings (too few discriminators or measures)._"
    rows = ["| claim (papers) | measured here | verdict |", "|---|---|---|"]
    for v in verdicts:
        cells = [s.replace("|", "/").replace("\n", " ") for s in (v.claim, v.evidence, v.verdict)]
        rows.append(f"| {cells[0]} | {cells[1]} | **{cells[2]}** |")
    return "\n".join(rows)


def pct(x: float) -> str:
    """A signed percentage with two significant digits (``0.0123`` -> ``+1.2%``, ``1e-5`` -> ``+0.0010%``)."""
    if not math.isfinite(x):
        return "nan"
    decimals = 2 if abs(x) >= 1e-3 or x == 0 else min(8, 1 - math.floor(math.log10(abs(x) * 100)))
    return f"{x * 100:+.{decimals}f}%"


def _noise_text(noise: float) -> str:
    return f"seed noise {pct(noise).lstrip('+')}" if math.isfinite(noise) else "seed noise unknown"


def discriminator_ranking(grid: pd.DataFrame, noise: float, *, column: str = "fr_gain_vs_fidelity",
                          outcome: str = "reconstruct detail more faithfully (full-reference measures)") -> list[Verdict]:
    """Patch-level vs vanilla and convolutional vs Transformer discriminators, on ``column``.

    Args:
        grid: one row per GAN run with ``discriminator`` and ``column``, a gain of the run over the
            fidelity-only fine-tune (default: on the full-reference measures, i.e. faithful detail).
        noise: seed noise of that gain (``|gain of a reseeded fidelity-only run|``).
        outcome: what the claim says the better kinds do (the claim's wording).
    """
    by = grid.groupby("discriminator")[column].mean()
    groups = [  # (claim subject, its kinds, short label, compared with, their kinds, short label)
        ("patch-level discriminators (PatchGAN, U-Net)", [d for d in PATCH_LEVEL if d in by.index], "patch-level",
         "a vanilla one", [d for d in ("vanilla",) if d in by.index], "vanilla"),
        ("convolutional discriminators", [d for d in by.index if d not in TRANSFORMER], "convolutional",
         "Transformer ones", [d for d in by.index if d in TRANSFORMER], "Transformer"),
    ]
    out = []
    for subject, better, better_label, other, worse, worse_label in groups:
        if not (better and worse):
            continue
        b, w = float(by[better].mean()), float(by[worse].mean())
        out.append(Verdict(
            f"{subject} {outcome} than {other}",
            f"gain vs fidelity-only, mean over GAN weights: {better_label} {pct(b)}, {worse_label} {pct(w)}; "
            f"difference {pct(b - w)} ({_noise_text(noise)})",
            compare(b - w, noise)))
    return out


def artifact_suppression(without_gan: Mapping[str, float], with_gan: Mapping[str, float],
                         reseeded: Mapping[str, float], measures: Iterable[str], term: str) -> list[Verdict]:
    """Does adding a discriminator suppress the artifacts an NR-IQA loss ``term`` introduces?

    Args:
        without_gan, with_gan: artifact measure -> value (higher = more artifact) of the fine-tune
            with ``term`` and of the same fine-tune plus a GAN term.
        reseeded: the same values for the fine-tune without GAN repeated with another seed (noise).
    """
    out = []
    for m in measures:
        a, b, r = float(without_gan[m]), float(with_gan[m]), float(reseeded[m])
        noise = abs(r - a)
        out.append(Verdict(
            f"a discriminator suppresses the {m.replace('_', ' ')} an NR-IQA loss introduces",
            f"{m} with {term}: {a:.5f} without GAN, {b:.5f} with GAN ({pct((b - a) / max(a, 1e-12))}); "
            f"reseeded run without GAN {r:.5f}",
            compare(a - b, noise)))
    return out


def transfer_little(transfer: pd.DataFrame, bar: float = TRANSFER_BAR) -> Verdict:
    """``transfer``: rows ``discriminator, init ("random" | "discriminator"), srcc``."""
    piv = transfer.pivot_table(index="discriminator", columns="init", values="srcc")
    change = (piv["discriminator"] - piv["random"])
    mean = float(change.mean())
    parts = ", ".join(f"{d} {v:+.3f}" for d, v in change.items())
    verdict = AGREES if mean < bar else DISAGREES
    return Verdict(
        "discriminators transfer little when reused to initialise an NR-IQA model",
        f"held-out SRCC change from discriminator initialisation vs random: {parts}; mean {mean:+.3f}, "
        f"median {float(change.median()):+.3f} (bar for 'little': mean < {bar:+.2f})",
        verdict)


def assessment_is_not_optimization(table: pd.DataFrame, rho: float, p: float) -> Verdict:
    """``table``: the asymmetry table (``measure, srcc, gain``); ``rho, p``: its Spearman correlation.

    The claim holds unless the correlation is positive and significant (p < 0.05)."""
    t = table.set_index("measure")
    best_a, best_o = str(t["srcc"].idxmax()), str(t["gain"].idxmax())
    verdict = DISAGREES if (rho > 0 and p < 0.05) else AGREES
    return Verdict(
        "a measure that assesses quality well is not necessarily a good optimization objective",
        f"Spearman(assessment SRCC, gain as a loss) {rho:+.2f} (p = {p:.2f}, n = {len(t)}); best assessor "
        f"{best_a} (SRCC {t.loc[best_a, 'srcc']:.2f}) gains {pct(t.loc[best_a, 'gain'])} as a loss; best "
        f"objective {best_o} (SRCC {t.loc[best_o, 'srcc']:.2f}) gains {pct(t.loc[best_o, 'gain'])}",
        verdict)


def adversarial_fidelity(rows: pd.DataFrame, noise: float) -> list[Verdict]:
    """Under adversarial training, does a better-assessing fidelity term optimize better?

    Args:
        rows: one row per fidelity measure with ``measure, srcc`` (its assessment accuracy) and
            ``gain_vs_charbonnier_gan`` (held-out panel gain of ``Charbonnier + measure + GAN``
            over ``Charbonnier + GAN``, the measure itself left out of the panel).
        noise: seed noise of a panel gain.
    """
    out = []
    for r in rows.itertuples():
        gain = float(r.gain_vs_charbonnier_gan)
        # the claim predicts no improvement: only a resolved improvement contradicts it
        verdict = compare(gain, noise, expect_positive=False)
        if verdict == UNRESOLVED:
            verdict = f"{AGREES} (no resolved improvement)"
        out.append(Verdict(
            f"under adversarial training, a good assessor ({r.measure}, SRCC {r.srcc:.2f}) is not "
            "necessarily a better fidelity term than Charbonnier alone",
            f"held-out panel gain of adding {r.measure} to Charbonnier + GAN: {pct(gain)} ({_noise_text(noise)})",
            verdict))
    return out
