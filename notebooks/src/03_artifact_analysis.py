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

# %% parameters
import os

PROFILE = os.environ.get("NRIQA_PROFILE", "demo")
DEVICE = "auto"
RUN_ROOT = os.environ.get("NRIQA_RUNS", "../runs")
SEED = 0
HACK_THRESHOLD = 0.05  # own-metric gain minus mean held-out gain that flags metric hacking

# %%
import matplotlib.pyplot as plt
import pandas as pd

from nriqa import experiments as ex
from nriqa.analysis import artifact_table, crop_grid, gain_heatmap, relative_gain, top_crops
from nriqa.viz import save_figure

cfg = ex.profile(PROFILE, device=DEVICE, seed=SEED, run_root=RUN_ROOT)
FIG = ex.figure_dir(cfg)
model = cfg["finetune"]["model"]
runs = {"baseline": ex.ensure_baseline(cfg, model)}
for label, terms in ex.finetune_grid(cfg).items():
    runs[label] = ex.ensure_finetune(cfg, model, terms)
scores = ex.evaluate_runs(cfg, runs, model=model)

# %% [markdown]
# ## The relative-gain heatmap

# %%
gains = relative_gain(scores, baseline="baseline", by=("run", "measure"))
own = {label: [t for t in terms] for label, terms in ex.finetune_grid(cfg).items()}
fig = gain_heatmap(gains[gains["run"] != "baseline"], own_measures=own, hack_threshold=HACK_THRESHOLD)
save_figure(fig, "03_relative_gain_heatmap", FIG)
plt.show()

# %% [markdown]
# ## Artifact measures against ground truth
# Each is a ratio to the ground truth's own energy (1 = same as ground truth); the baseline row
# is the reference to compare against.

# %%
outputs = ex.run_outputs(cfg, runs)
artifacts = artifact_table(outputs)
artifacts

# %% check: True
print(set(artifacts.index) == set(runs))

# %% [markdown]
# ## Where the artifacts are: top crops
# For each artifact measure, the crop of the test clips where it is highest for the run that
# scores worst on it, shown for ground truth, the baseline and every run.

# %%
for measure in ["chroma_noise", "edge_artifacts", "blur"]:
    worst_run = ex.worst_run(artifacts, measure)
    crops = top_crops(outputs[worst_run], outputs["ground truth"], measure, k=2, size=32)
    fig = crop_grid(outputs, crops, title=f"{measure}: highest in {worst_run}")
    save_figure(fig, f"03_crops_{measure}", FIG)
    plt.show()

# %%
print(ex.describe_artifacts(artifacts))
