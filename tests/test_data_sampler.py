"""nriqa.data.sampler: aligned LR/HR crops, augmentations, determinism in (seed, step), test clips."""
import pytest
import torch

from nriqa.data import (
    Clip,
    TrainSampler,
    degrade,
    test_clips,
)


def _smooth_clip(name="synthetic/00", t=8, h=64, w=96, seed=0):
    """A clip with smooth random content (so crops of it are distinguishable)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(t, 3, h // 8, w // 8, generator=g)
    hr = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return Clip(name=name, source=name.split("/")[0], hr=hr.contiguous())


@pytest.fixture(scope="module")
def clips():
    return [_smooth_clip("a/00", seed=1), _smooth_clip("b/00", t=6, h=48, w=64, seed=2)]


def test_batch_shapes_and_ranges(clips):
    s = TrainSampler(clips, num_frames=3, lr_patch=8, batch_size=5, seed=0)
    b = s.batch(0)
    assert b["lr"].shape == (5, 3, 3, 8, 8) and b["hr"].shape == (5, 3, 3, 32, 32)
    for v in b.values():
        assert v.dtype == torch.float32 and v.min() >= 0 and v.max() <= 1 and v.is_contiguous()


def test_same_step_same_batch_in_any_order(clips):
    s1 = TrainSampler(clips, num_frames=3, lr_patch=8, batch_size=4, seed=7)
    s2 = TrainSampler(clips, num_frames=3, lr_patch=8, batch_size=4, seed=7)
    first = s1.batch(12)
    for step in (3, 0, 99):
        s2.batch(step)
    again = s2.batch(12)
    assert torch.equal(first["lr"], again["lr"]) and torch.equal(first["hr"], again["hr"])
    assert not torch.equal(s1.batch(13)["hr"], first["hr"])
    other_seed = TrainSampler(clips, num_frames=3, lr_patch=8, batch_size=4, seed=8)
    assert not torch.equal(other_seed.batch(12)["hr"], first["hr"])


@pytest.mark.parametrize("degradation,augment", [("BI", True), ("BD", False)])
def test_lr_and_hr_crops_align_exactly(clips, degradation, augment):
    s = TrainSampler(clips, num_frames=3, lr_patch=12, batch_size=6, degradation=degradation, seed=1,
                     quantize_lr=False, augment=augment)
    for step in range(3):
        b = s.batch(step)
        relr = degrade(b["hr"], degradation)
        m = 2   # kernel reach in LR px (BI 8, BD 6 HR px); inside it the crop equals the full-frame degrade
        inner = (slice(None),) * 3 + (slice(m, -m), slice(m, -m))
        assert (relr[inner] - b["lr"][inner]).abs().max() < 1e-5


def test_augmentations_flip_space_and_time():
    # a clip whose frames differ, with no spatial symmetry: each augmentation is visible
    clip = _smooth_clip("a/00", t=4, h=32, w=32, seed=3)
    s = TrainSampler([clip], num_frames=4, lr_patch=8, batch_size=1, seed=0)
    plain = clip.hr
    seen = set()
    for step in range(40):
        hr = s.batch(step)["hr"][0]
        seen.add((torch.equal(hr, plain), torch.equal(hr, plain.flip(-1)), torch.equal(hr, plain.flip(-2)),
                  torch.equal(hr, plain.flip(0))))
    assert (False, True, False, False) in seen and (False, False, True, False) in seen
    assert (False, False, False, True) in seen and (True, False, False, False) in seen


def test_sampler_rejects_unusable_input(clips):
    with pytest.raises(ValueError, match="no clip has"):
        TrainSampler(clips, num_frames=50)
    with pytest.raises(ValueError, match="no clips"):
        TrainSampler([])
    with pytest.raises(ValueError, match="degradation"):
        TrainSampler(clips, degradation="JPEG")
    with pytest.raises(ValueError, match="lr_patch"):
        TrainSampler(clips, lr_patch=0)


def test_test_clips_centre_crop_and_frames(clips):
    items = test_clips(clips, max_frames=4, max_side=10)
    assert [d["name"] for d in items] == ["a/00", "b/00"]
    a = items[0]
    assert a["lr"].shape == (1, 4, 3, 10, 10) and a["hr"].shape == (1, 4, 3, 40, 40)
    # centre crop: LR is 16x24 -> top 3, left 7; HR window is the 4x larger one
    assert torch.equal(a["hr"][0], clips[0].hr[:4, :, 12:52, 28:68])
    full = degrade(clips[0].hr[:4], "BI", quantize=True)
    assert torch.equal(a["lr"][0], full[:, :, 3:13, 7:17])
    whole = test_clips(clips[:1])[0]
    assert whole["hr"].shape == (1, 8, 3, 64, 96)
    shipped = Clip("c/00", "c", clips[0].hr, lr=torch.zeros(8, 3, 16, 24), degradation="BD")
    assert test_clips([shipped], degradation="BD")[0]["lr"].abs().sum() == 0     # dataset's own LR wins
    assert test_clips([shipped], degradation="BI")[0]["lr"].abs().sum() > 0      # computed otherwise
