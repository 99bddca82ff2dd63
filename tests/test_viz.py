"""nriqa.viz: save_figure writes byte-identical PNG + SVG and shows bare figures in a kernel."""
from __future__ import annotations

import torch

from nriqa.viz import plots, save_figure


def test_saved_figures_are_byte_identical_when_redrawn(tmp_path):
    import matplotlib.pyplot as plt

    def draw(folder):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        ax.set_title("same")
        paths = save_figure(fig, "same", folder=folder)
        plt.close(fig)
        return [p.read_bytes() for p in paths]

    first, second = draw(tmp_path / "a"), draw(tmp_path / "b")
    assert first == second
    assert b"<dc:date>" not in first[1]


def test_save_figure_shows_the_figure_in_a_kernel(tmp_path, monkeypatch):
    """Bare Figures are not tracked by pyplot: save_figure shows them as a PNG cell output."""
    import IPython.display

    import nriqa.viz as viz

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    monkeypatch.setattr(viz, "in_notebook", lambda: False)
    fig = plots.sample_frames({"gt": torch.rand(3, 8, 8)})
    save_figure(fig, "quiet", folder=tmp_path)
    assert shown == []
    monkeypatch.setattr(viz, "in_notebook", lambda: True)
    save_figure(fig, "shown", folder=tmp_path)
    save_figure(fig, "not_shown", folder=tmp_path, show=False)
    assert len(shown) == 1 and shown[0].data[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{n}.{e}" for n in ("quiet", "shown", "not_shown") for e in ("png", "svg"))
