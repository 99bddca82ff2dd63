"""Widgets fall back to static figures headlessly; interactive mode builds real ipywidgets."""
import pandas as pd
import pytest
import torch

from nriqa.viz import widgets


def clips():
    g = torch.Generator().manual_seed(0)
    gt = {"c1": torch.rand(3, 3, 32, 32, generator=g), "c2": torch.rand(2, 3, 32, 32, generator=g)}
    outs = {r: {k: (v * s).clamp(0, 1) for k, v in gt.items()} for r, s in (("base", 0.9), ("lpips", 1.1))}
    return gt, outs


def test_compare_frames_static_with_scores():
    gt, outs = clips()
    scores = pd.DataFrame({"run": ["base", "lpips"], "clip": ["c1", "c1"], "frame": [1, 1],
                           "measure": ["psnr", "psnr"], "score": [21.5, 19.25]})
    fig = widgets.compare_frames(outs, gt, scores, clip="c1", frame=1, crop=(4, 4, 16), interactive=False)
    axes = fig.axes  # a row of frames, then under each its column of the score table
    assert [a.get_title() for a in axes if a.get_title()] == ["ground truth", "base", "lpips"]
    assert axes[0].images[0].get_array().shape == (16, 16, 3)
    cells = [[t.get_text() for t in a.texts] for a in axes[3:]]
    assert cells == [["psnr \u2191"], ["21.5"], ["19.25"]]  # the measure with the direction that is better
    assert fig._suptitle.get_text() == "c1, frame 1"
    assert any("\u2191 higher is better" in t.get_text() for t in fig.texts)


def test_compare_frames_errors():
    gt, outs = clips()
    with pytest.raises(ValueError, match="clip 'nope'"):
        widgets.compare_frames(outs, gt, clip="nope", interactive=False)
    with pytest.raises(ValueError, match="runs"):
        widgets.compare_frames(outs, gt, runs=["ghost"], interactive=False)


def test_headless_detection(monkeypatch):
    monkeypatch.setenv("NRIQA_STATIC", "1")
    assert widgets.is_interactive() is False
    assert widgets.is_interactive(True) is True
    monkeypatch.delenv("NRIQA_STATIC")
    assert widgets.is_interactive() is False  # pytest runs no Jupyter kernel


def test_weight_explorer_static_shares():
    fig = widgets.weight_explorer({"charbonnier": 2.0, "lpips": 0.5, "niqe": 10.0},
                                  {"charbonnier": 1.0, "lpips": 4.0, "niqe": 0.1}, interactive=False)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == pytest.approx([0.4, 0.4, 0.2])
    with pytest.raises(ValueError, match="norms"):
        widgets.weight_explorer({}, interactive=False)


def test_interactive_widgets_build_and_react():
    pytest.importorskip("ipywidgets")
    gt, outs = clips()
    box = widgets.compare_frames(outs, gt, interactive=True)
    image = box.children[-1]
    first = image.value
    assert first[:4] == b"\x89PNG"
    clip_dd = box.children[0].children[0].children[0]
    clip_dd.value = "c2"
    assert image.value != first
    ex = widgets.weight_explorer({"charbonnier": 1.0, "lpips": 1.0}, interactive=True)
    img = ex.children[-1]
    before = img.value
    ex.children[0].children[1].value = 10.0
    assert img.value != before


def test_widgets_need_a_frontend_that_draws_them(monkeypatch):
    """papermill and nbval start bare kernels: static figures there without any flag."""

    class Kernel:  # a stand-in for ipykernel's shell, with or without a frontend's traces
        kernel = object()
        user_ns: dict = {}

    monkeypatch.delenv("NRIQA_STATIC", raising=False)
    monkeypatch.delenv("NRIQA_BATCH", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr("IPython.get_ipython", lambda: Kernel())
    assert widgets.is_interactive() is False          # papermill / nbval
    monkeypatch.setenv("JPY_SESSION_NAME", "/lab/notebooks/03.ipynb")
    assert widgets.is_interactive() is True           # JupyterLab
    monkeypatch.setenv("NRIQA_BATCH", "1")
    assert widgets.is_interactive() is False          # python -m nriqa run
    monkeypatch.delenv("NRIQA_BATCH")
    monkeypatch.delenv("JPY_SESSION_NAME")
    Kernel.user_ns = {"__vsc_ipynb_file__": "03.ipynb"}
    assert widgets.is_interactive() is True           # VS Code


def test_crop_position_sliders_are_disabled_while_the_crop_is_the_whole_frame():
    """At the largest crop size the crop position has no range: the y/x sliders are disabled and a
    note says so; a smaller crop enables them again (and moving them redraws)."""
    pytest.importorskip("ipywidgets")
    gt, outs = clips()
    box = widgets.compare_frames(outs, gt, interactive=True)        # no crop: the whole 32 x 32 frame
    size, y, x, note = box.children[0].children[1].children
    image = box.children[-1]
    assert (size.description, y.description, x.description) == ("crop size", "crop y", "crop x")
    assert size.value == size.max == 32
    assert y.disabled and x.disabled
    assert note.value == "crop covers the whole frame" and note.layout.display != "none"

    size.value = 16
    assert not y.disabled and not x.disabled and note.layout.display == "none"
    before = image.value
    y.value = 8
    assert image.value != before

    size.value = 32
    assert y.disabled and x.disabled and note.layout.display != "none"
    cropped = widgets.compare_frames(outs, gt, crop=(4, 4, 16), interactive=True)
    _, y2, x2, note2 = cropped.children[0].children[1].children
    assert not y2.disabled and not x2.disabled and note2.layout.display == "none"
