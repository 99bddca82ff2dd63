"""Reading frames from disk: video files (OpenCV) and image files; uint8 HWC -> float CHW tensors."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

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
