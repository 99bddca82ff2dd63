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
# # 05 · Adversarial set-ups: which discriminator reconstructs detail faithfully?
#
# **Question.** With a fidelity term in the objective, does the kind of discriminator matter —
# a vanilla global one, a patch-level PatchGAN, a per-pixel U-Net with spectral norm, or a
# Transformer (ViT)? The literature reports that patch-level and convolutional discriminators
# reconstruct detail more faithfully than vanilla or Transformer ones, and that discriminators
# transfer little when reused to initialise IQA models. We test both claims here.
#
# **Method.** Fine-tune the baseline with `fidelity + w * GAN` for every discriminator kind and
# several GAN weights `w`, evaluate with the panel and the artifact measures. Then initialise an
# NR-IQA model from each trained discriminator's backbone (every kind, every seed's GAN run) and
# compare its held-out accuracy with a random initialisation of the same seed.

# %% tags=["parameters"]
from typing import Optional  # the parameters' annotations below

PROFILE: "Optional[str]" = None  # demo | smoke | paper; None: $NRIQA_PROFILE, else demo
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N
RUN_ROOT: "Optional[str]" = None  # folder of the run folders; None: $NRIQA_RUNS, else <repository>/runs
SEED: int = 0  # seed of the baseline; each fine-tune arm runs once per seed of the profile's `seeds` (default [SEED])

# %%
import numpy as np
from IPython.display import Markdown

from nriqa.analysis import claims
from nriqa.study import discriminator_choice as study
from nriqa.study.clock import timed
from nriqa.study.manifest import manifest_line
from nriqa.study.runs import ensure_kit_iqa, figure_dir, profile, seeds
from nriqa.viz import save_figure
from nriqa.viz.plots import seed_dots, validation_curves

cfg = profile(PROFILE, device=DEVICE, seed=SEED, run_root=RUN_ROOT)
FIG = figure_dir(cfg)
print(manifest_line(cfg))  # what the numbers depend on besides the profile
acfg = cfg["adversarial"]
model = cfg["finetune"]["model"]
ensure_kit_iqa(cfg)
print("discriminators:", acfg["discriminators"], "GAN weights:", acfg["gan_weights"])

# %% [markdown]
# ## The adversarial grid
# Every discriminator kind at every GAN weight, each a fine-tune of the baseline with
# `Charbonnier + w * GAN`. Two reference runs make the numbers readable: the *fidelity-only*
# fine-tune (same steps, no GAN) isolates the adversarial term's effect, and the spread of its
# seeds (other sampled batches, at least two) shows the seed noise. Faithful detail is judged by the
# full-reference measures of the panel (`fr_gain_vs_fidelity`). Every arm is trained once per seed
# of the profile (`seeds`); the verdicts below use every seed and clip.

# %%
with timed("training (or loading) the adversarial grid and scoring it"):
    grid = study.adversarial_grid(cfg, model)
grid.style.format("{:+.2%}", subset=["mean_gain", "gain_vs_fidelity", "fr_gain_vs_fidelity"])  # gains in %

# %% expected_output="True" tags=["nbval-check-output"]
print(len(grid) == len(acfg["discriminators"]) * len(acfg["gan_weights"]))

# %%
def by_weight(t):  # the GAN weight as a category: two or four weights, no line joining them
    return t.assign(gan=[f"GAN weight {w:g}" for w in t["gan_weight"]])


fig = seed_dots(by_weight(grid), by_weight(grid.attrs["seed_gains"]), group="gan", hue="discriminator",
                value="mean_gain", seed_value="mean_gain",
                ylabel="mean panel gain over the\nbaseline (%, \u2191 better)",
                title="Discriminator kinds across GAN weights",
                note="Thick mark: the mean over seeds (the table's mean_gain); circles: one seed each.")
save_figure(fig, "05_discriminator_grid", folder=FIG);

# %% [markdown]
# *Figure: the panel's mean relative gain (%) over the baseline for each discriminator kind
# (colour) at each GAN weight: the thick mark is the mean over seeds, the circles the seeds; the y axis
# is linear near zero and logarithmic beyond. The verdict table below says which differences its
# seeds and clips resolve.*

# %%
print(study.describe_adversarial(grid))
verdicts = study.grid_verdicts(cfg, model)
Markdown(claims.report(verdicts))

# %% [markdown]
# ## Do discriminators suppress the artifacts an NR-IQA loss introduces?
# Notebook 03 found the NR-IQA fine-tunes adding colour noise and dotted edges. Here the
# artifact-heaviest NR-IQA term is fine-tuned again with a GAN term added (same steps); both arms
# are trained with at least two seeds, and the verdict pairs them on seed and clip.

# %%
with timed("the fine-tunes with and without a GAN term"):
    suppression = study.suppression_table(cfg, model)
suppression.style.format("{:+.2%}", subset=["mean_gain"])  # the panel gain in %

# %%
art_verdicts = study.suppression_verdicts(cfg, model)
verdicts += art_verdicts
Markdown(claims.report(art_verdicts))

# %% [markdown]
# ## Do discriminators transfer to IQA?
# For every discriminator kind and every seed, an NR-IQA model trained on the embedded distortion
# set from (a) random initialisation and (b) the backbone of that seed's trained discriminator,
# both with the same seed (initial weights of the rest, batches) and settings. The held-out label is
# the order of distortion levels within each source and type, known for certain (`srcc`:
# level-order SRCC, as notebook 06 scores the measures); `srcc_fr_pseudo` is the SRCC against the
# set's FR pseudo-score and `rank_acc` the fraction of level pairs ordered right. The IQA backbone
# is the GAN run's own discriminator (kind, size and options from the run's config), and
# `loaded_tensors` of `backbone_tensors` says how much of it the transfer filled (it refuses less
# than 95 %). The trainings run in the profile's `workers` processes and are cached in keyed folders.

# %%
with timed("training (or loading) IQA models from each discriminator and seed"):
    transfer = study.discriminator_transfer(cfg, model)
transfer

# %% [markdown]
# Each of these trainings (both arms) ran to a plateau, not for a fixed number of steps (the rule:
# `adversarial.transfer` in the profile): every `eval_every` steps it scored a small fixed validation set
# (every image of `val_sources` *training* sources, left out of the training pairs, so the held-out
# test set plays no part in the choice), stopped after `patience` evaluations without a gain of
# `min_delta` (or at `max_steps`), and kept the weights of its best evaluation; `steps` and `best_step`
# in the table above say what each used. The curves: validation level-order SRCC against step, one
# line per seed, step 0 being the initialisation (the discriminator's backbone with an untrained head, or
# random weights); a dot marks the kept evaluation.

# %%
curves = study.transfer_curves(cfg, model)
print(study.describe_transfer_steps(curves))
if len(curves):
    fig = validation_curves(curves, ylabel="validation level-order SRCC", title="IQA training to a plateau",
                            note="One line per seed; the dot marks the kept evaluation (the best one).")
    save_figure(fig, "05_transfer_curves", folder=FIG);

# %% [markdown]
# The paired effect, one row per kind and seed: held-out SRCC (level order on the embedded set)
# from random and from discriminator initialisation, and the change (positive = the
# discriminator's backbone helped). The verdict averages the change over kinds and seeds. "Transfers
# little" is judged against a bar taken from the data, not chosen: the seed-to-seed spread of the
# random-init arm (the SD over seeds of its held-out SRCC within each kind, pooled over kinds; its
# value is printed in the rule), i.e. a change smaller than what re-running the same training with
# another seed does. Beside it, a directional row asks whether discriminator initialisation changes
# held-out SRCC at all (its 95% interval against 0).

# %%
pairs = study.transfer_pairs(transfer)
pairs

# %% expected_output="True" tags=["nbval-check-output"]
print(len(pairs) == len(acfg["discriminators"]) * len(seeds(cfg)))

# %%
print(study.describe_transfer(transfer))
transfer_verdicts = study.transfer_verdicts(cfg, transfer)
verdicts += transfer_verdicts
Markdown(claims.report(transfer_verdicts))

# %% [markdown]
# The transfer effect by hand from the `pairs` table: `change = SRCC(from the discriminator) -
# SRCC(from random)` per kind and seed, averaged over the kinds, then over the seeds (a seed that
# lacks a kind's pair left out): the first verdict row's effect.

# %%
change = pairs.pivot_table(index="seed", columns="discriminator", values="change").dropna()  # seeds x kinds
effect = change.mean(axis=1).mean()
assert np.isclose(effect, transfer_verdicts[0].effect, rtol=0, atol=1e-9, equal_nan=True)
print(f"mean change from discriminator initialisation: {effect:+.3f} "
      f"({change.shape[0]} seed(s) x {change.shape[1]} kind(s))")

# %% [markdown]
# For scale: the same IQA training from a *perceptually* pretrained trunk, ST-LPIPS's AlexNet
# trunk (trained on human 2AFC judgments; shipped in the stlpips-pytorch wheel), against the same
# trunk from random initialisation. An ImageNet arm needs weights that are not on this machine:
# its row says so instead of numbers.

# %%
with timed("training (or loading) IQA models from a pretrained trunk"):
    trunks = study.trunk_transfer(cfg)
print(study.describe_trunk_transfer(trunks))
trunks

# %% [markdown]
# ## This notebook's verdict table
# The rows above in one table: the primary rows first (B2, B3: the contrasts the profile's
# `verdicts.primary` fixed before the run, decided on their own 95% interval), then every other
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
# [how to read a verdict](00_tour.ipynb#How-to-read-a-verdict)); *inconclusive* is not agreement.
# On the demo profile the GAN fine-tunes are short and their weights small, so the GAN term's
# gradient is small next to the fidelity and NR-IQA terms', and the discriminator has little time
# to learn what the artifacts look like; more seeds (`seeds` in the profile) narrow the intervals.
# The transfer rows rest on IQA trainings stopped at a plateau of a small validation set or at the
# profile's `max_steps` (the curves above show which); a training still rising at the cap leaves a
# head start from the discriminator's filters in the numbers. Their interval resamples the seeds only
# (the profile's discriminator kinds are fixed), so with few seeds it is wide. The `paper` profile
# (full-size models, long GAN runs, DISTS fidelity, five seeds) is what can settle the inconclusive rows.

# %% [markdown]
# ## Recorded findings
# The key numbers above go to this run's `summary.json`
# ([where the findings go](00_tour.ipynb#Recorded-findings)).

# %%
from nriqa.study.summary import finding, record

record(cfg, "05_adversarial", {
    "grid": study.describe_adversarial(grid),
    "transfer": study.describe_transfer(transfer, mean=False),  # the mean change: the finding below
    "transfer_change": finding(
        f"mean held-out {study.transfer_label(transfer)} change from discriminator initialisation",
        transfer_verdicts[0].effect, fmt="+.3f", n=transfer_verdicts[0].n),
    "verdicts": verdict_rows(verdicts)})
print("recorded in this run's summary.json, section 05_adversarial")
