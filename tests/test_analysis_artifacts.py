"""Artifact measures on real photos with synthetic artifacts: the matching measure responds,
the others stay near their clean baseline."""
import pytest
import skimage.data
import torch
import torch.nn.functional as F

from nriqa.analysis import artifacts as A
from nriqa.viz import plots


def photo(name: str, size: int = 96) -> torch.Tensor:
    a = torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1).float() / 255
    h, w = a.shape[1:]
    s = min(h, w)
    a = a[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return F.interpolate(a[None], size=(size, size), mode="area")[0]


@pytest.fixture(scope="module")
def gt() -> torch.Tensor:
    # range squeezed to [0.1, 0.9] so that added artifacts are not clipped away
    return 0.1 + 0.8 * torch.stack([photo(n) for n in ("astronaut", "chelsea", "coffee")])


def colored_dots(x, density=0.01, amp=0.5, seed=1):
    g = torch.Generator().manual_seed(seed)
    m = (torch.rand(x.shape[0], 1, *x.shape[2:], generator=g) < density).float()
    sign = torch.where(torch.rand(m.shape, generator=g) < 0.5, -1.0, 1.0)
    green_magenta = torch.tensor([-1.0, 1.0, -1.0]).view(1, 3, 1, 1) * amp
    return (x + m * sign * green_magenta).clamp(0, 1)


def dotted_edges(x, gt, amp=0.15):
    m = A.edge_mask(gt, dilate=1).float()
    yy, xx = torch.meshgrid(torch.arange(x.shape[-2]), torch.arange(x.shape[-1]), indexing="ij")
    checker = torch.where((yy // 2 + xx // 2) % 2 == 0, 1.0, -1.0)  # period-4 pattern
    return (x + amp * m * checker).clamp(0, 1)


def stripes(x, amp=0.04):
    """Green / magenta vertical stripes over the whole frame, period 4 px (a generator's grid)."""
    xx = torch.arange(x.shape[-1])
    wave = torch.where(xx % 4 < 2, 1.0, -1.0).view(1, 1, 1, -1)
    return (x + amp * wave * torch.tensor([-1.0, 1.0, -1.0]).view(1, 3, 1, 1)).clamp(0, 1)


def gaussian_blur(x, sigma=1.5):
    return A._gauss(x, sigma)


def all_scores(pred, gt):
    return {k: A.MEASURES[k](pred, gt).scores for k in A.MEASURES}


def test_clean_frames_score_zero(gt):
    for name, s in all_scores(gt, gt).items():
        assert torch.allclose(s, torch.zeros_like(s), atol=1e-5), name


@pytest.mark.parametrize("artifact,measure", [("dots", "chroma_noise"), ("edges", "edge_artifacts"),
                                              ("blur", "blur"), ("stripes", "periodic_pattern")])
def test_matching_measure_responds_others_stay(gt, artifact, measure):
    make = {"dots": colored_dots, "edges": lambda x: dotted_edges(x, gt), "blur": gaussian_blur,
            "stripes": stripes}[artifact]
    clean = all_scores(gt, gt)
    dirty = all_scores(make(gt), gt)
    response = (dirty[measure] - clean[measure]).min().item()
    assert response > 0.5, (artifact, dirty)
    for other in A.MEASURES:
        if other != measure:
            drift = (dirty[other] - clean[other]).abs().max().item()
            assert drift < 0.2 * response, (artifact, other, drift, response)


def test_periodic_grid_does_not_hide_dots(gt):
    # chroma_noise removes the frame-wide grid (periodic's business) but still sees dots on top of it
    dots = A.chroma_noise(colored_dots(gt), gt).scores
    both = A.chroma_noise(colored_dots(stripes(gt)), gt).scores
    assert (both > 0.8 * dots).all() and (both < 1.25 * dots).all(), (dots, both)
    grid = A.periodic_pattern(stripes(gt), gt).scores
    assert (A.periodic_pattern(colored_dots(stripes(gt)), gt).scores > 0.8 * grid).all()
    # the score is the grid's RMS per YCbCr channel in 8-bit grey levels: log2(1 + 255 a)
    y = -0.299 + 0.587 - 0.114                       # the stripes' RGB (-1, 1, -1) in Y, Cb, Cr
    a = 0.04 * ((y ** 2 + (0.564 * (-1 - y)) ** 2 + (0.713 * (-1 - y)) ** 2) / 3) ** 0.5
    expected = torch.log2(torch.tensor(1 + 255 * a))
    assert torch.allclose(grid, expected.expand_as(grid), atol=0.3), (grid, expected)


def test_maps_have_frame_shape_and_localize(gt):
    pred = gt.clone()
    pred[0, :, 10:30, 10:30] = colored_dots(pred[:1], density=0.2)[0, :, 10:30, 10:30]
    res = A.chroma_noise(pred, gt)
    assert res.maps.shape == (3, 96, 96) and res.scores.shape == (3,)
    assert res.maps[0, 10:30, 10:30].mean() > 10 * res.maps[0, 50:, 50:].mean() + 1e-6
    crops = A.top_crops(pred, gt, "chroma_noise", k=2, size=16)
    assert len(crops) == 2 and crops[0].frame == 0
    c = crops[0]
    assert 0 <= c.y <= 30 and 0 <= c.x <= 30  # the window overlaps the dotted square
    assert crops[0].value >= crops[1].value
    assert not (crops[1].frame == c.frame and abs(crops[1].y - c.y) < 16 and abs(crops[1].x - c.x) < 16)


def test_blur_grows_with_sigma_and_video_shapes(gt):
    s = [A.blur(gaussian_blur(gt, sig), gt).scores.mean().item() for sig in (0.7, 1.5, 3.0)]
    assert s[0] < s[1] < s[2]
    video = gt[None]  # (1,T,3,H,W) flattens to frames
    assert A.blur(video, video).scores.shape == (3,)


def blotches(clip, amp=0.05, seed=0):
    """Fresh smooth brightness blotches (~8 px) in every frame: local brightness flicker."""
    g = torch.Generator().manual_seed(seed)
    field = A._gauss(torch.randn(clip.shape[0], 1, *clip.shape[-2:], generator=g), 4.0)
    return (clip + amp * field / field.std()).clamp(0, 1)


def test_flicker_ratio(gt):
    # a panning clip: frames are shifted crops of one photo
    big = 0.1 + 0.8 * photo("astronaut", 128)
    clip = torch.stack([big[:, 8 + i:8 + i + 96, 8 + 2 * i:8 + 2 * i + 96] for i in range(4)])
    stable = A.flicker(clip, clip)
    assert stable.scores.shape == (3,) and torch.allclose(stable.scores, torch.ones(3))
    flickering = A.flicker(blotches(clip), clip).scores
    assert (flickering > 2).all(), flickering
    # the same blotches in every frame (no temporal change) flicker much less
    still = blotches(clip[:1]).expand_as(clip) - clip[:1] + clip
    assert A.flicker(still.clamp(0, 1), clip).scores.mean() < 0.5 * flickering.mean()
    # fresh fine-grained noise per frame is a spatial artifact, not a brightness flicker
    g = torch.Generator().manual_seed(0)
    noisy = (clip + 0.05 * torch.randn(clip.shape, generator=g)).clamp(0, 1)
    assert A.flicker(noisy, clip).scores.mean() < 0.5 * flickering.mean()


def test_bad_inputs_are_named(gt):
    with pytest.raises(ValueError, match="pred"):
        A.blur(gt[:, :2], gt[:, :2])
    with pytest.raises(ValueError, match="same shape"):
        A.chroma_noise(gt, gt[:2])
    with pytest.raises(ValueError, match="unknown artifact"):
        A.top_crops(gt, gt, "nope")
    with pytest.raises(ValueError, match="larger"):
        A.top_crops(gt, gt, "blur", size=500)


def test_crop_grid_draws(gt):
    crops = A.top_crops(colored_dots(gt), gt, "chroma_noise", k=2, size=24)
    fig = plots.crop_grid(crops, gt, {"baseline": gaussian_blur(gt), "dots": colored_dots(gt)})
    assert len(fig.axes) == 2 * 3
    assert fig.axes[0].get_title() == "ground truth"


def test_flicker_accepts_a_flow_net():
    class ShiftFlow(torch.nn.Module):  # a stand-in "pretrained" flow: every pixel moved by (+2, +1)
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, ref, supp):
            f = torch.zeros(ref.shape[0], 2, *ref.shape[-2:])
            f[:, 0], f[:, 1] = 2.0, 1.0
            return f

    big = 0.1 + 0.8 * photo("astronaut", 128)
    clip = torch.stack([big[:, 8 + i:8 + i + 96, 8 + 2 * i:8 + 2 * i + 96] for i in range(3)])
    res = A.flicker(blotches(clip), clip, flow_net=ShiftFlow())
    assert res.scores.shape == (2,) and (res.scores > 2).all()
    assert A.flow_method(ShiftFlow()) == "spynet-on-ground-truth" and A.flow_method() == A.FLOW_METHOD


def test_green_dots_every_4px_along_an_edge_are_found():
    # the case the old band-pass edge measure scored 0: a clean step edge, green dots every 4 px on it
    x = torch.full((2, 3, 64, 64), 0.3)
    x[..., 32:] = 0.7
    dotted = x.clone()
    dotted[:, 1, 31:33, ::4] += 0.25
    s = A.edge_artifacts(dotted, x).scores
    assert (s > 0.3).all(), s  # the old measure: 0
    assert (A.edge_artifacts(A._gauss(x, 1.0), x).scores < 0.05).all()  # a blurred edge is no dotted edge
