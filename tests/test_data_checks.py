"""``python -m nriqa data`` checks what it reports on: every frame readable and complete, one size per
clip, the dataset's own LR frames as many as HR and LR x scale == HR. Broken folders built with cv2.imwrite."""
from __future__ import annotations

import re
import shutil

import cv2
import numpy as np
import pytest
from doubles import write_frames

from nriqa.data import REDS, Vid4, Vimeo90K
from nriqa.data.checks import frame_size
from nriqa.data.cli import main as data_cli
from nriqa.errors import DatasetError


@pytest.fixture
def vid4(tmp_path):
    """Vid4 with HR frames of 30x42 (mod-cropped to 28x40) and BIx4 LR frames of 7x10, 3 frames per clip."""
    root = tmp_path / "Vid4"
    for i, clip in enumerate(Vid4.CLIPS):
        names = [f"{k:02d}.png" for k in range(3)]
        write_frames(root / "GT" / clip, names, 30, 42 + 4 * (clip == "city"), i)
        write_frames(root / "BIx4" / clip, names, 7, 10 + (clip == "city"), i)
    return root


@pytest.fixture
def reds(tmp_path):
    root = tmp_path / "REDS"
    for i, clip in enumerate(["000", "001", "011", "015", "020"]):
        names = [f"{k:08d}.jpg" for k in range(2)]
        write_frames(root / "train_sharp" / clip, names, 32, 48, i)
        write_frames(root / "train_sharp_bicubic" / "X4" / clip, names, 8, 12, i)
    return root


@pytest.fixture
def vimeo(tmp_path):
    root = tmp_path / "vimeo"
    for i, key in enumerate(["00001/0001", "00001/0002", "00002/0001"]):
        names = [f"im{k}.png" for k in range(1, 8)]
        write_frames(root / "sequences" / key, names, 32, 48, i)
        write_frames(root / "BDx4" / key, names, 8, 12, i)
    (root / "sep_trainlist.txt").write_text("00001/0001\n00001/0002\n")
    (root / "sep_testlist.txt").write_text("00002/0001\n")
    return root


def _cli(capsys, monkeypatch, *argv) -> tuple[int, str]:
    for name in ("VIMEO90K", "REDS", "VID4"):
        monkeypatch.delenv(f"NRIQA_{name}", raising=False)
    rc = data_cli(list(map(str, argv)))
    return rc, capsys.readouterr().out


def test_intact_folders_pass_and_report_what_was_checked(vid4, reds, vimeo, capsys, monkeypatch):
    rc, out = _cli(capsys, monkeypatch, "--vid4", vid4, "--reds", reds, "--vimeo90k", vimeo)
    assert rc == 0, out
    row = next(ln for ln in out.splitlines() if ln.startswith("vid4"))
    assert "test 4" in row and "30x42 (3), 30x46 (1)" in row and "3 frames/clip" in row and "own LR: BIx4 4/4" in row
    row = next(ln for ln in out.splitlines() if ln.startswith("reds"))
    assert "train 1, test 4" in row and "32x48 (5)" in row and "own LR: BIx4 5/5" in row
    row = next(ln for ln in out.splitlines() if ln.startswith("vimeo90k"))
    assert "train 2, test 1" in row and "7 frames/clip" in row and "own LR: BDx4 3/3" in row
    assert Vid4(vid4).check(decode=True)["frames"] == 12


@pytest.mark.parametrize("fault, expected", [
    ("lr-size", (r"LR frame {root}/BIx4/walk/00.png is 9x7 but HR frame {root}/GT/walk/00.png is 42x30: LR x 4 must "
                r"equal the HR size \(mod-cropped to 40x28\), so LR frames should be 10x7")),
    ("garbage", r"frame {root}/GT/foliage/01.png is not a readable image: its content is not a PNG image"),
    ("truncated", r"frame {root}/GT/foliage/02.png is not a readable image: truncated PNG \(no IEND chunk"),
    ("empty", r"frame {root}/BIx4/calendar/01.png is not a readable image: the file is empty"),
    ("mixed", (r"HR frame {root}/GT/city/02.png is 40x30 but 00.png of the same clip is 46x30; the frames of one "
              r"clip must share a size")),
    ("mixed-lr", r"LR frame {root}/BIx4/walk/01.png is 10x8 but 00.png of the same clip is 10x7"),
    ("count", r"HR frames without an LR frame of the same number: 02.png \(in {root}/GT/calendar\)"),
    ("missing-clip", r"vid4: expected {root}/GT/foliage but it does not exist"),
])
def test_a_broken_vid4_folder_fails_naming_the_first_bad_file(vid4, capsys, monkeypatch, fault, expected):
    rng = np.random.default_rng(0)
    if fault == "lr-size":
        cv2.imwrite(str(vid4 / "BIx4/walk/00.png"), rng.integers(0, 256, (7, 9, 3), dtype=np.uint8))
        for k in ("01", "02"):                                   # the whole clip: a consistent but wrong LR size
            cv2.imwrite(str(vid4 / f"BIx4/walk/{k}.png"), rng.integers(0, 256, (7, 9, 3), dtype=np.uint8))
    elif fault == "garbage":
        (vid4 / "GT/foliage/01.png").write_bytes(b"this is not an image at all")
    elif fault == "truncated":
        f = vid4 / "GT/foliage/02.png"
        f.write_bytes(f.read_bytes()[:-40])
    elif fault == "empty":
        (vid4 / "BIx4/calendar/01.png").write_bytes(b"")
    elif fault == "mixed":
        cv2.imwrite(str(vid4 / "GT/city/02.png"), rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    elif fault == "mixed-lr":
        cv2.imwrite(str(vid4 / "BIx4/walk/01.png"), rng.integers(0, 256, (8, 10, 3), dtype=np.uint8))
    elif fault == "count":
        (vid4 / "BIx4/calendar/02.png").unlink()
    elif fault == "missing-clip":
        shutil.rmtree(vid4 / "GT/foliage")
    rc, out = _cli(capsys, monkeypatch, "--vid4", vid4)
    assert rc == 1
    row = next(ln for ln in out.splitlines() if ln.startswith("vid4"))
    assert "!" in row
    assert re.search(expected.format(root=re.escape(str(vid4))), out), out
    with pytest.raises((DatasetError, FileNotFoundError)):
        Vid4(vid4).check()


def test_broken_reds_and_vimeo_folders(reds, vimeo, capsys, monkeypatch):
    jpg = reds / "train_sharp/015/00000001.jpg"
    jpg.write_bytes(jpg.read_bytes()[: len(jpg.read_bytes()) // 3])               # a truncated JPEG
    rc, out = _cli(capsys, monkeypatch, "--reds", reds)
    assert rc == 1 and f"frame {jpg} is not a readable image: truncated JPEG" in out
    lr = vimeo / "BDx4/00002/0001/im4.png"
    cv2.imwrite(str(lr), np.zeros((9, 12, 3), np.uint8))                          # one LR frame of the wrong size
    rc, out = _cli(capsys, monkeypatch, "--vimeo90k", vimeo)
    assert rc == 1 and f"LR frame {lr} is 12x9 but im1.png of the same clip is 12x8" in out


def test_frame_size_reads_headers_and_decodes_on_request(tmp_path):
    for suffix in (".png", ".jpg", ".bmp", ".tif"):
        f = tmp_path / f"a{suffix}"
        cv2.imwrite(str(f), np.full((13, 21, 3), 128, np.uint8))
        assert frame_size(f) == frame_size(f, decode=True) == (21, 13), suffix
    gray = tmp_path / "g.png"
    cv2.imwrite(str(gray), np.zeros((5, 6), np.uint8))
    assert frame_size(gray, decode=True) == (6, 5)
    broken = tmp_path / "b.tif"
    broken.write_bytes(b"II*\x00garbage")
    with pytest.raises(DatasetError, match=r"b\.tif is not a readable image: OpenCV cannot decode it"):
        frame_size(broken)


def test_lr_frames_counted_at_load_are_dataset_errors(vid4):
    (vid4 / "BIx4/city/02.png").unlink()
    with pytest.raises(DatasetError, match=r"HR frames without an LR frame of the same number: 02.png .*GT/city"):
        Vid4(vid4).load_clip("city")
    with pytest.raises(FileNotFoundError, match="the dataset folder .*nowhere does not exist; point data.root"):
        REDS(vid4.parent / "nowhere")
    with pytest.raises(FileNotFoundError, match="sep_trainlist.txt"):
        Vimeo90K(vid4)
