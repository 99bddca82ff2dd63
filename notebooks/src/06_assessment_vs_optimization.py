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
# **Method.** For every measure that notebook 02 used as a loss: its assessment accuracy (SRCC,
# PLCC, KRCC on the held-out part of the embedded distortion set; labels are the known order of
# distortion levels within a source and type, plus a documented full-reference pseudo-score —
# not human opinion scores) against its optimization value (the mean relative gain of the
# *other* panel measures when it is added to Charbonnier). A rank correlation near zero or
# negative is the asymmetry.

# %% tags=["parameters"]
PROFILE: "Optional[str]" = None  # demo | smoke | paper; None: $NRIQA_PROFILE, else demo
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N
RUN_ROOT: "Optional[str]" = None  # folder of the run folders; None: $NRIQA_RUNS, else <repository>/runs
SEED: int = 0  # seed of the baseline; each fine-tune arm runs once per seed of the profile's `seeds` (default [SEED])

# %%
from IPython.display import Markdown

from nriqa.analysis import asymmetry_correlation, asymmetry_scatter, asymmetry_table, claims
from nriqa.study import asymmetry as study
from nriqa.study.clock import timed
from nriqa.study.runs import ensure_kit_iqa, figure_dir, profile
from nriqa.viz import save_figure

cfg = profile(PROFILE, device=DEVICE, seed=SEED, run_root=RUN_ROOT)
FIG = figure_dir(cfg)
ensure_kit_iqa(cfg)

# %% [markdown]
# ## Assessment accuracy on held-out content

# %%
with timed("measuring each measure's assessment accuracy"):
    assess = study.assessment_accuracies(cfg)
assess

# %% [markdown]
# ## Optimization value (from notebook 02's runs) and the asymmetry

# %%
optimize = study.optimization_values(cfg)
table = asymmetry_table(assess, optimize)
table

# %% tags=["nbval-check-output"] expected_output="True"
print(set(table["measure"]) <= set(cfg["asymmetry"]["measures"]))

# %%
fig = asymmetry_scatter(table)
save_figure(fig, "06_assessment_vs_optimization", folder=FIG);

# %% [markdown]
# *Figure: one point per measure: how well it assesses (SRCC, right is better) against what
# optimizing it did to the other panel measures (up is better); points rising to the right
# would mean good assessors make good losses.*

# %%
print(study.describe_asymmetry(table))
verdicts = []
if len(table) >= 3:  # a rank correlation needs three measures (the smoke profile has fewer)
    verdicts.append(claims.assessment_is_not_optimization(table, *asymmetry_correlation(table)))
Markdown(claims.report(verdicts))

# %% [markdown]
# ## Under adversarial training
# The papers add: *especially under adversarial training*. The best assessors among the
# full-reference measures are added as fidelity terms to a Charbonnier + GAN fine-tune
# (PatchGAN at the middle GAN weight of notebook 05); their value is the held-out panel gain
# over Charbonnier + GAN (the measure itself left out of the panel), read against the seed noise.

# %%
model = cfg["finetune"]["model"]
with timed("the adversarial fine-tunes with fidelity terms and the seed noise"):
    adv = study.adversarial_fidelity(cfg, model, assess)
    noise = study.seed_noise(cfg, model)
print(f"seed noise of a panel gain: {noise:.4f}")
adv

# %%
adv_verdicts = claims.adversarial_fidelity(adv, noise)
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
# ## The claims against this run's numbers
# Computed from the tables above; re-running the notebook on another profile rewrites it.

# %%
Markdown(claims.report(verdicts))

# %% [markdown]
# ## How to read this run, and where it can disagree with the papers
# The correlation, the verdicts and the fidelity-family table above are computed from this run.
# Two caveats apply on the demo profile: a handful of measures cannot give a significant
# correlation, and the set-up leans towards the papers' result, because the assessment labels are
# full-reference pseudo-scores (which favour FR measures as assessors) while the panel holds the
# other kit NR-IQA models, trained on the same distortion set. Pretrained backbones that are not
# on this machine are listed, not measured; `python -m nriqa weights fetch dists-vgg` (and
# `-resnet50`, `-vit`) on a connected machine adds them to the table.
