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
# # 04 · Choosing loss weights from gradient magnitudes
#
# **Question.** Hand-picked weights for an NR-IQA term either drown the fidelity term (and
# artifacts appear) or do nothing. Can the weights be chosen from the terms' gradient
# magnitudes instead?
#
# **Method.** At the baseline checkpoint, measure every term's gradient norm with respect to
# the generator's parameters and to its output frames, and the cosine between terms'
# gradients (negative = the terms conflict). Then compare three ways of weighting the same
# combinations: the profile's hand-picked weights, *static* weights chosen so each quality
# term's weighted gradient is a target share of the reference term's, and *online* balancing
# that re-estimates those weights during training. Every weighting is trained once per seed of
# the profile (`seeds`) from the same baseline, and judged by the *held-out* panel (the panel less
# the combination's own terms) over seeds x clips, with a 95% interval.

# %% tags=["parameters"]
from typing import Optional  # the parameters' annotations below

PROFILE: "Optional[str]" = None  # demo | smoke | paper; None: $NRIQA_PROFILE, else demo
DEVICE: str = "auto"  # auto | cpu | cuda | cuda:N
RUN_ROOT: "Optional[str]" = None  # folder of the run folders; None: $NRIQA_RUNS, else <repository>/runs
SEED: int = 0  # seed of the baseline; each weighting runs once per seed of the profile's `seeds` (default [SEED])

# %%
import math

import pandas as pd
from IPython.display import Markdown, display

from nriqa.analysis import claims
from nriqa.study import weighting as study
from nriqa.study.clock import timed
from nriqa.study.manifest import manifest_line
from nriqa.study.runs import ensure_baseline, ensure_kit_iqa, figure_dir, profile, term_label
from nriqa.viz import save_figure
from nriqa.viz.plots import seed_dots
from nriqa.viz.widgets import weight_explorer

cfg = profile(PROFILE, device=DEVICE, seed=SEED, run_root=RUN_ROOT)
FIG = figure_dir(cfg)
print(manifest_line(cfg))  # what the numbers depend on besides the profile
model = cfg["finetune"]["model"]
wcfg = cfg["weights"]
ensure_kit_iqa(cfg)
baseline = ensure_baseline(cfg, model)

# %% [markdown]
# ## Gradient magnitudes at the baseline

# %%
with timed("measuring the terms' gradients"):
    grads = {term_label(c): study.measure_term_gradients(cfg, baseline, c) for c in wcfg["combos"]}
norms = pd.DataFrame({label: g["param_norm"] for label, g in grads.items()}).T
norms

# %%
for label, g in grads.items():
    print(label, "cosine between term gradients:")
    print(pd.DataFrame(g["cosine"]).round(3), "\n")

# %% [markdown]
# **The static weights from these norms.** Each quality term `k` gets
# `w_k = share * w_ref * |g_ref| / |g_k|`, so that its weighted gradient norm is `share`
# (`weights.target_share`) times the reference term's (`weights.reference`, weight `w_ref = 1`);
# `|g|` are the gradient norms of the table above. The static arms below are trained with these.

# %%
share, ref = float(wcfg["target_share"]), wcfg["reference"]
static_w = {combo: {k: share * 1.0 * row[ref] / row[k] for k in row.dropna().index if k != ref}
            for combo, row in norms.iterrows()}
for spec in wcfg["combos"]:  # what the study trains the static arms with
    used = study.weighting_specs(cfg, spec, grads[term_label(spec)])["static"]
    assert all(math.isclose(w, used[k], rel_tol=1e-12) for k, w in static_w[term_label(spec)].items()), used
pd.DataFrame(static_w).T  # combination x quality term: w_k

# %% [markdown]
# ## Hand-set vs gradient-chosen weightings of the same combinations
# The profile's `weights.weightings` names the weightings compared (all three by default).
# The hand-set arm is notebook 02's fine-tune with the same weights (reused when it is trained).
# `held_out_gain` is the mean relative gain over the baseline on the panel less the
# combination's terms, over every seed and clip; `lo`, `hi` its 95% interval, `n` what it rests
# on. `mean_gain` is the whole panel's (seeds averaged); gains in %. The second table holds the
# artifact measures of each arm's first seed.

# %%
with timed("fine-tuning (or loading) every weighting on every seed and scoring it"):
    comparison = study.weighting_comparison(cfg, model, baseline, grads)
shown = comparison.set_index(["combo", "weighting"])
gain_columns = ["held_out_gain", "lo", "hi", "mean_gain"]
display(shown[["weights", *gain_columns, "n"]].style.format("{:+.2%}", subset=gain_columns))
shown.drop(columns=["weights", *gain_columns, "n"]).round(3)  # the artifact measures, of each arm's first seed

# %% expected_output="True" tags=["nbval-check-output"]
print(set(comparison["weighting"]) == set(study.weightings(cfg)))

# %%
fig = seed_dots(comparison, comparison.attrs["seed_gains"], group="combo", hue="weighting",
                value="held_out_gain", interval=("lo", "hi"), xlabel="quality term(s) added to Charbonnier",
                ylabel="held-out panel gain over the\nbaseline (%, \u2191 better)",
                title="Hand vs gradient-chosen weights",
                note="Mean over seeds and clips; interval: 95 %, seeds x clips; circles: one seed each (mean over "
                     "clips). Held-out panel: every measure except the combination's own terms.")
save_figure(fig, "04_weighting_comparison", folder=FIG);

# %% [markdown]
# *Figure: the held-out panel's mean relative gain (%) over the baseline of each combination
# under the three weightings: the thick mark and its number are the mean over seeds and clips, the
# thin line its 95% interval (none without one), the circles each seed's gain (mean over clips);
# above zero the fine-tune improved on the baseline. The y axis is linear near zero and
# logarithmic beyond, so small gains stay visible beside large losses.*

# %% [markdown]
# ## The claims against this run's numbers
# Per combination: do the hand-set weights improve the held-out panel; do the gradient-chosen
# weights improve it *more* than the hand-set ones (paired on seed and clip); and do the
# gradient-chosen weights leave it unchanged (an equivalence test against the profile's
# `verdicts.equivalence_margin`)? Notebook 00 says
# [how to read a verdict](00_tour.ipynb#How-to-read-a-verdict).

# %%
verdicts = comparison.attrs["verdicts"]
Markdown(claims.report(verdicts))

# %% [markdown]
# ## Explore the weights
# The explorer shows each term's share of the weighted gradient for the weights you pick
# (interactive in JupyterLab, a static figure when run headlessly).

# %%
spec = wcfg["combos"][0]  # the first combination: its hand-set weights against the gradient-chosen ones
chosen = study.weighting_specs(cfg, spec, grads[term_label(spec)])
view = weight_explorer(grads[term_label(spec)]["param_norm"], weights=chosen["static"],
                       compare={"hand-set": chosen["hand"], "gradient-chosen (static)": chosen["static"]},
                       title=f"{term_label(spec)}: weighted gradient shares")
if hasattr(view, "savefig"):  # a static figure (papermill, nbval, nriqa run): save and show it
    save_figure(view, "04_weight_explorer", folder=FIG)
else:  # the interactive viewer (JupyterLab, VS Code)
    display(view)

# %% [markdown]
# *Figure: each term's share of the weighted gradient under the hand-set weights and under the
# gradient-chosen (static) weights of the first combination (the legend gives the weights); a term
# whose share is nearly the whole bar drives the fine-tune alone.*

# %%
print(study.describe_weighting(comparison))

# %% [markdown]
# ## This notebook's verdict table
# The rows above in one table. None of them decides one of the papers' seven claims (this is the
# kit's own question), so every row is secondary: decided on its Benjamini-Hochberg q within this table.

# %%
from nriqa.study.runs import finetune_dose
from nriqa.study.summary import verdict_rows, verdict_table

verdicts = claims.family(verdicts, alpha=claims.settings(cfg).alpha)
print(finetune_dose(cfg))   # the verdicts hold at this dose
Markdown(verdict_table(verdict_rows(verdicts)))

# %% [markdown]
# ## How to read this run
# The gradient norms, the weights each rule chose and the resulting gains and artifacts are the
# outputs above, and the verdict table says which differences the seeds and clips resolve.
# Compare the rows of each combination: gradient-chosen weights that remove both the artifacts
# and the gain (an *equivalent* "leaves the held-out panel unchanged" row) trade the NR-IQA
# term's benefit away with its damage;
# `weights.target_share` is the knob that sets how much of the reference term's gradient a
# quality term may have.

# %% [markdown]
# ## Recorded findings
# The key numbers above go to this run's `summary.json`
# ([where the findings go](00_tour.ipynb#Recorded-findings)).

# %%
from nriqa.study.summary import record

record(cfg, "04_weighting", {"weightings": study.describe_weighting(comparison),
                             "verdicts": verdict_rows(verdicts)})
print("recorded in this run's summary.json, section 04_weighting")
