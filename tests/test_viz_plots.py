"""nriqa.viz.plots: plot helpers draw what they are given."""
import numpy as np
import pandas as pd
import pytest
import torch

from nriqa.viz import plots, save_figure
from nriqa.viz.plots import difference_tile, tile_grid, zoom_tile


def test_training_curves_picks_loss_columns():
    log = pd.DataFrame({"step": np.arange(0, 100, 10), "loss/charbonnier": np.linspace(1, 0.1, 10),
                        "loss/lpips": np.linspace(0.5, 0.3, 10), "lr": np.full(10, 1e-3)})
    fig = plots.training_curves(log, smooth=2)
    titles = [a.get_title() for a in fig.axes if a.get_visible()]
    assert titles == ["loss/charbonnier", "loss/lpips"]
    y = fig.axes[0].lines[0].get_ydata()
    assert y[1] == pytest.approx((1 + 0.9) / 2)  # rolling mean of 2
    with pytest.raises(ValueError, match="no column"):
        plots.training_curves(log[["step", "lr"]])


def test_sample_frames_crop_and_captions():
    x = torch.rand(2, 3, 40, 40)
    fig = plots.sample_frames({"gt": x, "run": x.flip(-1)}, index=1, crop=(0, 0, 20), scores={"run": "psnr 30"})
    assert fig.axes[0].images[0].get_array().shape == (20, 20, 3)
    assert fig.axes[1].get_xlabel() == "psnr 30"
    with pytest.raises(ValueError, match=r"bad must be .*RGB frames, got \(2, 40, 40\)"):
        plots.sample_frames({"bad": torch.rand(2, 40, 40)})


def test_gain_heatmap_without_flags_and_save(tmp_path, monkeypatch):
    matrix = pd.DataFrame({"psnr": [0.1, 0.05], "niqe": [-0.2, 0.0], "average": [-0.05, 0.025]},
                          index=pd.Index(["a", "b"], name="run"))
    fig = plots.matrix_heatmap(matrix, row_labels={"a": "+ NIQE"})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["+ NIQE", "b"]
    assert not ax.patches and fig.hacking.empty
    assert "\u22125.0" in [t.get_text() for t in ax.texts]  # average of a: (0.1 - 0.2) / 2, a true minus sign
    monkeypatch.setenv("NRIQA_FIGURES", str(tmp_path))
    paths = save_figure(fig, "heat")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heat.png", "heat.svg"]
    assert paths[1].read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match="plain file stem"):
        save_figure(fig, "../escape")


def test_scatter_labels_of_close_points_go_to_different_sides_and_gains_read_in_percent():
    t = pd.DataFrame({"measure": ["a", "b", "c", "far"], "srcc": [0.5, 0.5, 0.51, 0.9],
                      "gain": [0.01, 0.0101, 0.01, -0.02]})
    fig = plots.asymmetry_scatter(t)
    ax = fig.axes[0]
    offsets = [tx.xyann for tx in ax.texts]
    assert len(set(offsets[:3])) == 3 and offsets[3] == (4, 3)
    assert ax.get_ylabel().endswith("(%)") and ax.yaxis.get_major_formatter()(0.01, 0).startswith("1")


def test_scatter_labels_neither_collide_nor_leave_the_axes():
    """Clustered points (two pairs nearly on top of each other, long names) get labels whose drawn
    boxes do not overlap and stay inside the plot frame."""
    t = pd.DataFrame({"measure": ["cnniqa@embedded", "wadiqam@embedded", "niqe", "lpips-vgg-randtrunk", "gmsd"],
                      "srcc": [0.68, 0.36, 0.61, 0.915, 0.912], "gain": [0.016, -0.0023, -0.0018, -0.0018, -0.0022]})
    fig = plots.asymmetry_scatter(t)
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in ax.texts]
    assert len(boxes) == 5
    frame = ax.get_window_extent(renderer)
    for i, b in enumerate(boxes):
        assert frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1, ax.texts[i].get_text()
        for c in boxes[:i]:
            assert not b.overlaps(c), (ax.texts[i].get_text(), [x.get_text() for x in ax.texts])


def test_gradient_share_labels_fit_above_full_bars():
    fig = plots.gradient_shares({"a": 0.0, "b": 1.0}, {"a": 1.0, "b": 1.0})
    ax = fig.axes[0]
    top = max(t.get_position()[1] for t in ax.texts)
    assert top == pytest.approx(1.02) and ax.get_ylim()[1] > top + 0.05


def test_tiles_zoom_difference_and_grid():
    x = torch.rand(3, 20, 20)
    z = zoom_tile(x, y=2, x0=3, size=5, zoom=3)
    assert z.shape == (3, 15, 15) and torch.equal(z[:, :3, :3], x[:, 2:3, 3:4].expand(3, 3, 3))
    d = difference_tile(x, x)
    assert torch.allclose(d, torch.full_like(d, 0.5))
    fig = tile_grid({"r1": {"a": z, "b": z}, "r2": {"a": z}}, captions={"r1": {"a": "s 1.0 \u2191"}})
    assert sum(1 for a in fig.axes if a.images) == 3
    with pytest.raises(ValueError, match="empty"):
        tile_grid({})


def test_text_sizes_report_the_smallest_font_at_readme_width(tmp_path):
    """A 6-pt label is 6 pt on a figure README shows at full size, and shrinks with a wider one
    (README shows a 150-dpi PNG at most 800 CSS px wide, 96 per inch); save_figure writes both
    sizes into the PNG for benchmarks/figure_sizes.py."""
    from matplotlib.figure import Figure
    from PIL import Image

    from nriqa.viz import text_sizes

    def figure(width):
        fig = Figure(figsize=(width, 3))
        ax = fig.add_subplot()
        ax.set_xlabel("tiny", fontsize=6)
        ax.set_title("big", fontsize=14)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.text(0.5, 0.5, "   ", fontsize=2)  # blank: not counted
        hidden = fig.text(0.5, 0.4, "hidden", fontsize=3)
        hidden.set_visible(False)  # invisible: not counted
        return fig

    narrow = text_sizes(figure(4))
    assert narrow["min_pt"] == 6 and narrow["display_pt"] == 6 and narrow["width_px"] < 800
    wide = text_sizes(figure(16))
    assert wide["min_pt"] == 6
    assert wide["display_pt"] == pytest.approx(6 * 150 / 96 * 800 / wide["width_px"])
    assert wide["width_px"] > 1500 and wide["display_pt"] < 5
    fig = figure(16)
    png = save_figure(fig, "wide", folder=tmp_path, show=False)[0]
    with Image.open(png) as im:
        assert abs(im.size[0] - wide["width_px"]) <= 2
        assert float(im.text["nriqa:min_pt"]) == 6 and float(im.text["nriqa:display_pt"]) == pytest.approx(
            wide["display_pt"], abs=0.01)
    assert fig.text_sizes == wide
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "figure_sizes.py"
    out = subprocess.run([sys.executable, str(script), str(tmp_path), "--check"], capture_output=True, text=True)
    assert out.returncode == 1 and "| wide.png |" in out.stdout and "TOO SMALL" in out.stdout


def test_heatmap_colour_scale_is_not_set_by_one_cell():
    """One cell at +1200 % among gains of a few percent: the scale stops at the 90th percentile of
    |gain|, the outlier is drawn at its end in bold, the colour bar gets end triangles and percent
    ticks, and a note says so; flagged cells are outlined and keep their numbers readable."""
    rng = np.random.default_rng(0)
    data = rng.uniform(-0.05, 0.05, size=(4, 6))
    data[1, 2] = 12.0
    matrix = pd.DataFrame(data, index=[f"r{i}" for i in range(4)], columns=[f"m{j}" for j in range(5)] + ["average"])
    flags = pd.DataFrame({"run": ["r1"], "own": ["m2"], "flagged": [True]})
    fig = plots.matrix_heatmap(matrix, flags=flags)
    ax = fig.axes[0]
    lim = fig.color_limit
    assert lim == pytest.approx(np.quantile(np.abs(data), 0.9)) and lim < 0.1
    assert ax.images[0].get_clim() == (-lim, lim)
    bold = [t.get_text() for t in ax.texts if t.get_fontweight() == "bold"]
    assert "+1200" in bold and len(bold) <= np.ceil(0.1 * data.size)  # the top tenth at most
    assert all(t.get_fontsize() >= 9 for t in ax.texts)
    bar = ax.images[0].colorbar
    assert bar.extend == "both"
    ticks = [bar.formatter(v, 0) for v in bar.get_ticks()]
    assert any(t.endswith(" %") for t in ticks) and not any("e+" in t for t in ticks)
    assert any("colour scale" in t.get_text() and "bold" in t.get_text() for t in fig.texts)
    assert ax.patches and not any(p.get_hatch() for p in ax.patches)  # outlined, numbers not hatched over
    assert plots.color_limit([0.1, -0.12, 0.11]) == pytest.approx(0.12)  # no outlier: nothing clipped
    assert plots.color_limit([0.0, float("nan")]) == 1.0
    plain = plots.matrix_heatmap(matrix.clip(-0.05, 0.05))
    assert plain.axes[0].images[0].colorbar.extend == "neither"


def test_seed_dots_and_share_comparison():
    table = pd.DataFrame({"combo": ["a", "a", "b", "b"], "weighting": ["hand", "static"] * 2,
                          "gain": [-0.5, 0.003, -0.1, 0.01], "lo": [-0.9, 0.0, -0.2, -0.01],
                          "hi": [-0.1, 0.006, 0.0, 0.03]})
    seeds = pd.DataFrame({"combo": ["a"] * 3, "weighting": ["hand"] * 3, "seed": [0, 1, 2],
                          "gain": [-0.4, -0.5, -0.6]})
    fig = plots.seed_dots(table, seeds, group="combo", hue="weighting", interval=("lo", "hi"))
    ax = fig.axes[0]
    assert ax.get_yscale() == "symlog" and [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    assert not ax.lines or all(len(line.get_xdata()) <= 2 for line in ax.lines)  # nothing joins the groups
    from matplotlib.collections import PathCollection

    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [len(c.get_offsets()) for c in dots] == [3]  # the three seeds of (a, hand)
    assert "\u221250 %" in [t.get_text() for t in ax.texts]
    fig = plots.share_comparison({"charbonnier": 1.0, "q": 10.0}, {"hand-set": {"charbonnier": 1.0, "q": 1.0},
                                                                   "chosen": {"charbonnier": 1.0, "q": 0.01}})
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["9 %", "91 %", "91 %", "9 %"]


def test_tile_score_grid_names_detectors_once_and_marks_changes():
    z = torch.rand(3, 12, 12)
    scores = pd.DataFrame({"start": [0.001, 4.8], "term": [0.5, 0.0123]}, index=["chroma_noise", "blur"])
    fig = plots.tile_score_grid({"baseline start": {"start": z, "term": z}}, {"baseline start": scores},
                                reference="start", note="n")
    tables = [a for a in fig.axes if a.texts]
    assert [[t.get_text() for t in a.texts] for a in tables] == [["0.001", "4.8"], ["0.5 \u2191", "0.0123 \u2193"]]
    assert [t.get_text() for t in tables[0].get_yticklabels()] == ["chroma_noise", "blur"]  # full names, once
    assert not tables[1].get_yticklabels()
    assert plots.tile_score_grid({"r": {"start": z}}, {"r": scores[["start"]]}, reference="start").axes


def test_injected_pairs_draws_a_clean_and_an_injected_tile_per_detector():
    z = torch.rand(3, 12, 12)
    pairs = {"chroma_noise": {"clean": z, "injected": z.flip(-1), "kind": "coloured_dots", "strength": 0.1,
                              "clean_value": 0.0, "value": 0.4074, "margin": 0.41},
             "blur": {"clean": z, "injected": z, "kind": "blur", "strength": 0.2, "clean_value": 0.0, "value": 0.55}}
    fig = plots.injected_pairs(pairs, title="t")
    axes = [a for a in fig.axes if a.images]
    assert len(axes) == 4 and [a.get_title() for a in axes[:2]] == ["chroma noise", "blur"]
    assert [a.get_xlabel() for a in axes] == ["0", "0", "coloured dots 0.1\n0.407\nmargin 0.41", "blur 0.2\n0.55"]
    with pytest.raises(ValueError, match="nothing to draw"):
        plots.injected_pairs({})


def test_validation_curves_draw_one_line_per_seed_and_mark_the_kept_step():
    rows = [{"discriminator": d, "init": i, "seed": s, "step": st, "score": 0.1 * st / 20 + s, "best": st == 40}
            for d in ("vanilla", "vit") for i in ("random", "discriminator") for s in (0, 1) for st in (0, 20, 40)]
    fig = plots.validation_curves(pd.DataFrame(rows), ylabel="validation SRCC")
    panels = [a for a in fig.axes if a.get_title()]
    assert [a.get_title() for a in panels] == ["vanilla", "vit"]
    lines = panels[0].lines                                   # 2 inits x 2 seeds: a curve and a kept dot each
    assert len(lines) == 8 and sum(len(ln.get_xdata()) == 1 for ln in lines) == 4
    assert {float(ln.get_xdata()[0]) for ln in lines if len(ln.get_xdata()) == 1} == {40.0}
    assert panels[0].get_ylabel() == "validation SRCC"
    with pytest.raises(ValueError, match="lacks columns"):
        plots.validation_curves(pd.DataFrame(rows).drop(columns="seed"))
