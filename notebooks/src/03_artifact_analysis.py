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
# # 03 · Where and why the artifacts appear
#
# **Question.** Naive optimization of an NR-IQA measure is known to produce artifacts — coloured
# dots, green dotted edges, "eyes", or blur — that the optimized measure itself may reward.
# Which loss terms produce which artifacts, and does a run "hack" its own metric?
#
# **Method.** Take the fine-tuned runs of notebook 02, draw the relative-gain heatmap (rows: the
# extra term added to Charbonnier; columns: panel measures plus their mean), flag runs whose own
# loss metric gains much more than the held-out measures, and measure three artifacts against
# ground truth: chroma high-frequency energy (coloured dots), periodic band-pass energy near
# edges (dotted edges / "eyes"), and lost high-frequency luma energy (blur). Then show the crops
# where each artifact measure is highest.

# %% tags=["parameters"]
PROFILE: "Optional[str]" = None  # demo | smoke | paper; None: $NRIQA_PROFILE, else demo
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N
RUN_ROOT: "Optional[str]" = None  # folder of the run folders; None: $NRIQA_RUNS, else <repository>/runs
SEED: int = 0  # seed of the baseline; each fine-tune arm runs once per seed of the profile's `seeds` (default [SEED])
HACK_THRESHOLD: float = 0.05  # own-metric gain minus mean held-out gain that flags metric hacking

# %%

from nriqa.analysis import crop_grid, gain_heatmap, metric_hacking, relative_gain, top_crops
from nriqa.study import artifacts as study
from nriqa.study.clock import timed
from nriqa.study.evaluation import ARTIFACTS, artifact_table, evaluate_runs, first_seed, run_outputs
from nriqa.study.runs import figure_dir, finetune_grid, finetune_runs, profile
from nriqa.viz import save_figure
from nriqa.viz.widgets import compare_frames

cfg = profile(PROFILE, device=DEVICE, seed=SEED, run_root=RUN_ROOT)
FIG = figure_dir(cfg)
model = cfg["finetune"]["model"]
grid = finetune_grid(cfg)
with timed("loading notebook 02's runs and scores"):
    runs = finetune_runs(cfg, model, grid)
    scores = evaluate_runs(cfg, runs, model=model)

# %% [markdown]
# ## The relative-gain heatmap

# %%
gains = relative_gain(scores, baseline="baseline", by=("run", "measure"))
own = study.own_measures(grid)
fig = gain_heatmap(gains, own=own, hacking_threshold=HACK_THRESHOLD,
                   title=f"{model}: relative gain over the Charbonnier baseline")
save_figure(fig, "03_relative_gain_heatmap", folder=FIG);

# %% [markdown]
# *Figure: each cell is the relative gain (%) of a fine-tune (row) on one measure (column) over the
# baseline; blue is better, red worse, whatever the measure's direction; the last column is the
# row's mean.*

# %% [markdown]
# **Metric hacking.** `excess` = mean gain on the run's own loss measure(s) minus the mean gain
# on every held-out measure; runs above the threshold are flagged (and boxed in the heatmap).

# %%
hacking = metric_hacking(gains, own, threshold=HACK_THRESHOLD)
hacking

# %% [markdown]
# ## Artifact measures against ground truth
# 0 = no more of the artifact than the ground truth has, larger = worse. Chroma and edge measures compare
# high-frequency energy with the ground truth's; blur is the lost fraction of high-frequency
# luma power in octaves (0 = as sharp as ground truth). Compare each run with the baseline row.

# %%
with timed("super-resolving the test clips and measuring the artifacts"):
    outputs = run_outputs(cfg, runs)
    artifacts = artifact_table(outputs)
artifacts

# %% tags=["nbval-check-output"] expected_output="True"
print(set(artifacts.index) == set(runs))

# %% [markdown]
# ## Where the artifacts are: top crops
# For each artifact measure, the crop of the test clips where it is highest for the run that
# scores worst on it, shown for ground truth, the baseline and every run.

# %%
for measure in ARTIFACTS:
    run = study.worst_run(artifacts, measure)
    clip = study.worst_clip(outputs, run, measure)
    gt = outputs["ground truth"][clip]
    crops = top_crops(outputs[run][clip], gt, measure, k=2, size=min(32, gt.shape[-1] // 2))
    shown = {name: frames[clip] for name, frames in outputs.items() if name != "ground truth"}
    fig = crop_grid(crops, gt, shown, title=f"{measure}: highest in {run} (clip {clip})")
    save_figure(fig, f"03_crops_{measure}", folder=FIG)

# %% [markdown]
# *Figures: for each artifact measure, the two crops where it is highest (rows), as ground truth,
# the baseline and every fine-tune draw them (columns). Where every run scores 0 on a measure
# (see the sentences at the end), its crops show no artifact, only where the measure peaks.*

# %% [markdown]
# ## Compare frames yourself
# Pick a clip, a frame, a crop and the runs to put side by side, with their panel scores
# (interactive in JupyterLab; a static figure of the first view when run headlessly).

# %%
runs_only = {name: frames for name, frames in outputs.items() if name != "ground truth"}
view = compare_frames(runs_only, gt=outputs["ground truth"], scores=first_seed(scores))  # the shown seed's scores
if hasattr(view, "savefig"):  # a static figure (papermill, nbval, nriqa run): save and show it
    save_figure(view, "03_frame_comparer", folder=FIG)
else:  # the interactive viewer (JupyterLab, VS Code)
    display(view)

# %% [markdown]
# *Figure: the same frame from ground truth and the first runs side by side, each captioned with
# its panel scores.*

# %%
print(study.describe_artifacts(artifacts))

# %% [markdown]
# ## How to read this run
# The artifact table, the crops and the sentences above are this run's measurements. A measure
# that is 0 for every run (the sentences say so) detected nothing on this budget: its crops show
# where it peaks, not an artifact. A run is flagged for metric hacking only when its gain on its
# own measure exceeds its held-out panel gain by more than the flag's margin.
