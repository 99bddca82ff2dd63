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
# NR-IQA model from each trained discriminator's backbone and compare its held-out accuracy with
# a random initialisation.

# %% tags=["parameters"]
PROFILE: "Optional[str]" = None  # demo | smoke | paper; None: $NRIQA_PROFILE, else demo
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N
RUN_ROOT: "Optional[str]" = None  # folder of the run folders; None: $NRIQA_RUNS, else <repository>/runs
SEED: int = 0  # seed of the baseline; each fine-tune arm runs once per seed of the profile's `seeds` (default [SEED])

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown

from nriqa.analysis import claims
from nriqa.study import adversarial as study
from nriqa.study.clock import timed
from nriqa.study.runs import ensure_kit_iqa, figure_dir, profile
from nriqa.viz import save_figure

cfg = profile(PROFILE, device=DEVICE, seed=SEED, run_root=RUN_ROOT)
FIG = figure_dir(cfg)
acfg = cfg["adversarial"]
model = cfg["finetune"]["model"]
ensure_kit_iqa(cfg)
print("discriminators:", acfg["discriminators"], "GAN weights:", acfg["gan_weights"])

# %% [markdown]
# ## The adversarial grid
# Every discriminator kind at every GAN weight, each a fine-tune of the baseline with
# `Charbonnier + w * GAN`. Two reference runs make the numbers readable: the *fidelity-only*
# fine-tune (same steps, no GAN) isolates the adversarial term's effect, and the spread of its
# seeds (other sampled batches, at least two) measures the seed noise. Faithful detail is judged by the
# full-reference measures of the panel (`fr_gain_vs_fidelity`); an effect is only read when it
# exceeds twice the seed noise.

# %%
with timed("training (or loading) the adversarial grid and scoring it"):
    grid = study.adversarial_grid(cfg, model)
grid

# %% tags=["nbval-check-output"] expected_output="True"
print(len(grid) == len(acfg["discriminators"]) * len(acfg["gan_weights"]))

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for disc, rows in grid.groupby("discriminator"):
    rows = rows.sort_values("gan_weight")
    ax.plot(rows["gan_weight"], 100 * rows["mean_gain"], marker="o", label=disc)  # in %
ax.set_xscale("log"); ax.axhline(0, color="k", lw=0.8)
ax.set_xlabel("GAN weight"); ax.set_ylabel("mean panel relative gain vs baseline (%)")
ax.set_title("Discriminator kinds across GAN weights")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
save_figure(fig, "05_discriminator_grid", folder=FIG);

# %% [markdown]
# *Figure: the panel's mean relative gain (%) over the baseline for each discriminator kind
# (line) at each GAN weight (log axis); read differences against the seed noise printed below.*

# %%
print(study.describe_adversarial(grid))
verdicts = claims.discriminator_ranking(grid, grid.attrs["fr_noise"])
verdicts += claims.discriminator_ranking(grid, grid.attrs["noise"], column="gain_vs_fidelity",
                                         outcome="improve the whole panel (FR and NR judges) more")
Markdown(claims.report(verdicts))

# %% [markdown]
# ## Do discriminators suppress the artifacts an NR-IQA loss introduces?
# Notebook 03 found the NR-IQA fine-tunes adding colour noise and dotted edges. Here the
# artifact-heaviest NR-IQA term is fine-tuned again with a GAN term added (same steps), and the
# run without GAN is trained with another seed too, so the artifact difference can be compared
# with seed noise.

# %%
with timed("the fine-tunes with and without a GAN term"):
    suppression = study.artifact_suppression(cfg, model)
suppression

# %%
art_verdicts = claims.artifact_suppression(suppression.loc["without GAN"], suppression.loc["with GAN"],
                                           suppression.loc["without GAN (another seed)"],
                                           ["chroma_noise", "edge_artifacts"], suppression.attrs["term"])
verdicts += art_verdicts
Markdown(claims.report(art_verdicts))

# %% [markdown]
# ## Do discriminators transfer to IQA?
# An NR-IQA model trained on the embedded distortion set from (a) random initialisation and
# (b) the backbone of each trained discriminator; held-out SRCC/PLCC.

# %%
with timed("training (or loading) IQA models from each discriminator"):
    transfer = study.discriminator_transfer(cfg, model)
transfer

# %%
print(study.describe_transfer(transfer))
verdicts.append(claims.transfer_little(transfer))

# %% [markdown]
# ## The claims against this run's numbers
# Each row is computed from the tables above (re-running the notebook on another profile
# rewrites it).

# %%
Markdown(claims.report(verdicts))

# %% [markdown]
# ## How to read this run, and where it can disagree with the papers
# The verdict tables above are computed from this run's tables; each row names its evidence and
# rule. "Not resolved" means the effect was smaller than the seed noise measured here: on the
# demo profile the GAN fine-tunes are short and their weights small, so the GAN term's gradient
# is small next to the fidelity and NR-IQA terms', and the discriminator has little time to learn
# what the artifacts look like. The transfer rows rest on IQA models trained for a short budget,
# where any trained low-level filters can beat a random start; with a full IQA training run that
# head start may vanish. The `paper` profile (full-size models, long GAN runs, DISTS fidelity) is
# what can settle the unresolved rows.
