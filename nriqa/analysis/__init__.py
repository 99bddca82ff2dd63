"""Judge runs: evaluation panel, relative gain over the baseline, artifact measures, asymmetry.

>>> df = evaluate(run_dir, test_set, "demo", run="lpips", model="basicvsrpp", dataset="embedded")
>>> gains = relative_gain(pd.concat([base_df, df]), baseline="baseline")
>>> fig = gain_heatmap(gains, own={"lpips": "lpips-vgg-randtrunk"})
"""
from nriqa.analysis.artifacts import (ArtifactMap, Crop, blur, chroma_noise, crop_grid, edge_artifacts,
                                      flicker, top_crops)
from nriqa.analysis.asymmetry import (assessment_accuracy, asymmetry_correlation, asymmetry_scatter,
                                      asymmetry_table)
from nriqa.analysis.evaluation import PANELS, evaluate, resolve_panel
from nriqa.analysis.gain import gain_matrix, metric_hacking, relative_gain


def gain_heatmap(gains, **kw):
    """Relative-gain heatmap (see :func:`nriqa.viz.plots.gain_heatmap`)."""
    from nriqa.viz.plots import gain_heatmap as _heatmap

    return _heatmap(gains, **kw)


__all__ = ["ArtifactMap", "Crop", "PANELS", "assessment_accuracy", "asymmetry_correlation",
           "asymmetry_scatter", "asymmetry_table", "blur", "chroma_noise", "crop_grid",
           "edge_artifacts", "evaluate", "flicker", "gain_heatmap", "gain_matrix", "metric_hacking",
           "relative_gain", "resolve_panel", "top_crops"]
