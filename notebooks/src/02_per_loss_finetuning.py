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
# # 02 · Fine-tuning the baseline with one extra loss term at a time
#
# **Question.** When an NR-IQA model (or LPIPS, or a full-reference measure) is added to the
# Charbonnier loss, what happens to quality as judged by *other* measures?
#
# **Method.** Start every fine-tune from the same baseline checkpoint (notebook 01), add one
# term (or an NR-IQA + LPIPS combination) with the profile's weight, train the same number of
# steps, and evaluate every run with the profile's panel on the held-out clips. The learned
# NR-IQA models of the demo profile cannot be downloaded here, so the kit trains them itself on
# its embedded distortion set (labels: the known order of distortion levels within a source and
# type, plus a full-reference pseudo-score — never human opinion scores): the loss terms on one half
# of it, the judges on the other (disjoint sources and kinds); their held-out accuracy is reported
# first (on held-out sources, each model on its own half's kinds).

# %% tags=["parameters"]
from typing import Optional  # the parameters' annotations below

PROFILE: "Optional[str]" = None  # demo | smoke | paper; None: $NRIQA_PROFILE, else demo
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N
RUN_ROOT: "Optional[str]" = None  # folder of the run folders; None: $NRIQA_RUNS, else <repository>/runs
SEED: int = 0  # seed of the baseline; each fine-tune arm runs once per seed of the profile's `seeds` (default [SEED])

# %%
from nriqa.study import finetuning as study
from nriqa.study.clock import timed
from nriqa.study.judging import evaluate_runs, save_table
from nriqa.study.manifest import manifest_line
from nriqa.study.runs import (
    ensure_kit_iqa,
    figure_dir,
    finetune_dose,
    finetune_grid,
    finetune_runs,
    profile,
    profile_root,
)

cfg = profile(PROFILE, device=DEVICE, seed=SEED, run_root=RUN_ROOT)
FIG = figure_dir(cfg)
print(manifest_line(cfg))  # what the numbers depend on besides the profile
print(finetune_dose(cfg))   # every finding below holds at this dose
model = cfg["finetune"]["model"]
grid = finetune_grid(cfg)
print(f"fine-tuning {model} with {len(grid)} objectives for {cfg['finetune']['steps']} steps each")

# %% [markdown]
# ## The learned NR-IQA models used as losses
# Trained (or loaded) on a half of the embedded distortion set (`@embedded-a`: loss terms,
# `@embedded-b`: judges); SRCC/PLCC/KRCC on held-out content with the model's own half's kinds,
# `srcc_other_half` on the other half's kinds, which it never saw.

# %%
with timed("training (or loading) the kit's NR-IQA models"):
    iqa_metrics = ensure_kit_iqa(cfg)
iqa_metrics

# %% [markdown]
# ## Fine-tune (or load) every run, then evaluate with the panel

# %%
with timed(f"fine-tuning (or loading) {len(grid)} runs and scoring them with the panel"):
    runs = finetune_runs(cfg, model, grid)
    scores = evaluate_runs(cfg, runs, model=model)
scores.to_csv(profile_root(cfg) / "02_panel_scores.csv", index=False)
print(f"{len(scores)} scores: {scores['run'].nunique()} runs x {scores['measure'].nunique()} measures")

# %% expected_output="True" tags=["nbval-check-output"]
print(set(scores["run"]) == set(runs))

# %% [markdown]
# ## Relative gain over the baseline
# `gain = sign_m * (m(run) - m(baseline)) / |m(baseline)|`, `sign_m = +1` when higher is better:
# positive is better, whatever the measure's direction. Mean over clips and frames, in %.

# %%
table = study.gain_table(scores)
(100 * table).sort_values("mean", ascending=False).style.format("{:+.2f} %")  # in %

# %% [markdown]
# The same table by hand from the scores: each run's mean score per clip (over seeds and frames)
# against the baseline's on that clip, signed by the measure's direction, then averaged over clips.

# %%
import numpy as np

sign = scores.groupby("measure")["higher_better"].first().map({True: 1.0, False: -1.0})  # sign_m
per_clip = scores.groupby(["run", "model", "dataset", "clip", "measure"])["score"].mean().unstack("run")
base = per_clip.pop("baseline")
gain = per_clip.sub(base, axis=0).div(base.abs().clip(lower=1e-8), axis=0).mul(sign, axis=0, level="measure")
by_hand = gain.groupby(level="measure").mean().T  # runs x measures: the table above, without its mean column
assert np.allclose(by_hand.loc[table.index, table.columns[:-1]], table.iloc[:, :-1], equal_nan=True)
print(f"by hand: the same gains for {len(by_hand)} runs x {by_hand.shape[1]} measures")

# %%
save_table(table, cfg, "02_relative_gain")
own = {label: list(terms) for label, terms in grid.items()}  # run -> the measures its loss optimizes
print(study.describe_gains(table, own))

# %% [markdown]
# The printed lines and the table are this run's measurements. A run's gain in those lines is its
# *held-out* gain: the mean over the panel measures that are not in its own loss (a run that raises
# its own measure far more than the others is flagged for metric hacking), and a mean that one
# cell decides is named as an outlier. Notebook 03 draws them as the
# study's heatmap and looks at *where* in the frames the differences come from.

# %% [markdown]
# ## Every model on every dataset
# The first paper fine-tunes the same grid on each VSR model of `finetune.models` and scores it
# on each test set of `data.eval_sets` (its Fig. 2): rows = loss terms, one column per
# model x dataset, then their mean; each cell is the relative gain over that model's baseline on
# that dataset, averaged over the panel (positive = better, in %). A profile with one model and
# one test set (demo, smoke) trains nothing more here.

# %% tags=["optional-figure"]
from IPython.display import display

from nriqa.study.runs import model_finetune_runs
from nriqa.viz import save_figure
from nriqa.viz.plots import model_dataset_heatmap

if study.several_cells(cfg):
    with timed("fine-tuning (or loading) the grid on every model and scoring it on every test set"):
        runs_by_model = model_finetune_runs(cfg, grid)
        cell_scores = study.grid_scores(cfg, runs_by_model)
    cell_scores.to_csv(profile_root(cfg) / "02_model_dataset_scores.csv", index=False)
    cells = study.model_dataset_gains(cell_scores)
    save_table(cells, cfg, "02_model_dataset_gain")
    display((100 * cells).sort_values("mean", ascending=False).style.format("{:+.2f} %"))  # in %
    save_figure(model_dataset_heatmap(cells, title="relative gain per model and test set"),
                "02_model_dataset_gain", folder=FIG)
    print(study.describe_model_dataset_gains(cells))
else:
    print(f"Skipped: this profile fine-tunes one model ({model}) and scores one test set, so the "
          "table would repeat the one above.")

# %% [markdown]
# ## How to read this run
# The gains are the table and sentence above, rendered from this run. The pattern to look for is
# the papers' trade: NR-IQA terms raise the no-reference judges while the full-reference ones
# fall. On the demo profile the learned NR-IQA terms (`@embedded-a`) and the learned judges
# (`@embedded-b`) are kit-trained on disjoint halves of the embedded distortion set: other sources
# and other distortion kinds (the `trained on` column of `python -m nriqa quality`), so a judge's
# agreement is not that of a sibling trained on the same images. They still share the kit's label
# recipe and architectures; notebook 03 separates a term's own-metric gain from the held-out panel.

# %% [markdown]
# ## Recorded findings
# The key numbers above go to this run's `summary.json`
# ([where the findings go](00_tour.ipynb#Recorded-findings)).

# %%
from nriqa.study.summary import finding, record

held = study.held_out_means(table, own)
record(cfg, "02_finetuning", {
    "dose": finetune_dose(cfg),
    "kit_iqa_srcc": finding("held-out SRCC of the kit-trained NR-IQA models (median)",
                            float(iqa_metrics["srcc"].median()),
                            fmt=".2f", n=f"{len(iqa_metrics)} models"),
    "largest_held_out_gain": finding(
        f"largest held-out panel gain over the baseline, own measures excluded ({held.idxmax()})",
        float(held.max()), fmt="pct", n=f"{len(table)} runs x {len(table.columns) - 1} panel measures"),
    "largest_gain": finding(f"largest mean panel gain over the baseline, own measures included "
                            f"({table['mean'].idxmax()})", float(table["mean"].max()), fmt="pct",
                            n=f"{len(table)} runs x {len(table.columns) - 1} panel measures"),
    "gains": study.describe_gains(table, own),
})
print("recorded in this run's summary.json, section 02_finetuning")
