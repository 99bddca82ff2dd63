"""Reading frames from disk: video files (OpenCV) and image files; uint8 HWC -> float CHW tensors."""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from nriqa.errors import DatasetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_video(path: str | Path, max_frames: int | None = None) -> np.ndarray:
    """Decode a video file to ``(T, H, W, 3)`` uint8 RGB. Raises naming the file when it is not a video."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file {path} does not exist")
    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    try:
        while cap.isOpened() and (max_frames is None or len(frames) < max_frames):
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"{path} could not be decoded as a video (OpenCV read no frames)")
    return np.stack(frames)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB; raises naming the file when it is unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"frame {path} does not exist")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"frame {path} is not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def list_frames(folder: str | Path) -> list[Path]:
    """Image files of a frame folder, sorted by name (numeric names sort numerically)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]

    def key(p: Path):
        digits = "".join(ch for ch in p.stem if ch.isdigit())
        return (int(digits) if digits else -1, p.name)

    return sorted(files, key=key)


def frame_number(path: Path) -> int | None:
    """The frame index in a file name: its last run of digits (``00000003.png`` -> 3, ``im7.png`` -> 7,
    ``frame_0012_x4.png`` -> 4: the *last* number), None without digits."""
    runs = re.findall(r"\d+", Path(path).stem)
    return int(runs[-1]) if runs else None


def _short(files: list[Path], limit: int = 6) -> str:
    names = [p.name for p in files]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def numbered_frames(files: list[Path], folder: Path) -> dict[int, Path]:
    """``{frame number: file}`` of one clip's frame files, checked: every name carries a number, no
    number twice, no number missing between the first and the last (a gap). A ``DatasetError`` names
    the folder and the files (or the missing numbers) otherwise."""
    unnumbered = [p for p in files if frame_number(p) is None]
    if unnumbered:
        raise DatasetError(f"{folder}: frame files without a frame number in their name: {_short(unnumbered)}; "
                           "frames are paired and ordered by that number")
    by_number: dict[int, Path] = {}
    for p in files:
        n = frame_number(p)
        if n in by_number:
            raise DatasetError(f"{folder}: frames {by_number[n].name} and {p.name} both carry frame number {n}")
        by_number[n] = p
    numbers = sorted(by_number)
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers)) if numbers else []
    if missing:
        shown = ", ".join(map(str, missing[:8])) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise DatasetError(f"{folder}: frame number(s) {shown} missing between {by_number[numbers[0]].name} and "
                           f"{by_number[numbers[-1]].name}; a clip must be complete")
    return dict(sorted(by_number.items()))


def pair_frames(hr_files: list[Path], lr_files: list[Path], hr_folder: Path, lr_folder: Path) -> list[Path]:
    """The LR files in the order of ``hr_files``, paired by frame number (never by position): both
    folders checked by :func:`numbered_frames`, and the same numbers in both, else a ``DatasetError``
    naming the frames that have no partner."""
    hr, lr = numbered_frames(hr_files, hr_folder), numbered_frames(lr_files, lr_folder)
    only_hr = [hr[n] for n in hr if n not in lr]
    only_lr = [lr[n] for n in lr if n not in hr]
    if only_hr or only_lr:
        parts = ([f"HR frames without an LR frame of the same number: {_short(only_hr)} (in {hr_folder})"]
                 if only_hr else []) + ([f"LR frames without an HR frame: {_short(only_lr)} (in {lr_folder})"]
                                        if only_lr else [])
        raise DatasetError("; ".join(parts) + "; HR and LR frames are paired by the number in their names")
    return [lr[frame_number(p)] for p in hr_files]


def read_frames(files: list[Path]) -> np.ndarray:
    """Read a list of image files into ``(T, H, W, 3)`` uint8; all frames must share one size."""
    frames = [read_image(f) for f in files]
    first = frames[0].shape
    for f, arr in zip(files, frames):
        if arr.shape != first:
            raise ValueError(f"frame {f} is {arr.shape[1]}x{arr.shape[0]} but {files[0]} is "
                             f"{first[1]}x{first[0]}; frames of one clip must share a size")
    return np.stack(frames)


def to_tensor(frames: np.ndarray) -> Tensor:
    """``(T, H, W, 3)`` uint8 -> ``(T, 3, H, W)`` float32 in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
