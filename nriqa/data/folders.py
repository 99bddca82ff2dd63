"""Folder datasets in their usual on-disk layouts: Vimeo-90K septuplets, REDS, Vid4; single video files.

Each dataset checks its layout when constructed and fails fast, naming the missing path and printing
the expected layout; :meth:`FolderDataset.check` checks every frame file (``python -m nriqa data``).
``clips(split)`` loads frames into memory as :class:`~nriqa.data.clip.Clip`
objects; ``clips(split, lazy=True)`` returns :class:`~nriqa.data.clip.LazyClip` objects that stay on
disk until a sampler reads a window (what ``build_train_sampler`` uses for folder datasets). HR frames are
cropped at the bottom/right to multiples of ``scale`` ("mod-crop"); a dataset's own LR frames are
attached when the folder for the requested degradation exists and must be exactly ``HR / scale``.

========  ==================================================  ====================================
dataset   HR                                                  LR (optional)
========  ==================================================  ====================================
vimeo90k  ``sequences/<a>/<b>/im1.png .. im7.png``             ``BIx4/<a>/<b>/im*.png``, ``BDx4/...``
          splits from ``sep_trainlist.txt`` / ``sep_testlist.txt`` (lines ``00001/0001``);
          evaluation scores the centre frame only (``eval_frames = [3]``)
reds      ``train_sharp/<clip>/<frame>.png``                   ``train_sharp_bicubic/X4/<clip>/...`` (BI)
          test = REDS4 (clips 000, 011, 015, 020), train = every other clip
vid4      ``GT/<clip>/*.png`` (calendar, city, foliage, walk)  ``BIx4/<clip>/``, ``BDx4/<clip>/``
          test only
========  ==================================================  ====================================
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from nriqa.data.checks import check_dataset
from nriqa.data.clip import Clip, LazyClip
from nriqa.data.embedded import _area_resize
from nriqa.data.frames_io import list_frames, numbered_frames, pair_frames, read_image, read_video, to_tensor
from nriqa.data.sampler import _check_degradation, test_clips
from nriqa.progress import progress_bar


def _mod_crop(frames, scale: int):
    h, w = frames.shape[1:3]
    return frames[:, : h - h % scale, : w - w % scale]


class LayoutError(FileNotFoundError):
    """A dataset folder does not have the expected layout."""


class FolderDataset:
    """Common machinery: layout check, clip listing, eager loading, test dicts."""

    name = "folder"
    splits: tuple[str, ...] = ("train", "test")
    layout = ""

    def __init__(self, root: str | Path, *, scale: int = 4) -> None:
        self.root = Path(root).expanduser()
        self.scale = int(scale)
        if not self.root.is_dir():
            self._layout_error(self.root)
        self._check_layout()

    # -- to override -----------------------------------------------------------------------
    def _check_layout(self) -> None:
        raise NotImplementedError

    def clip_names(self, split: str = "train") -> list[str]:
        raise NotImplementedError

    def hr_dir(self, clip: str) -> Path:
        raise NotImplementedError

    def lr_dir(self, clip: str, degradation: str) -> Path | None:
        """Folder of the dataset's own LR frames for ``degradation`` (``None`` when not shipped)."""
        return None

    eval_frames: tuple[int, ...] | None = None    # frames scored in evaluation (None: all)

    # -- shared ----------------------------------------------------------------------------
    def _layout_error(self, missing: Path) -> None:
        if missing == self.root:
            raise LayoutError(f"{self.name}: the dataset folder {missing} does not exist; point data.root "
                              f"(or --{self.name} DIR, or $NRIQA_{self.name.upper()}) at it.\n"
                              f"Expected layout under it:\n{self.layout}")
        raise LayoutError(f"{self.name}: expected {missing} but it does not exist.\n"
                          f"Expected layout under {self.root}:\n{self.layout}")

    def _require(self, path: Path) -> Path:
        if not path.exists():
            self._layout_error(path)
        return path

    def _check_split(self, split: str) -> None:
        if split not in (*self.splits, "all"):
            raise ValueError(f"{self.name}: split must be one of {(*self.splits, 'all')}, got {split!r}")

    def _frame_files(self, folder: Path) -> list[Path]:
        self._require(folder)
        files = list_frames(folder)
        if not files:
            raise LayoutError(f"{self.name}: no image frames (png/jpg) in {folder}.\nExpected layout:\n{self.layout}")
        return files

    def clip_frames(self, clip: str, degradation: str | None = None) -> tuple[list[Path], list[Path] | None]:
        """``(HR files, LR files or None)`` of one clip, in frame-number order: every file numbered, no
        gap, and the dataset's own LR frames of ``degradation`` (when that folder exists) paired with
        the HR frames by frame number (:func:`~nriqa.data.frames_io.pair_frames`), never by position."""
        hr_folder = self.hr_dir(clip)
        hr_files = list(numbered_frames(self._frame_files(hr_folder), hr_folder).values())
        lr_folder = self.lr_dir(clip, degradation) if degradation else None
        if lr_folder is None or not lr_folder.is_dir():
            return hr_files, None
        return hr_files, pair_frames(hr_files, self._frame_files(lr_folder), hr_folder, lr_folder)

    def lazy_clip(self, clip: str, degradation: str = "BI", max_frames: int | None = None) -> LazyClip:
        """One clip left on disk (file lists checked and paired by frame number, no pixels read)."""
        degradation = _check_degradation(degradation)
        hr_files, lr_files = self.clip_frames(clip, degradation)
        hr_files = hr_files[:max_frames]
        lr_files = None if lr_files is None else lr_files[:max_frames]
        return LazyClip(name=clip, source=self.name, hr_files=hr_files, lr_files=lr_files,
                        degradation=degradation if lr_files is not None else None, scale=self.scale)

    def load_clip(self, clip: str, degradation: str = "BI", max_frames: int | None = None) -> Clip:
        """Read one clip (HR and, when shipped, the LR frames of ``degradation``) into memory."""
        return self.lazy_clip(clip, degradation, max_frames).load()

    def clips(self, split: str = "train", *, degradation: str = "BI", max_clips: int | None = None,
              max_frames: int | None = None, lazy: bool = False, progress: bool = False) -> list:
        """The clips of ``split`` (first ``max_clips`` in name order, first ``max_frames`` frames).

        ``lazy=False``: :class:`Clip` objects in memory; ``lazy=True``: :class:`LazyClip` objects that
        a :class:`~nriqa.data.TrainSampler` reads window by window (for full-size training sets).
        """
        names = self.clip_names(split)[:max_clips]
        if progress and not lazy:
            names = progress_bar(names, desc=f"{self.name} {split}", leave=False)
        make = self.lazy_clip if lazy else self.load_clip
        return [make(n, degradation, max_frames) for n in names]

    def test_set(self, *, degradation: str = "BI", max_frames: int | None = None, max_side: int | None = None,
                 max_clips: int | None = None) -> list[dict]:
        """Evaluation dicts (see :func:`nriqa.data.test_clips`) plus ``"eval_frames"`` for the test split."""
        split = "test" if "test" in self.splits else self.splits[0]
        clips = self.clips(split, degradation=degradation, max_clips=max_clips, max_frames=max_frames)
        items = test_clips(clips, degradation=degradation, scale=self.scale, max_frames=max_frames, max_side=max_side)
        for item in items:
            item["eval_frames"] = None if self.eval_frames is None else list(self.eval_frames)
        return items

    def check(self, *, decode: bool = False, progress: bool = False) -> dict:
        """Check every frame of every clip (readable and complete, one size per clip, the dataset's own LR
        frames: as many as HR and ``LR x scale == HR``) and describe what is there; raises
        :class:`~nriqa.errors.DatasetError` naming the first bad file (see :mod:`nriqa.data.checks`)."""
        return check_dataset(self, decode=decode, progress=progress)

    def describe(self) -> dict:
        """Clip counts per split and the HR resolution of the first clip (reads one frame only)."""
        info: dict = {"dataset": self.name, "root": str(self.root)}
        for split in self.splits:
            info[split] = len(self.clip_names(split))
        first = next((self.clip_names(s)[0] for s in self.splits if self.clip_names(s)), None)
        if first is not None:
            files = self._frame_files(self.hr_dir(first))
            h, w = read_image(files[0]).shape[:2]
            info["hr_size"] = f"{h}x{w}"
            info["frames_per_clip"] = len(files)
        return info


class Vimeo90K(FolderDataset):
    """Vimeo-90K septuplets; clips are ``"<a>/<b>"`` keys from the meta-info lists."""

    name = "vimeo90k"
    eval_frames = (3,)
    layout = ("  sequences/00001/0001/im1.png ... im7.png   (HR septuplets)\n"
              "  BIx4/00001/0001/im1.png ...                (optional LR, MATLAB bicubic x4)\n"
              "  BDx4/00001/0001/im1.png ...                (optional LR, Gaussian blur + x4)\n"
              "  sep_trainlist.txt, sep_testlist.txt        (one '00001/0001' per line)")
    LISTS: ClassVar[dict[str, str]] = {"train": "sep_trainlist.txt", "test": "sep_testlist.txt"}

    def _check_layout(self) -> None:
        self._require(self.root / "sequences")
        for f in self.LISTS.values():
            self._require(self.root / f)

    def clip_names(self, split: str = "train") -> list[str]:
        self._check_split(split)
        files = self.LISTS.values() if split == "all" else [self.LISTS[split]]
        names: list[str] = []
        for f in files:
            names += [ln.strip() for ln in (self.root / f).read_text().splitlines() if ln.strip()]
        return names

    def hr_dir(self, clip: str) -> Path:
        return self.root / "sequences" / clip

    def lr_dir(self, clip: str, degradation: str) -> Path | None:
        return self.root / f"{degradation}x{self.scale}" / clip


class REDS(FolderDataset):
    """REDS: ``train_sharp`` clips; REDS4 (000, 011, 015, 020) is the test split."""

    name = "reds"
    REDS4 = ("000", "011", "015", "020")
    layout = ("  train_sharp/000/00000000.png ... 00000099.png   (HR, 1280x720)\n"
              "  train_sharp_bicubic/X4/000/00000000.png ...     (optional LR, bicubic x4)")

    def _check_layout(self) -> None:
        self._require(self.root / "train_sharp")

    def clip_names(self, split: str = "train") -> list[str]:
        self._check_split(split)
        names = sorted(p.name for p in (self.root / "train_sharp").iterdir() if p.is_dir())
        if split == "all":
            return names
        if split == "test":
            missing = [c for c in self.REDS4 if c not in names]
            if missing:
                self._layout_error(self.root / "train_sharp" / missing[0])
            return list(self.REDS4)
        return [n for n in names if n not in self.REDS4]

    def hr_dir(self, clip: str) -> Path:
        return self.root / "train_sharp" / clip

    def lr_dir(self, clip: str, degradation: str) -> Path | None:
        if degradation != "BI":
            return None
        return self.root / "train_sharp_bicubic" / f"X{self.scale}" / clip


class Vid4(FolderDataset):
    """Vid4 (calendar, city, foliage, walk): a test set only."""

    name = "vid4"
    splits = ("test",)
    CLIPS = ("calendar", "city", "foliage", "walk")
    layout = ("  GT/calendar/*.png, GT/city, GT/foliage, GT/walk   (HR)\n"
              "  BIx4/<clip>/*.png                                  (optional LR, MATLAB bicubic x4)\n"
              "  BDx4/<clip>/*.png                                  (optional LR, Gaussian blur + x4)")

    def _check_layout(self) -> None:
        for c in self.CLIPS:
            self._require(self.root / "GT" / c)

    def clip_names(self, split: str = "test") -> list[str]:
        self._check_split(split)
        return list(self.CLIPS)

    def hr_dir(self, clip: str) -> Path:
        return self.root / "GT" / clip

    def lr_dir(self, clip: str, degradation: str) -> Path | None:
        return self.root / f"{degradation}x{self.scale}" / clip


DATASETS = {"vimeo90k": Vimeo90K, "reds": REDS, "vid4": Vid4}


def open_dataset(source: str, root: str | Path, *, scale: int = 4) -> FolderDataset:
    """``open_dataset("reds", "/data/REDS")`` -> the folder dataset (layout checked)."""
    key = str(source).lower().replace("-", "").replace("_", "")
    if key not in DATASETS:
        raise ValueError(f"unknown folder dataset {source!r}; known: {sorted(DATASETS)}")
    return DATASETS[key](root, scale=scale)


def video_clip(path: str | Path, *, name: str | None = None, max_frames: int | None = None,
               max_side: int | None = None, scale: int = 4) -> Clip:
    """A clip from any video file OpenCV decodes; area-downscaled to ``max_side`` (HR px), mod-cropped."""
    frames = read_video(path, max_frames)
    h, w = frames.shape[1:3]
    if max_side is not None and max(h, w) > max_side:
        f = max_side / max(h, w)
        frames = _area_resize(frames, round(h * f), round(w * f))
    frames = np.ascontiguousarray(_mod_crop(frames, scale))
    if min(frames.shape[1:3]) < scale:
        raise ValueError(f"video {path} is too small ({h}x{w}) for scale {scale}")
    return Clip(name=name or Path(path).stem, source="video", hr=to_tensor(frames))


__all__ = ["DATASETS", "REDS", "FolderDataset", "LayoutError", "LazyClip", "Vid4", "Vimeo90K", "open_dataset",
           "video_clip"]
