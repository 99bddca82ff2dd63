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
    assert "-5.0" in [t.get_text() for t in ax.texts]  # average of a: (0.1 - 0.2) / 2
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
