"""nriqa.data.embedded: real clips from installed packages, split by source, on-disk cache safety."""
import hashlib
import time
import warnings

import pytest
import torch

from nriqa.data import embedded, embedded_clips, pristine_frames


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory):
    """A private, initially empty cache dir; the cold build happens once for the module."""
    root = tmp_path_factory.mktemp("nriqa_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NRIQA_CACHE", str(root))
        embedded.clear_memory_cache()
        start = time.perf_counter()
        clips = embedded_clips("all", progress=False)
        cold = time.perf_counter() - start
        yield {"root": root, "clips": clips, "cold_s": cold}
    embedded.clear_memory_cache()


def test_clips_are_real_cpu_sized_frames(fresh_cache):
    clips = fresh_cache["clips"]
    assert len(clips) >= 20
    for c in clips:
        t, ch, h, w = c.hr.shape
        assert (t, ch) == (embedded.SEGMENT_LEN, 3)
        assert h % 4 == 0 and w % 4 == 0 and max(h, w) <= embedded.MAX_SIDE
        assert c.hr.dtype == torch.float32 and 0 <= c.hr.min() and c.hr.max() <= 1
        assert c.hr.std() > 0.05                              # real content, not flat frames
        assert (c.hr[1:] - c.hr[:-1]).abs().mean() > 1e-3     # real motion between frames
    sources = {c.source for c in clips}
    assert {"bigbuckbunny", "carphone", "bikes-shot1", "photo-astronaut"} <= sources
    per_source = {s: sum(c.source == s for c in clips) for s in sources}
    assert max(per_source.values()) >= 2


def test_split_is_by_source_and_shares_no_frame(fresh_cache):
    train, test = embedded_clips("train"), embedded_clips("test")
    assert len(train) + len(test) == len(fresh_cache["clips"])
    assert {c.source for c in train}.isdisjoint({c.source for c in test})
    assert {c.source for c in test} == set(embedded.TEST_SOURCES)

    def digests(clips):
        return {hashlib.sha1((c.hr[t] * 255).round().to(torch.uint8).numpy().tobytes()).hexdigest()
                for c in clips for t in range(c.num_frames)}

    assert digests(train).isdisjoint(digests(test))
    assert [c.name for c in embedded_clips("train")] == [c.name for c in train]   # fixed order


def test_cache_hit_is_fast_and_identical(fresh_cache):
    files = sorted((fresh_cache["root"] / "embedded").rglob("*.npz"))
    assert len(files) == len(embedded.UNITS)
    embedded.clear_memory_cache()
    start = time.perf_counter()
    warm = embedded_clips("all", progress=False)
    warm_s = time.perf_counter() - start
    assert warm_s < fresh_cache["cold_s"]
    assert [c.name for c in warm] == [c.name for c in fresh_cache["clips"]]
    assert all(torch.equal(a.hr, b.hr) for a, b in zip(warm, fresh_cache["clips"]))


def test_corrupted_or_outdated_cache_file_is_rebuilt(fresh_cache):
    unit = next(u for u in embedded.UNITS if u.name == "photo-rocket")
    path = embedded._cache_file(unit)
    reference = [c for c in fresh_cache["clips"] if c.source == "photo-rocket"]
    path.write_bytes(path.read_bytes()[:1000])                    # truncated, like an interrupted copy
    embedded.clear_memory_cache()
    with pytest.warns(UserWarning, match="unreadable"):
        rebuilt = [c for c in embedded_clips("train", progress=False) if c.source == "photo-rocket"]
    assert all(torch.equal(a.hr, b.hr) for a, b in zip(rebuilt, reference))
    embedded.clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")                             # the rewritten file is clean now
        embedded_clips("train", progress=False)
    # a file from another recipe is rebuilt, not trusted
    embedded._write_cache(path, embedded._Unit(unit.name, unit.kind, unit.origin, "old-recipe"),
                          {"photo-rocket/x": torch.zeros(1, 4, 4, 3, dtype=torch.uint8).numpy()})
    embedded.clear_memory_cache()
    with pytest.warns(UserWarning, match="another recipe"):
        again = [c for c in embedded_clips("all", progress=False) if c.source == "photo-rocket"]
    assert [c.name for c in again] == [c.name for c in reference]
    assert not list(path.parent.glob(".*.tmp"))                    # atomic writes leave no temp files


def test_pristine_frames_follow_the_split(fresh_cache):
    frames = pristine_frames("train", max_frames=40)
    assert frames.ndim == 4 and frames.shape[:2] == (40, 3) and frames.dtype == torch.float32
    assert frames.shape[-2] % 4 == 0 and frames.shape[-1] % 4 == 0
    test_all = pristine_frames("test")
    assert test_all.shape[0] == sum(c.num_frames for c in embedded_clips("test"))
    per_clip = [c.hr for c in embedded_clips("train")]
    h, w = frames.shape[-2:]
    top, left = (per_clip[0].shape[-2] - h) // 2, (per_clip[0].shape[-1] - w) // 2
    assert torch.equal(frames[0], per_clip[0][0, :, top:top + h, left:left + w])   # a centre crop, first frame
    # evenly spread: the first and last pristine frames come from different sources
    assert not torch.equal(frames[0], frames[-1])
    with pytest.raises(ValueError, match="split"):
        pristine_frames("validation")
    with pytest.raises(ValueError, match="max_frames"):
        pristine_frames("train", max_frames=0)
