"""Every offline quality measure has a defined, finite score on degenerate frames (constant, all
black, all white, a linear ramp, a one-pixel checkerboard, a single lit pixel) at and near its
card's ``min_size``, the values its card states, and a clear error just below ``min_size``."""
from __future__ import annotations

import pytest
import torch

from nriqa import quality as q
from nriqa.quality import MeasureInputError, UndefinedScoreError

OFFLINE = q.offline_names()


def degenerate_frames(h: int, w: int) -> dict[str, torch.Tensor]:
    ramp = torch.linspace(0, 1, w).expand(3, h, w)
    checker = ((torch.arange(h)[:, None] + torch.arange(w)[None]) % 2).float().expand(3, h, w)
    lit = torch.zeros(3, h, w)
    lit[:, h // 2, w // 2] = 1
    red = torch.zeros(3, h, w)
    red[0] = 1
    return {"black": torch.zeros(3, h, w), "white": torch.ones(3, h, w), "grey": torch.full((3, h, w), 0.5),
            "red": red, "ramp": ramp.clone(), "checker": checker.clone(), "one lit pixel": lit}


def textured(n: int, h: int, w: int) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def measures():
    return {}


def get(measures: dict, name: str):
    if name not in measures:
        measures[name] = q.create(name)
    return measures[name]


#: slow measures (about a second per 128 px frame): the square minimum size and fewer frames
SLOW = {"mad": ("black", "white", "ramp", "checker"), "ms_ssim": None}


def sizes(card) -> list[tuple[int, int]]:
    m = card.min_size
    return [(m, m)] if card.name in SLOW else [(m, m), (m + 1, 2 * m + 3)]


def scores(m, x, ref=None, chunk: int = 4) -> torch.Tensor:
    """Score in chunks: some pyiqa measures (mad) slow down more than linearly with the batch. A video
    measure (cvvdp) scores each frame as a one-frame clip ``(N, 1, 3, H, W)``."""
    if m.card.video:
        x, ref = x[:, None], None if ref is None else ref[:, None]
    return torch.cat([m(x[i:i + chunk], None if ref is None else ref[i:i + chunk])
                      for i in range(0, len(x), chunk)])


@pytest.mark.parametrize("name", OFFLINE)
def test_scores_are_finite_on_degenerate_frames_at_the_minimum_size(measures, name):
    m, card = get(measures, name), q.card(name)
    for h, w in sizes(card):
        frames = degenerate_frames(h, w)
        if SLOW.get(name):
            frames = {k: frames[k] for k in SLOW[name]}
        if name == "vif":  # undefined on a one-pixel checkerboard reference (see its card): tested below
            frames.pop("checker")
        d = torch.stack(list(frames.values()))
        k = len(frames)
        if card.mode == "NR":
            s = scores(m, d)
            labels = list(frames)
        else:  # each degenerate frame against itself, against texture, and texture against it
            tex = textured(k, h, w)
            s = scores(m, torch.cat([d, d, tex]), torch.cat([d, tex, d]))
            labels = [f"{f}/{f}" for f in frames] + [f"{f}/texture" for f in frames] + [f"texture/{f}" for f in frames]
        assert s.shape == (len(labels),)
        bad = [lab for lab, v in zip(labels, s.tolist()) if v != v or abs(v) == float("inf")]
        assert not bad, f"{name} {h}x{w}: non-finite on {bad}"
        # pyiqa's FR similarity/distance ranges hold on these frames too (nlpd and vif are unbounded)
        if card.backend.startswith("pyiqa:") and card.mode == "FR" and card.score_range is not None \
                and name not in ("nlpd", "vif"):
            lo, hi = card.score_range
            assert bool(((s >= lo - 1e-3) & (s <= hi + 1e-3)).all()), f"{name} {h}x{w}: {dict(zip(labels, s.tolist()))}"


@pytest.mark.parametrize("name", OFFLINE)
def test_one_pixel_below_the_minimum_size_is_a_clear_error(measures, name):
    m, card = get(measures, name), q.card(name)
    if card.min_size <= 1:
        pytest.skip(f"{name} accepts 1x1 frames")
    x = torch.rand(1, 3, card.min_size - 1, card.min_size + 5)
    x = x[:, None] if card.video else x
    args = (x, x) if card.mode == "FR" else (x,)
    with pytest.raises(MeasureInputError, match=rf"{name}: input x frames are .*at least {card.min_size}x"):
        m(*args)


IDENTICAL = {"psnr": 80.0, "ssim": 1.0, "ms_ssim": 1.0, "fsim": 1.0, "vsi": 1.0, "cw_ssim": 1.0,
             "gmsd": 0.0, "nlpd": 0.0, "mad": 0.0, "lpips-vgg-randtrunk": 0.0, "dists-vgg-randtrunk": 0.0,
             "st-lpips-alex": 0.0, "st-lpips-vgg": 0.0, "cvvdp": 10.0}


@pytest.mark.parametrize("name", sorted(set(IDENTICAL) & set(OFFLINE)))
def test_identical_flat_frames_score_the_stated_value(measures, name):
    m, card = get(measures, name), q.card(name)
    s = max(card.min_size, 32)
    flat = torch.stack([degenerate_frames(s, s)[k] for k in ("black", "white", "grey", "red")])
    if SLOW.get(name):
        flat = flat[:2]
    assert torch.allclose(scores(m, flat, flat), torch.full((len(flat),), IDENTICAL[name]), atol=1e-4)


def test_piqe_scores_every_flat_frame_100_the_black_one_too(measures):
    m = get(measures, "piqe")
    flat = torch.stack([degenerate_frames(32, 48)[k] for k in ("black", "white", "grey", "red")])
    assert m(flat).tolist() == [100.0] * 4
    assert m(flat, check_values=False).tolist() == [100.0] * 4  # no device read needed for this rule
    x = torch.rand(2, 3, 32, 48)
    assert torch.equal(m(x), m.net.net(x).reshape(-1).float())  # every other frame: pyiqa's score


def test_cw_ssim_of_two_structureless_frames_is_1_and_textured_frames_are_untouched(measures):
    m = get(measures, "cw_ssim")
    d = degenerate_frames(64, 64)
    x = torch.stack([d["black"], d["black"], d["ramp"], d["checker"]])
    ref = torch.stack([d["black"], d["white"], d["ramp"], d["grey"]])
    assert m(x, ref).tolist() == [1.0] * 4
    flat_vs_texture = m(d["grey"][None], textured(1, 64, 64))
    assert float(flat_vs_texture) < 1e-3
    a, b = textured(2, 64, 64).chunk(2)
    raw = m.net.net(a, b).reshape(-1).float()
    assert torch.equal(m(a, b), raw) and float(raw) < 1  # pyiqa's own value where it is defined


def test_vif_flat_reference_is_0_and_a_singular_one_is_fitted_with_clipped_eigenvalues(measures):
    m = get(measures, "vif")
    d = degenerate_frames(41, 43)
    # a flat reference carries no information: 0 whatever x is
    flat = m(torch.stack([d["black"], d["white"], textured(1, 41, 43)[0]]),
             torch.stack([d["black"], d["grey"], d["grey"]]))
    assert flat.tolist() == [0.0, 0.0, 0.0]
    # a ramp reference: checked calls give the clipped fit; unchecked ones pyiqa's own value, which is
    # NaN with MKL's AVX-512 kernels and the same fit with the AVX2 ones nriqa pins (MKL_CBWR=AVX2)
    x = torch.stack([d["ramp"], d["black"], textured(1, 41, 43)[0]])
    ref = torch.stack([d["ramp"], d["ramp"], textured(1, 41, 43)[0]])
    raw = m(x, ref, check_values=False)
    s = m(x, ref)
    assert abs(float(s[0]) - 1) < 1e-3 and abs(float(s[1])) < 1e-6
    assert bool(raw[2].isfinite()) and all(bool(r.isnan()) or abs(float(r - c)) < 1e-3 for r, c in zip(raw[:2], s[:2]))
    assert float(s[2]) == float(raw[2])  # frames pyiqa scores keep pyiqa's score exactly
    # a one-pixel checkerboard reference: finite (meaningless) or a clear error, never a silent NaN
    try:
        v = m(textured(1, 41, 43), d["checker"][None])
        assert bool(torch.isfinite(v).all())
    except UndefinedScoreError as err:
        assert "vif: the score of frame(s) 0" in str(err)
    # gradients stay finite through the repaired frames
    xg = x.clone().requires_grad_(True)
    m(xg, ref).sum().backward()
    assert bool(torch.isfinite(xg.grad).all())


def test_a_nan_score_left_undefined_raises_naming_the_frames(measures):
    m = get(measures, "ssim")

    class NaNForSecondFrame(torch.nn.Module):
        def forward(self, x, ref):
            return torch.stack([torch.zeros(()), torch.tensor(float("nan"))])

    broken = q.Measure(m.card, NaNForSecondFrame())
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(UndefinedScoreError, match=r"ssim: the score of frame\(s\) 1 of input x is NaN") as err:
        broken(x, x)
    assert isinstance(err.value, ValueError)
    assert broken(x, x, check_values=False)[1].isnan()  # the trainer's path reads nothing back


def test_niqe_of_flat_frames_is_finite(measures):
    """Finite on flat frames. Not one value across grey levels: the MSCN window follows the reference
    toolbox's float32-rounded weights, which give a flat region of level I the value -1.1e-8 I / (1 + sigma)
    (nriqa/quality/niqe.py), so the fit's scales grow with the level, as in the reference."""
    for name in ("niqe", "niqe-kit"):
        m, card = get(measures, name), q.card(name)
        s = card.min_size
        flat = torch.stack([degenerate_frames(s, s)[k] for k in ("black", "white", "grey", "red")])
        v = m(flat)
        assert bool(torch.isfinite(v).all()), v
        assert torch.equal(m(flat[1:2]), v[1:2])           # deterministic per frame


@pytest.mark.parametrize("name", ["cw_ssim", "fsim", "nlpd"])
def test_the_degenerate_rules_read_nothing_back_on_the_trainers_path(measures, name, monkeypatch, host_reads):
    """The rules that run on every call (cw_ssim's cap, fsim's and nlpd's finite gradient) add no
    device-to-host read to an unchecked loss forward + backward (the trainer's step)."""
    from nriqa.losses import QualityLoss

    loss = QualityLoss(name, validate=False)
    d = degenerate_frames(64, 64)
    x = torch.stack([d["grey"], textured(1, 64, 64)[0]]).requires_grad_(True)
    ref = torch.stack([d["grey"], d["white"]])
    seen = host_reads()
    value = loss(x, ref)
    value.backward()
    monkeypatch.undo()
    assert seen == []
    assert bool(torch.isfinite(value)) and bool(torch.isfinite(x.grad).all())
