"""Judge runs: evaluation panel, relative gain over the baseline, artifact measures, asymmetry.

>>> df = evaluate(run_dir, test_set, "demo", run="lpips", model="basicvsrpp", dataset="embedded")
>>> gains = relative_gain(pd.concat([base_df, df]), baseline="baseline")
>>> fig = nriqa.viz.plots.gain_heatmap(gains, own={"lpips": "lpips-vgg-randtrunk"})

The figures are drawn by :mod:`nriqa.viz` (the layer above) from the tables computed here.
"""
from nriqa.analysis.artifacts import (
                                      ArtifactMap,
                                      Crop,
                                      blur,
                                      chroma_noise,
                                      edge_artifacts,
                                      flicker,
                                      periodic_pattern,
                                      top_crops,
)
from nriqa.analysis.asymmetry import assessment_accuracy, assessment_frame, asymmetry_correlation, asymmetry_table
from nriqa.analysis.evaluation import evaluate, generator_outputs, resolve_panel
from nriqa.analysis.gain import gain_matrix, metric_hacking, relative_gain

__all__ = ["ArtifactMap", "Crop", "assessment_accuracy", "assessment_frame", "asymmetry_correlation",
           "asymmetry_table", "blur", "chroma_noise",
           "edge_artifacts", "evaluate", "flicker", "gain_matrix", "generator_outputs",
           "metric_hacking", "periodic_pattern", "relative_gain", "resolve_panel", "top_crops"]
