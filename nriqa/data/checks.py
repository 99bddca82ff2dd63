"""Checking a folder dataset file by file, before anything trains on it (``python -m nriqa data``).

:func:`frame_size` reads an image's size from its header (PNG, JPEG, BMP; other formats are decoded)
and checks that the file is complete (a PNG ends with its ``IEND`` chunk, a JPEG with its end
marker), so that a whole dataset is checked in seconds to minutes without decoding every pixel;
``decode=True`` decodes every frame as well. :func:`check_dataset` walks every clip of every split:

- every frame is a readable, complete image whose name carries its frame number, with no number
  missing or repeated in a clip;
- the frames of a clip share one size;
- the dataset's own LR frames (each degradation folder that exists) carry the HR frames' numbers
  (paired by number, never by position), share one size, and ``LR x scale`` equals the HR size
  (mod-cropped to a multiple of ``scale``).

The first problem raises :class:`~nriqa.errors.DatasetError` naming the file and what was expected.
Sizes in messages are width x height.
"""
from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from nriqa.errors import DatasetError

if TYPE_CHECKING:
    from nriqa.data.folders import FolderDataset

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# JPEG start-of-frame markers (they carry the size); C4, C8 and CC are other segments
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _bad(path: Path, why: str) -> DatasetError:
    return DatasetError(f"frame {path} is not a readable image: {why}")


def _png_size(path: Path, head: bytes, size: int) -> tuple[int, int]:
    if len(head) < 24 or head[12:16] != b"IHDR":
        raise _bad(path, "PNG without an IHDR header")
    w, h = struct.unpack(">II", head[16:24])
    with open(path, "rb") as fh:
        fh.seek(max(0, size - len(PNG_END)))
        if fh.read() != PNG_END:
            raise _bad(path, "truncated PNG (no IEND chunk at the end)")
    return w, h


def _jpeg_size(path: Path, size: int) -> tuple[int, int]:
    with open(path, "rb") as fh:
        data = fh.read()
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise _bad(path, f"JPEG segment expected at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _SOF:
            if i + 9 > len(data):
                break
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            if b"\xff\xd9" not in data[-1024:]:
                raise _bad(path, "truncated JPEG (no end-of-image marker)")
            return w, h
        i += 2 + length
    raise _bad(path, "truncated JPEG (no frame header)")


def _bmp_size(path: Path, head: bytes, size: int) -> tuple[int, int]:
    if len(head) < 26:
        raise _bad(path, "truncated BMP header")
    (declared,) = struct.unpack("<I", head[2:6])
    w, h = struct.unpack("<ii", head[18:26])
    if size < declared:
        raise _bad(path, f"truncated BMP ({size} of {declared} bytes)")
    return abs(w), abs(h)


def _decoded_size(path: Path) -> tuple[int, int]:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise _bad(path, "OpenCV cannot decode it")
    return img.shape[1], img.shape[0]


def frame_size(path: str | Path, *, decode: bool = False) -> tuple[int, int]:
    """``(width, height)`` of an image file from its header, after checking the file is a complete image
    (``decode=True``: decoded in full as well). :class:`DatasetError` naming the file otherwise."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(32)
    except OSError as err:
        raise _bad(path, err.strerror or str(err)) from None
    if size == 0:
        raise _bad(path, "the file is empty")
    if head.startswith(PNG_SIGNATURE):
        wh = _png_size(path, head, size)
    elif head.startswith(b"\xff\xd8"):
        wh = _jpeg_size(path, size)
    elif head.startswith(b"BM"):
        wh = _bmp_size(path, head, size)
    elif path.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp"}:
        raise _bad(path, f"its content is not a {path.suffix.lower().lstrip('.').upper()} image")
    else:
        return _decoded_size(path)
    if decode and _decoded_size(path) != wh:
        raise _bad(path, "the decoded size differs from the header's")
    return wh


def _fmt(wh: tuple[int, int]) -> str:
    return f"{wh[0]}x{wh[1]}"


def _one_size(files: list[Path], decode: bool, what: str) -> tuple[int, int]:
    """The size every file of ``files`` shares (DatasetError naming the first that differs)."""
    first = frame_size(files[0], decode=decode)
    for f in files[1:]:
        wh = frame_size(f, decode=decode)
        if wh != first:
            raise DatasetError(f"{what} frame {f} is {_fmt(wh)} but {files[0].name} of the same clip is "
                               f"{_fmt(first)}; the frames of one clip must share a size")
    return first


def check_clip(ds: "FolderDataset", clip: str, *, decode: bool = False) -> dict:
    """Check one clip: ``{"hr_size": (w, h), "frames": n, "lr": [degradations with their own LR frames]}``."""
    s = ds.scale
    hr_files, _ = ds.clip_frames(clip)   # numbered, no gap
    w, h = _one_size(hr_files, decode, "HR")
    if w < s or h < s:
        raise DatasetError(f"HR frame {hr_files[0]} is {_fmt((w, h))}: too small for scale {s}")
    want = (w // s, h // s)  # HR mod-cropped to a multiple of scale, divided by scale
    lr_kinds = []
    for degradation in ("BI", "BD"):
        folder = ds.lr_dir(clip, degradation)
        if folder is None or not folder.is_dir():
            continue
        _, lr_files = ds.clip_frames(clip, degradation)   # paired with the HR frames by frame number
        lw, lh = _one_size(lr_files, decode, "LR")
        if (lw, lh) != want:
            raise DatasetError(
                f"LR frame {lr_files[0]} is {_fmt((lw, lh))} but HR frame {hr_files[0]} is {_fmt((w, h))}: "
                f"LR x {s} must equal the HR size (mod-cropped to {_fmt((want[0] * s, want[1] * s))}), "
                f"so LR frames should be {_fmt(want)}")
        lr_kinds.append(degradation)
    return {"hr_size": (w, h), "frames": len(hr_files), "lr": lr_kinds}


def check_dataset(ds: "FolderDataset", *, decode: bool = False, progress: bool = False) -> dict:
    """Check every clip of every split of ``ds`` (see the module doc); returns what was found: clip counts
    per split, ``hr_sizes`` (``"HxW" -> clips``), ``frames`` (total), ``frames_per_clip`` (``"n"`` or
    ``"lo-hi"``) and ``lr`` (``degradation -> clips with the dataset's own LR frames``)."""
    info: dict = {"dataset": ds.name, "root": str(ds.root)}
    names: list[str] = []
    for split in ds.splits:
        split_names = ds.clip_names(split)
        info[split] = len(split_names)
        names += [n for n in split_names if n not in names]
    if progress:
        from nriqa.progress import progress_bar

        names = progress_bar(names, desc=f"checking {ds.name}", leave=False)
    sizes, lr, counts = Counter(), Counter(), []
    for clip in names:
        found = check_clip(ds, clip, decode=decode)
        sizes["{1}x{0}".format(*found["hr_size"])] += 1  # HxW, as the embedded rows of `nriqa data`
        lr.update(found["lr"])
        counts.append(found["frames"])
    info["hr_sizes"] = dict(sizes)
    info["frames"] = sum(counts)
    lo, hi = (min(counts), max(counts)) if counts else (0, 0)
    info["frames_per_clip"] = str(lo) if lo == hi else f"{lo}-{hi}"
    info["lr"] = dict(lr)
    return info
