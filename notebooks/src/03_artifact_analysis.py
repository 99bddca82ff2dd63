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
# loss metric gains much more than the held-out measures, and measure seven artifacts against
# ground truth: chroma high-frequency energy away from edges (coloured dots), second-derivative
# energy along edges (dotted edges), dark blobs ("eyes"), oscillation across edges (ringing), lost
# high-frequency luma energy (blur), temporal flicker and isolated high-frequency peaks in the
# spectrum of the difference to ground truth (a periodic dot grid / stripes over the whole frame).
# Show the crops where each is highest, check each detector on injected artifacts, and optimize
# pixels directly against each loss term.

# %% tags=["parameters"]
from typing import Optional  # the parameters' annotations below

PROFILE: "Optional[str]" = None  # demo | smoke | paper; None: $NRIQA_PROFILE, else demo
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N
RUN_ROOT: "Optional[str]" = None  # folder of the run folders; None: $NRIQA_RUNS, else <repository>/runs
SEED: int = 0  # seed of the baseline; each fine-tune arm runs once per seed of the profile's `seeds` (default [SEED])
HACK_THRESHOLD: float = 0.05  # own-metric gain minus mean held-out gain that flags metric hacking

# %%
from IPython.display import display

from nriqa.analysis import metric_hacking, relative_gain
from nriqa.study import artifact_sources as study
from nriqa.study.clock import timed
from nriqa.study.judging import ARTIFACTS, artifact_table, evaluate_runs, first_seed, run_outputs
from nriqa.study.manifest import manifest_line
from nriqa.study.runs import figure_dir, finetune_dose, finetune_grid, finetune_runs, profile
from nriqa.viz import discard_figure, save_figure
from nriqa.viz.plots import gain_heatmap
from nriqa.viz.widgets import compare_frames

cfg = profile(PROFILE, device=DEVICE, seed=SEED, run_root=RUN_ROOT)
FIG = figure_dir(cfg)
print(manifest_line(cfg))  # what the numbers depend on besides the profile
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
# row's held-out average (the mean over every measure except the run's own loss measures). The colour
# scale stops at the 90th percentile of |gain| so that no single cell sets it: bold numbers lie beyond
# it. Outlined cells: metric hacking (below).*

# %% [markdown]
# **The same on a scale that does not explode.** A relative gain divides by the baseline's value, so
# a measure whose baseline is near 0 or unbounded (NIQE of a striped frame, BRISQUE) can reach
# hundreds of percent and decide a row's mean alone. Here each cell is the measure's change over the
# baseline in units of how much it moves from seed to seed (the fidelity-only arm retrained with
# each seed), and the last column is the median over measures: the scale of the verdicts below.

# %%
from nriqa.study.finetuning import standardised_table
from nriqa.viz.plots import matrix_heatmap

sd_table = standardised_table(scores)
fig = matrix_heatmap(sd_table, unit="SD", title=f"{model}: change over the baseline in seed-SD units")
save_figure(fig, "03_standardised_heatmap", folder=FIG);

# %% [markdown]
# **Metric hacking.** `excess` = mean gain on the run's own loss measure(s) minus the mean gain
# on every held-out measure; runs whose excess is above `HACK_THRESHOLD` (in relative-gain units, the
# parameter set at the top of this notebook) are flagged (and boxed in the heatmap). Gains in percent.

# %%
hacking = metric_hacking(gains, own, threshold=HACK_THRESHOLD)
hacking.style.format("{:+.2%}", subset=["own_gain", "heldout_gain", "excess"])

# %% [markdown]
# The flag by hand from the gain table: `excess = own gain - held-out gain > HACK_THRESHOLD`.

# %%
import numpy as np

mat = gains.pivot_table(index="run", columns="measure", values="gain")  # runs x panel measures
mine = {run: [m for m in ms if m in mat.columns] for run, ms in own.items() if run in mat.index}
excess = {run: mat.loc[run, ms].mean() - mat.loc[run].drop(ms).mean() for run, ms in mine.items() if ms}
assert np.allclose([excess[r] for r in hacking["run"]], hacking["excess"], equal_nan=True)
print("flagged:", [run for run, e in excess.items() if e > HACK_THRESHOLD] or "none")

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

# %% expected_output="True" tags=["nbval-check-output"]
print(set(artifacts.index) == set(runs))

# %% [markdown]
# ## A temporal judge next to the flicker detector: ColorVideoVDP
# `flicker` above is a hand-made detector: the change between consecutive output frames that the ground
# truth does not have. Next to it stands a judge calibrated on people: **ColorVideoVDP** (Mantiuk et al.,
# SIGGRAPH 2024; the measure `cvvdp`, from the `cvvdp` package), a full-reference visible-difference
# predictor that models a display (the package's standard 4K monitor, whose size, luminance and viewing
# distance are on the measure's card), colour vision and spatio-temporal vision: its transient channel
# responds to changes over time that a per-frame measure cannot see. It compares each arm's whole output
# clip with the ground-truth clip (sRGB frames at the frame rate on its card) and answers in JOD
# (just-objectionable differences): the top of the scale means no visible difference, every JOD lost a
# difference more people would object to.
#
# Columns: `jod` (the mean over the test clips), `jod_lost` (the baseline's JOD minus the arm's: above 0
# the arm's output differs more visibly from the ground truth than the baseline's), `flicker` and
# `flicker_added` (the arm's minus the baseline's). The JODs come from the cached panel scores when
# `cvvdp` is in the profile's `panel`, otherwise they are computed here; the line under the table says
# which. One seed per arm (the outputs shown above): a description, not a verdict.

# %%
from nriqa.compute import resolve_device

with timed("ColorVideoVDP on the test clips"):
    temporal = study.temporal_judge_table(outputs, artifacts, scores, device=resolve_device(cfg.get("device")))
print(study.temporal_judge_note(temporal))
fig = study.temporal_judge_figure(temporal, title=f"{model}: ColorVideoVDP next to the flicker detector")
save_figure(fig, "03_cvvdp_temporal", folder=FIG)
temporal.round(3)

# %% [markdown]
# *Figure: per fine-tune arm, the JOD it loses against the baseline (left) and the flicker it adds
# (right); right of 0 (red) is worse than the baseline in both panels. Where both bars point the same
# way the two judges agree; a temporal artifact the detector flags should also cost JOD.*

# %% [markdown]
# ## Where the artifacts are: crops of the runs that have them
# For each artifact measure that some run has more of than the baseline, the crop where it is highest
# for the run with most of it, shown for ground truth, the baseline and the (up to three) runs with
# more of it; the second row is each tile's difference to the baseline, amplified, so small changes
# are visible (grey = same as the baseline). A measure no run has more of gets one line, no figure.

# %% tags=["optional-figure"]
side = outputs["ground truth"][next(iter(outputs["ground truth"]))].shape[-1]  # of the first clip's frames
for measure in ARTIFACTS:
    fig = study.crops_figure(outputs, artifacts, measure, size=min(32, side // 2))
    if fig is None:  # no run has more of it than the baseline: nothing to show
        print(study.no_crops_line(measure))
        discard_figure(f"03_crops_{measure}", folder=FIG)  # an older run's copy would show what is not there
    else:
        save_figure(fig, f"03_crops_{measure}", folder=FIG)

# %% [markdown]
# *Figures: under each tile the run's score on that clip (three significant digits) and its change
# from the baseline (arrow); "= baseline" marks a tie on that clip.*

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
# *Figure: the same frame from ground truth and the first runs side by side, with each run's panel
# scores on that frame in a table under it (↑ higher is better, ↓ lower is better).*

# %%
print(study.describe_artifacts(artifacts))

# %% [markdown]
# ## Do the detectors detect? Injected artifacts on real frames
# Each artifact is injected into real video frames (`nriqa.analysis.inject`, strength 0.5 of 1)
# and every detector scores it: rows = detectors, columns = injected kind. A good detector is high
# on its own kind and near 0 elsewhere.

# %%
with timed("scoring injected artifacts"):
    confusion = study.detector_confusion(strength=0.5)
confusion.round(3)

# %% [markdown]
# ## How much of an artifact can a person see? One margin per detector
# The detectors' scales differ, so each gets its own margin for the verdicts below: its rise when its
# own artifact is injected into the test clips' ground truth at the smallest strength visible in
# crops like these (the profile's `artifact_margins`, printed by `python -m nriqa.analysis.margins
# --profile demo`). Top: a crop of a test clip; bottom: the same crop with the artifact injected at
# that strength, the detector's value on that clip and its margin (the mean over the test clips).

# %%
from nriqa.viz.plots import injected_pairs

with timed("positive controls of the artifact margins"):
    controls = study.margin_crops(cfg)
fig = injected_pairs(controls, title="each detector's margin: its artifact at the smallest visible strength",
                     note="Under each tile the detector's value on that clip (0 = clean, higher = more artifact; "
                     "log2 energy ratio, periodic_pattern: log2(1 + RMS in grey levels)); under the injected tile "
                     "the injected kind and strength, and the margin. Tiles: a 32-px crop enlarged 3\u00d7; "
                     "flicker: frame t left of the middle, frame t+1 right of it.")
save_figure(fig, "03_artifact_margins", folder=FIG);

# %% [markdown]
# ## What each loss wants in pixels
# Following Ding et al. (2021), the pixels of one held-out crop are optimized directly against each
# loss term — from the bicubic upscale and from the baseline's output, alone or held near the start
# by Charbonnier — with no generator in between: what the image turns into is what the term rewards.

# %%
with timed("pixel optimization gallery"):
    starts, gt_crop = study.pixel_starts(cfg, outputs)
    gallery = study.profile_pixel_gallery(cfg, starts, gt_crop)
print(f"gallery: {len(gallery.images)} images in {gallery.seconds:.1f} s")
steps = study.pixel_settings(cfg)["steps"]
fig = study.gallery_figure(gallery, title=f"what each loss wants in pixels ({steps} Adam steps)")
save_figure(fig, "03_pixel_gallery", folder=FIG);

# %% [markdown]
# **How much of it do the fine-tunes inherit?** For each term that is both in the gallery and a
# fine-tune, the change of every artifact detector under pixel optimization (from the baseline's
# output) next to the change of the fine-tuned run over the baseline run.

# %%
inherit = study.inheritance(gallery.scores, artifacts)
print(study.describe_inheritance(inherit))
inherit.round(3)

# %% [markdown]
# ## Paper A's claims, over seeds and clips
# Every fine-tune arm is trained once per seed of the profile (`seeds`) from the same baseline;
# each row is a mean over seeds x clips with a 95% bootstrap interval (seeds and clips resampled,
# arms paired on seed and clip). Judges' changes are in **SD**: units of each measure's
# seed-to-seed spread (the fidelity-only arm retrained with other seeds), aggregated over judges by
# the median, so no measure with a small or unbounded baseline dominates. Artifacts are in each
# detector's own units, or in **margins**: multiples of the change a person can just see (the
# positive controls above; the profile's `artifact_margins`).
#
# **One primary row per claim**, fixed in the profile (`verdicts.primary`) before the run, comes
# first; it alone decides the claim:
#
# - **A1** naive NR-IQA fine-tuning raises the held-out NR-IQA judges (NR-only arms pooled);
# - **A2** the LPIPS-type measure judges NR-only fine-tuning worse than the baseline (pooled);
# - **A3** adding the LPIPS-type term to an NR term lowers its artifact score (pairs pooled);
# - **A4** naive NR-IQA fine-tuning adds visible artifacts: *adds* (above one margin, interval
#   above 0), *artifact-free* (TOST below one margin) or inconclusive.
#
# Every other row is secondary (per term, per detector, per pair): it shows its p-value and its
# Benjamini-Hochberg q within this table, and is decided on q. Each (term, detector) row has one
# of three outcomes against that detector's margin, and a detector that saw nothing (every value
# at its floor, 0) reads inconclusive, never artifact-free.

# %%
from IPython.display import Markdown, display

from nriqa.study.summary import verdict_rows, verdict_table

with timed("artifact measures of every seed and paper A's verdicts"):
    paper_a = study.paper_a_verdicts(cfg, model, runs, scores, grid)
print(finetune_dose(cfg))   # the verdicts hold at this dose
display(Markdown(verdict_table(verdict_rows(paper_a))))
study.artifact_verdict_counts(paper_a, study.nr_terms(grid))

# %% [markdown]
# Notebook 00 says [how to read a verdict](00_tour.ipynb#How-to-read-a-verdict): *inconclusive*
# is not agreement.

# %% [markdown]
# ## How to read this run
# The artifact table, the crops and the sentences above are this run's measurements. A measure
# that no run has more of than the baseline gets no crop figure (one line says so). A run is
# flagged for metric hacking only when its gain on its own measure exceeds its held-out panel
# gain by more than the flag's margin.

# %% [markdown]
# ## Recorded findings
# The key numbers above go to this run's `summary.json`
# ([where the findings go](00_tour.ipynb#Recorded-findings)).

# %%
from nriqa.study.summary import record

record(cfg, "03_artifacts", {"artifacts": study.describe_artifacts(artifacts), "verdicts": verdict_rows(paper_a)})
print("recorded in this run's summary.json, section 03_artifacts")
