"""The study: one module per question a notebook asks, over a small shared core.

Core (every notebook may use it):

- :mod:`nriqa.study.runs`        profiles, run names and configs, cached training (``ensure_*``)
- :mod:`nriqa.study.judging`  test clips, panel scores of runs, mean gains, artifact tables
- :mod:`nriqa.study.verdicts`    per-seed, per-clip gains and artifact changes behind the verdicts
- :mod:`nriqa.study.summary`     each notebook's key findings recorded in ``summary.json``; README's findings block

Questions (one per notebook):

- :mod:`nriqa.study.baseline`     01 · how well does each VSR model learn from Charbonnier alone?
- :mod:`nriqa.study.finetuning`   02 · what does one extra loss term do to the other measures?
- :mod:`nriqa.study.artifact_sources`    03 · which terms produce which artifacts?
- :mod:`nriqa.study.weighting`    04 · can loss weights come from gradient magnitudes?
- :mod:`nriqa.study.discriminator_choice`  05 · which discriminator reconstructs detail faithfully?
- :mod:`nriqa.study.assess_vs_optimize`    06 · does a measure that assesses well also optimize well?

Every experiment is a run folder ``<RUN_ROOT>/<profile>/<experiment>-s<seed>-<key>/`` (see
:mod:`nriqa.study.runs`: the key hashes what changes the result);
``ensure_*`` trains only what is missing, so re-running a notebook is cheap and an interrupted
run resumes. The study may import every other nriqa subpackage; none of them imports the study.
"""
