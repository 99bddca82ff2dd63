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
# # 01 · Baselines: each VSR model trained with Charbonnier alone
#
# **Question.** How well does each VSR family (recurrent BasicVSR++, back-projection
# iSeeBetter, Transformer VRT) learn x4 super-resolution from a pixel loss alone? These
# baselines are the starting point of every fine-tune in the later notebooks, and the
# reference of every relative gain: a fine-tune of a model that barely beats bicubic says
# little about fine-tuning a real one.
#
# **Method.** The papers fine-tune *released, well-trained* checkpoints, and so does the kit.
# With `baselines: release` (the demo) each baseline is the kit's released model of its family:
# trained by `python -m nriqa release MODEL --profile demo` with the Charbonnier loss on random crops
# of the embedded **training** clips only, shipped inside the package with its provenance
# (`nriqa/models/kit_releases/`: the command, the commit, the config hash, the sha256, the training
# curve and its gain over bicubic) and imported through `import-checkpoint`, the path the paper
# profile takes for the authors' checkpoints. One short run still trains here from scratch with
# the profile's `train` section, so the lesson of training stays live. Every model is evaluated
# with PSNR and SSIM on the held-out clips against bicubic upsampling of the same LR frames. Runs
# are cached in `RUN_ROOT`: a second execution loads them instead of training again.

# %% tags=["parameters"]
from typing import Optional  # the parameters' annotations below

PROFILE: "Optional[str]" = None  # demo | smoke | paper; None: $NRIQA_PROFILE, else demo
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N
RUN_ROOT: "Optional[str]" = None  # folder of the run folders; None: $NRIQA_RUNS, else <repository>/runs
SEED: int = 0  # seed of every run this notebook trains
MODELS: "Optional[list]" = None  # VSR models to train, e.g. [basicvsrpp, vrt]; None: the profile's list

# %%
import matplotlib.pyplot as plt
import torch
from IPython.display import display

from nriqa.study import baseline as study
from nriqa.study.artifact_sources import busiest_window
from nriqa.study.clock import timed
from nriqa.study.judging import test_set
from nriqa.study.manifest import manifest_line
from nriqa.study.runs import ensure_baselines, ensure_scratch_run, figure_dir, profile
from nriqa.train import load_generator, read_log
from nriqa.viz import save_figure
from nriqa.viz.plots import sample_frames

cfg = profile(PROFILE, device=DEVICE, seed=SEED, run_root=RUN_ROOT)
FIG = figure_dir(cfg)
print(manifest_line(cfg))  # what the numbers depend on besides the profile
models = MODELS or cfg["models"]
clips = test_set(cfg)
released = cfg.get("baselines", "train") == "release"
print(f"profile {cfg['name']}: models {models}, baselines from "
      f"{'the kit releases' if released else str(cfg['train']['steps']) + ' training steps'}, {len(clips)} test clips")

# %% [markdown]
# ## The baselines: released (imported) or trained here

# %%
with timed("importing (or training) the baselines"):
    runs = ensure_baselines(cfg, models)   # releases: import-checkpoint; else trained in the `workers` processes
for m, r in runs.items():
    print(m, "->", r.name)
if released:
    display(study.release_table(models, cfg["model_size"]))

# %% [markdown]
# The table gives each release's provenance: how many steps it trained, its parameters, the commit
# of the code that trained it, the first digits of the shipped file's sha256 and the gain over
# bicubic its release command measured (on the test clips its provenance names).
#
# ## One run from scratch
# The profile's `train` section trains the first model from random weights for its few steps:
# the same loss and data as the release, a fraction of its training.

# %%
scratch = {}
if released:
    lesson = models[0]
    with timed(f"training {lesson} from scratch"):
        run = ensure_scratch_run(cfg, lesson)
    scratch = {f"{lesson}, {cfg['train']['steps']} steps from scratch": run}
    print(lesson, "from scratch ->", run.name)

# %%
curves = (study.release_curves(models, cfg["model_size"]) if released else
          {m: read_log(r).rename(columns={"loss/charbonnier": "charbonnier"}) for m, r in runs.items()})
curves.update({label: read_log(r).rename(columns={"loss/charbonnier": "charbonnier"}) for label, r in scratch.items()})
fig, ax = plt.subplots(figsize=(6.5, 3.5))
for label, log in curves.items():
    ax.plot(log["step"], log["charbonnier"], label=label, ls="--" if label in scratch else "-")
ax.set_xlabel("step"); ax.set_ylabel("Charbonnier (train)"); ax.set_yscale("log")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)  # beside the curves, never over them
ax.set_title("Training curves: the baselines" + (" (release logs) and the run from scratch" if scratch else ""))
save_figure(fig, "01_training_curves", folder=FIG);

# %% [markdown]
# *Figure: the training loss per step (log scale) of each baseline (with releases: read from the
# release's provenance file) and, dashed, of the short run from scratch; a curve that still falls
# at its last step would gain from more steps.*

# %% [markdown]
# ## Evaluate on the held-out clips
# Bicubic upsampling of the same LR input is the floor every model should clear.

# %%
with timed("evaluating the baselines"):
    scores = study.evaluate_baselines(cfg, {**runs, **scratch})
summary = scores.pivot_table(index="model", columns="measure", values="score", aggfunc="mean")
summary

# %% expected_output="True" tags=["nbval-check-output"]
print(set(summary.index) == set(models) | set(scratch) | {"bicubic"})

# %% [markdown]
# ## Sample frames
# The first frame of the first test clip, cropped where bicubic upsampling loses most detail and
# enlarged: LR input (nearest-neighbour x4), bicubic, ground truth, then each baseline, each with
# its PSNR on the whole frame.

# %%
item = clips[0]
with torch.no_grad():
    lr_big = item["lr"][0].repeat_interleave(cfg["data"]["scale"], -1).repeat_interleave(cfg["data"]["scale"], -2)
    outs = {"LR input (nearest)": lr_big[None], "bicubic": study.Bicubic(cfg["data"]["scale"])(item["lr"])}
    for m, r in runs.items():
        outs[m] = load_generator(r, device="cpu")(item["lr"]).clamp(0, 1)
outs["ground truth"] = item["hr"]
first = {n: v[0, 0].clamp(0, 1) for n, v in outs.items()}  # (3, H, W): the first frame of each
gt0 = first["ground truth"]
size = min(64, *gt0.shape[-2:])
y, x = busiest_window([first["bicubic"] - gt0], size)  # where bicubic loses most detail
psnr = {n: f"PSNR {10 * torch.log10(1 / ((f - gt0) ** 2).mean()):.2f} dB"  # 10 log10(1 / MSE), frames in [0, 1]
        for n, f in first.items() if n != "ground truth"}
order = ["LR input (nearest)", "bicubic", "ground truth", *runs]  # inputs and target on top, the baselines below
fig = sample_frames({n: first[n] for n in order}, crop=(y, x, size), scores={**psnr, "ground truth": "reference"},
                    columns=3, cell=2.5, title=f"{item['name']}, frame 0: a {size}\u00d7{size} px crop",
                    note="PSNR: the whole frame against the ground truth (higher is better).")
save_figure(fig, "01_sample_frames", folder=FIG);

# %% [markdown]
# *Figure: a crop of the first frame of the first test clip: the LR input (nearest-neighbour x4),
# bicubic upsampling (the floor) and the ground truth, then as each model reconstructs it; under each
# tile its PSNR on the whole frame.*

# %% [markdown]
# ## The two formulas of this notebook
# Training minimises the Charbonnier loss `mean(sqrt((SR - HR)^2 + eps^2))`, eps = 1e-6 (an L1
# loss that is smooth at 0); each baseline is judged by its PSNR gain over bicubic upsampling,
# `PSNR(model) - PSNR(bicubic)` in dB, with `PSNR = 10 log10(1 / MSE)`. Below: the loss of the
# first baseline on the frames above, by hand and as the trainer computes it, and the gains from
# the table above.

# %%
from nriqa.losses.pixel import Charbonnier

sr, hr = outs[models[0]], item["hr"]  # the first baseline's output and the ground truth shown above
charbonnier = torch.sqrt((sr - hr) ** 2 + 1e-6 ** 2).mean()
assert torch.isclose(charbonnier, Charbonnier(eps=1e-6)(sr, hr)), "the trainer's Charbonnier term"
print(f"Charbonnier loss of {models[0]} on the first test clip: {charbonnier:.5f}")
(summary["psnr"] - summary.loc["bicubic", "psnr"]).drop("bicubic").to_frame("PSNR gain over bicubic (dB)").round(2)

# %% [markdown]
# A release is meant to clear bicubic by at least 0.8 dB on these clips (the gap between a model
# that super-resolves and one that only upsamples); the line below checks each baseline.

# %% [markdown]
# ## What the numbers show
# Printed from the table above (this run's measurements, PSNR in dB, SSIM in [0, 1]). The demo's
# baselines are tiny models trained on a CPU, so read it as: does each family clear the bicubic
# floor, and by how much; and how far the short run from scratch is behind. The paper profile's
# full-size models are not comparable with these.

# %%
print(study.describe_baselines(summary, [*models, *scratch]))
MIN_GAIN_DB = 0.8   # what a release should clear bicubic by (dB, these test clips)
short = [m for m in models if summary.loc[m, "psnr"] - summary.loc["bicubic", "psnr"] < MIN_GAIN_DB]
print(f"baselines below +{MIN_GAIN_DB} dB over bicubic: {', '.join(short) if short else 'none'}")

# %% [markdown]
# ## How to read this run
# The numbers are the outputs above, rendered from this run's tables; nothing here is typed by
# hand. On the demo profile the models are tiny and trained on a CPU: the question the outputs
# answer is whether each family clears the bicubic floor, and whether the later notebooks start from
# a model that super-resolves. The papers' numbers (full-size models, REDS / Vimeo-90K, hundreds of
# thousands of steps) need the `paper` profile on a GPU.

# %% [markdown]
# ## Recorded findings
# The key numbers above go to this run's `summary.json`
# ([where the findings go](00_tour.ipynb#Recorded-findings)).

# %%
from nriqa.study.summary import finding, record

gain_db = {m: summary.loc[m, "psnr"] - summary.loc["bicubic", "psnr"] for m in models}
record(cfg, "01_baseline", {
    "best_psnr_vs_bicubic": finding(f"PSNR over bicubic, best baseline ({max(gain_db, key=gain_db.get)})",
                                    max(gain_db.values()), fmt="+.2f", unit="dB",
                                    n=f"{len(clips)} test clips"),
    "worst_psnr_vs_bicubic": finding(f"PSNR over bicubic, weakest baseline ({min(gain_db, key=gain_db.get)})",
                                     min(gain_db.values()), fmt="+.2f", unit="dB",
                                     n=f"{len(clips)} test clips"),
    "baselines": study.describe_baselines(summary, [*models, *scratch]),
})
print("recorded in this run's summary.json, section 01_baseline")
