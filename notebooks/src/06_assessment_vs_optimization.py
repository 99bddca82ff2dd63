# ---
# jupyter:
#   jupytext:
#     formats: ipynb,src//py:percent
#     notebook_metadata_filter: -jupytext.text_representation
#   kernelspec:
#     display_name: Python (nriqa)
#     language: python
#     name: nriqa
# ---

# %% [markdown]
# # 06 · Does a metric that assesses well also optimize well?
#
# **Question.** If a measure agrees well with quality labels (high SRCC as an *assessor*), is it
# also a good *objective*, one whose optimization improves quality as judged by other measures?
#
# **Method.** For every measure that notebook 02 used as a loss: its assessment accuracy against
# its optimization value (the median standardised change of the *other* panel measures when it is
# added to Charbonnier, in units of each measure's seed-to-seed spread, per fine-tune seed and
# test clip). A rank correlation near zero or negative is the asymmetry (claim **B1**).
#
# *Assessment accuracy from human ratings.* On the demo profiles no human-rated set is on disk, so
# the accuracy of each measure is the published SRCC *of the same implementation* on the human-rated
# set the profile names (`asymmetry.published`: pyiqa's benchmark of its own implementations on
# TID2013, with a citation per number, `nriqa/quality/published_srcc.csv`); a measure without one
# (the kit-trained NR models: no human-rated SRCC exists offline) is left out of B1 and listed. On the
# paper profile (`asymmetry.iqa_sets`): SRCC against human opinion scores on the sets on disk.
# Never the kit's own synthetic distortion set: the kit's NR models are trained on it (circular).

# %% tags=["parameters"]
from typing import Optional  # the parameters' annotations below

PROFILE: "Optional[str]" = None  # demo | smoke | paper; None: $NRIQA_PROFILE, else demo
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N
RUN_ROOT: "Optional[str]" = None  # folder of the run folders; None: $NRIQA_RUNS, else <repository>/runs
SEED: int = 0  # seed of the baseline; each fine-tune arm runs once per seed of the profile's `seeds` (default [SEED])

# %%
import numpy as np
from IPython.display import Markdown
from scipy.stats import spearmanr

from nriqa.analysis import assessment_frame, asymmetry_table, claims
from nriqa.study import assess_vs_optimize as study
from nriqa.study.clock import timed
from nriqa.study.manifest import manifest_line
from nriqa.study.runs import ensure_kit_iqa, figure_dir, profile
from nriqa.viz import save_figure
from nriqa.viz.plots import asymmetry_scatter

cfg = profile(PROFILE, device=DEVICE, seed=SEED, run_root=RUN_ROOT)
FIG = figure_dir(cfg)
print(manifest_line(cfg))  # what the numbers depend on besides the profile
ensure_kit_iqa(cfg)

# %% [markdown]
# ## Assessment accuracy from human-rated data

# %%
with timed("measuring each measure's assessment accuracy"):
    assess = study.assessment_accuracies(cfg)
print("left out of B1 (no human-grounded accuracy):", ", ".join(study.left_out(cfg, assess)) or "none")
assessment_frame(assess)

# %% [markdown]
# ## Optimization value and the asymmetry
# How each measure optimizes, by the method the profile names (`asymmetry.optimization`): on the
# demo, `pixels` -- each seed's fidelity-only fine-tune output (notebook 02) on each test clip is
# optimized directly against the measure (Adam on a centre crop's pixels, Charbonnier anchor to the
# start; the method of Ding et al. 2021), and every *other* panel judge scores the result against
# the start, in units of that judge's seed-to-seed spread; the median over judges is the measure's
# value per seed and clip. On the paper profile, `finetune`: notebook 02's fine-tunes with the measure.

# %%
with timed("optimizing each measure (B1)"):
    units = study.optimization_gains(cfg, list(assess))  # one held-out effect per measure, seed and test clip
optimize = study.optimization_values(cfg, units)  # its mean over seeds and clips
table = asymmetry_table(assess, optimize)
table.dropna(axis=1, how="all").style.format("{:+.2f}", subset=["gain"])  # gain: SD units; no all-empty column

# %% expected_output="True" tags=["nbval-check-output"]
print(set(table["measure"]) <= set(cfg["asymmetry"]["measures"]))

# %% [markdown]
# Where each accuracy comes from (one citation per measure):

# %%
table[["measure"]].assign(source=[assess[m].get("source", assess[m].get("label", "")) for m in table["measure"]])

# %%
fig = asymmetry_scatter(table.merge(study.seed_range(units), on="measure", how="left"),
                        xlabel=f"assessment accuracy: SRCC vs {study.assessment_label(table)}",
                        spread=("gain_seed_min", "gain_seed_max"),
                        ylabel="optimization effect: median held-out judge, seed-SD units (\u2191 better)")
save_figure(fig, "06_assessment_vs_optimization", folder=FIG);

# %% [markdown]
# *Figure: one point per measure: how well it assesses (SRCC against the label named on the
# axis, right is better) against what
# optimizing it did to the other panel measures (up is better); points rising to the right
# would mean good assessors make good losses. The bar through a point runs from its lowest to
# its highest seed (each seed's gain averaged over the test clips).*

# %%
print(study.describe_asymmetry(table))
# the interval resamples measures, their seeds and the clips; inconclusive unless it decides
verdicts = study.b1_verdicts(cfg, table, units)
Markdown(claims.report(verdicts))

# %% [markdown]
# The asymmetry by hand from the table: Spearman's rank correlation between how well each measure
# assesses (`srcc`) and what optimizing it did to the other panel measures (`gain`), the verdict's
# effect. Near zero or negative is the asymmetry; it needs at least three measures.

# %%
both = table.dropna(subset=["srcc", "gain"])
rho = spearmanr(both["srcc"], both["gain"])[0] if len(both) >= 3 else float("nan")
assert np.isclose(rho, verdicts[0].effect, rtol=0, atol=1e-9, equal_nan=True)
print(f"Spearman rho (srcc, gain) over {len(both)} measures: {rho:+.3f}" if len(both) >= 3
      else f"{len(both)} measures: too few for a rank correlation")

# %% [markdown]
# ## Under adversarial training
# The papers add: *especially under adversarial training*. The best assessors among the
# full-reference measures are added as fidelity terms to a Charbonnier + GAN fine-tune
# (PatchGAN at the middle GAN weight of notebook 05); their value is the held-out panel gain
# over Charbonnier + GAN (the measure itself left out of the panel). Every arm is trained once per
# seed; the verdict pairs the two arms on seed and clip.

# %%
model = cfg["finetune"]["model"]
with timed("the adversarial fine-tunes with fidelity terms"):
    adv = study.adversarial_fidelity_table(cfg, model, assess)
adv.style.format("{:+.2%}", subset=["gain_vs_charbonnier_gan"])  # the panel gain in %

# %%
adv_verdicts = study.adversarial_fidelity_verdicts(cfg, model, assess)
verdicts += adv_verdicts
Markdown(claims.report(adv_verdicts))

# %% [markdown]
# ## The fidelity family: DISTS-style measures with different backbones
# The same structure/texture measure over different feature extractors; the backbones whose
# weights are not on this machine are listed, not downloaded.

# %%
fidelity = study.fidelity_family(cfg)
fidelity

# %% [markdown]
# ## This notebook's verdict table
# The rows above in one table: the primary row first (B1: the contrast the profile's
# `verdicts.primary` fixed before the run, decided on its own 95% interval), then every other
# row as a secondary one, decided on its Benjamini-Hochberg q within this table.

# %%
from nriqa.study.runs import finetune_dose
from nriqa.study.summary import verdict_rows, verdict_table

verdicts = claims.family(verdicts, alpha=claims.settings(cfg).alpha)
print(finetune_dose(cfg))   # the verdicts hold at this dose
Markdown(verdict_table(verdict_rows(verdicts)))

# %% [markdown]
# ## How to read this run, and where it can disagree with the papers
# The verdict tables above are this run's claims against its numbers (notebook 00 says
# [how to read a verdict](00_tour.ipynb#How-to-read-a-verdict)). B1's effect is a Spearman rho
# over the twelve measures, its 95% interval a bootstrap over the measures, then each measure's
# seeds and the clips; its rule prints the smallest |rho| that n measures can resolve, and whether
# n measures can show "no association" within the profile's `rho_margin` at all (the cell below
# prints how many measures that would take); where they cannot, that branch is left out.
# *Inconclusive* is not a vote for the papers' claim. The x-axis is published human-rated
# SRCC of the same implementations, one human-rated set for eleven measures (TID2013) and another
# (MSU SR-QA) for ST-LPIPS-VGG, whose sets differ in difficulty: the secondary row over the TID2013
# measures alone shows what the mixed axis changes. The y-axis optimizes centre crops directly
# (`asymmetry.pixels`), not a generator: the fine-tune version (`asymmetry.optimization: finetune`)
# is the paper profile's.
# Pretrained backbones that are not on this machine are listed, not measured; `python -m nriqa
# weights fetch dists-vgg` (and `-resnet50`, `-vit`) on a connected machine adds them to the table.

# %%
from nriqa.analysis.multiplicity import min_detectable_rho, rho_equivalence_reachable

margin = claims.settings(cfg).rho_margin
n_b1 = len(table.dropna(subset=["srcc", "gain"]))
needed = next(n for n in range(4, 1000) if rho_equivalence_reachable(n, margin))
print(f"B1 rests on {n_b1} measures: minimum detectable |rho| {min_detectable_rho(n_b1):.2f}; "
      f"'no association' within +-{margin:g} needs at least {needed} measures")

# %% [markdown]
# ## Recorded findings
# The key numbers above go to this run's `summary.json`
# ([where the findings go](00_tour.ipynb#Recorded-findings)).

# %%
from nriqa.study.summary import record

record(cfg, "06_asymmetry", {"asymmetry": study.describe_asymmetry(table),
                             "verdicts": verdict_rows(verdicts)})
print("recorded in this run's summary.json, section 06_asymmetry")

# %% [markdown]
# ## The scoreboard: the seven claims, each decided by its primary row
# The answer this study was built for, read back from this run's `summary.json` (notebooks 03, 05
# and this one recorded their primary rows there): one row per claim, its effect and 95% interval,
# n, p and verdict; the figure draws each effect and interval divided by the interval's half-width
# (0 = no effect; beyond +-1 = an interval clear of 0). The secondary rows stay in the notebooks'
# tables. FINDINGS.md shows the same table.

# %%
from nriqa.study.summary import load_summary, scoreboard, scoreboard_table
from nriqa.viz.plots import claims_scoreboard

board = scoreboard(load_summary(cfg))
if board:
    save_figure(claims_scoreboard(board), "06_claims_scoreboard", folder=FIG)
Markdown(scoreboard_table(board))
