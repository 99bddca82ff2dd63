"""IQA datasets: the embedded distortion set and loaders for published IQA databases.

Every dataset is an :class:`IQASet`: images (in memory or as file paths), one score per
image, the *source* (reference content) of each image, and the distortion kind/level when
known. ``label`` says honestly what the scores are:

- ``"pseudo"`` (the embedded set): a *pseudo-score* computed from full-reference measures
  against the pristine source (see :func:`pseudo_score`), plus the ranking of distortion
  levels within (source, kind), which is known for certain. These are **not opinion scores**.
- ``"mos"`` / ``"dmos"``: (differential) mean opinion scores from a subjective study, as
  published. ``higher_better`` says the direction (DMOS: lower is better).

Content splits: the embedded set uses the embedded clips' train/test split of pristine
frames (:func:`nriqa.data.pristine_frames`), so no source frame is in both. Published sets
are split by reference content with a fixed hash (about 20 % of sources go to ``test``).

Halves: the embedded training part is further split into two disjoint halves (:data:`HALVES`,
:func:`embedded_half_set`), by content source *and* by distortion kind, so that a kit model used as a
loss term (half ``a``) and a kit model used as its judge (half ``b``) share no training image, no
source and no distortion kind.
"""
from __future__ import annotations

import hashlib
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import pandas as pd
import torch
from scipy.io import loadmat
from scipy.ndimage import convolve, uniform_filter
from skimage.metrics import structural_similarity

from nriqa.data.distortions import DISTORTIONS, LEVELS, distort
from nriqa.data.embedded import embedded_clips, pristine_frames
from nriqa.errors import brief_error
from nriqa.paths import atomic_path, cache_dir, load_torch_file
from nriqa.progress import progress_bar

SPLITS = ("train", "test", "all")
EMBEDDED_VERSION = 1


@dataclass
class IQASet:
    """An IQA dataset. ``images`` is a uint8 tensor (N, 3, H, W) or a list of N file paths.

    ``scores`` (N,) float; ``sources`` (N,) reference-content ids; ``kinds`` (N,) distortion
    kind ("pristine" for level 0, "unknown" when not published); ``levels`` (N,) int
    (0 = pristine, -1 = unknown). ``label`` is "pseudo", "mos" or "dmos". ``refs``: the pristine
    reference file of each image (published full-reference sets), or None.
    """

    name: str
    images: torch.Tensor | list[Path]
    scores: np.ndarray
    sources: list[str]
    kinds: list[str]
    levels: np.ndarray
    label: str
    higher_better: bool = True
    meta: dict = field(default_factory=dict)
    refs: list[Path] | None = None

    def __len__(self) -> int:
        return len(self.scores)

    def image(self, i: int) -> torch.Tensor:
        """Image ``i`` as a (3, H, W) float32 tensor in [0, 1]."""
        if isinstance(self.images, torch.Tensor):
            return self.images[i].float() / 255.0
        return read_image(self.images[i])

    def subset(self, idx: Sequence[int] | np.ndarray) -> "IQASet":
        idx = np.asarray(idx, dtype=np.int64)
        imgs = self.images[torch.from_numpy(idx)] if isinstance(self.images, torch.Tensor) \
            else [self.images[i] for i in idx]
        return IQASet(self.name, imgs, self.scores[idx], [self.sources[i] for i in idx],
                      [self.kinds[i] for i in idx], self.levels[idx], self.label,
                      self.higher_better, dict(self.meta),
                      None if self.refs is None else [self.refs[i] for i in idx])

    def split(self, split: str) -> "IQASet":
        """Content split by source: ``test`` holds sources whose crc32 % 5 == 0."""
        _check_split(split)
        if split == "all":
            return self
        in_test = np.array([zlib.crc32(s.encode()) % 5 == 0 for s in self.sources])
        return self.subset(np.flatnonzero(in_test if split == "test" else ~in_test))


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def read_image(path: str | Path) -> torch.Tensor:
    """Read an image file as (3, H, W) float32 RGB in [0, 1] (cv2)."""
    arr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if arr is None:
        raise FileNotFoundError(f"could not read image {path}")
    return torch.from_numpy(arr[..., ::-1].copy()).permute(2, 0, 1).float() / 255.0


# --------------------------------------------------------------------------- pseudo-scores

def _luma(x: np.ndarray) -> np.ndarray:
    return 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]


def gmsd(x: np.ndarray, ref: np.ndarray) -> float:
    """Gradient magnitude similarity deviation of (3,H,W) [0,1] images (0 = identical)."""
    a = uniform_filter(_luma(x), 2)[::2, ::2]
    b = uniform_filter(_luma(ref), 2)[::2, ::2]
    px = np.array([[1, 0, -1]] * 3, dtype=np.float64) / 3.0
    mag = [np.sqrt(convolve(im, px, mode="nearest") ** 2 + convolve(im, px.T, mode="nearest") ** 2)
           for im in (a, b)]
    c = 170.0 / 255.0 ** 2
    gms = (2 * mag[0] * mag[1] + c) / (mag[0] ** 2 + mag[1] ** 2 + c)
    return float(gms.std())


PSEUDO_TERMS = ("psnr", "ssim", "gmsd")


def pseudo_terms(x: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """The three terms of :func:`pseudo_score`, each in [0, 1] (higher = closer to ``ref``)."""
    a = x.double().numpy()
    b = ref.double().numpy()
    mse = float(((a - b) ** 2).mean())
    psnr = 60.0 if mse == 0 else 10 * np.log10(1.0 / mse)
    ssim = structural_similarity(_luma(a), _luma(b), data_range=1.0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)
    return {"psnr": float(np.clip((psnr - 15) / 35, 0, 1)), "ssim": float(np.clip(ssim, 0, 1)),
            "gmsd": float(1 - np.clip(gmsd(a, b) / 0.35, 0, 1))}


def pseudo_score(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Pseudo quality score in [0, 1] (1 = identical to the pristine source). Not an opinion score.

    Mean of three full-reference terms (:func:`pseudo_terms`), each mapped to [0, 1] with fixed
    constants: ``clip((PSNR - 15) / 35, 0, 1)``, ``clip(SSIM, 0, 1)`` (on luma, skimage) and
    ``1 - clip(GMSD / 0.35, 0, 1)``.
    """
    return float(np.mean(list(pseudo_terms(x, ref).values())))


# --------------------------------------------------------------------------- embedded set

def _pristine_sources(split: str, max_sources: int | None) -> torch.Tensor:
    """Clean HR frames (N, 3, H, W) of the embedded clips' ``split`` (content-disjoint splits)."""
    frames = pristine_frames(split, max_frames=max_sources)
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4 or frames.shape[1] != 3:
        raise RuntimeError(f"nriqa.data.pristine_frames({split!r}) must return (N, 3, H, W), got {type(frames)}")
    return frames[:max_sources] if max_sources else frames


def _centre_crop(img: torch.Tensor, size: int) -> torch.Tensor:
    h, w = img.shape[-2:]
    if min(h, w) < size:
        img = torch.nn.functional.interpolate(img[None], scale_factor=size / min(h, w), mode="bicubic",
                                              align_corners=False, antialias=True)[0].clamp(0, 1)
        h, w = img.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return img[:, top:top + size, left:left + size]


def build_distortion_set(pristine: torch.Tensor, *, name: str = "embedded", crop: int = 96,
                         kinds: Sequence[str] | None = None, progress: bool = False) -> IQASet:
    """KADID-style set from pristine images (N, 3, H, W) in [0, 1]: each centre crop (``crop`` px)
    plus every kind at levels 1..5. Labels: :func:`pseudo_score` and the level order."""
    kinds = list(kinds or DISTORTIONS)
    unknown = [k for k in kinds if k not in DISTORTIONS]
    if unknown:
        raise ValueError(f"unknown distortion kinds {unknown}; choose from {DISTORTIONS}")
    if pristine.ndim != 4 or pristine.shape[1] != 3 or len(pristine) == 0:
        raise ValueError(f"pristine must be a non-empty (N, 3, H, W) tensor, got {tuple(pristine.shape)}")

    images, scores, sources, kind_list, levels = [], [], [], [], []
    for s in progress_bar(range(len(pristine)), desc=f"distortion set {name}", disable=not progress):
        ref = _centre_crop(pristine[s].float().clamp(0, 1), crop)
        # quantise first so the stored uint8 pristine is exactly the reference
        ref = (ref * 255 + 0.5).floor() / 255
        entries = [("pristine", 0, ref)] + [(k, lv, distort(ref, k, lv)) for k in kinds for lv in LEVELS]
        for kind, lv, img in entries:
            img = (img * 255 + 0.5).floor() / 255
            images.append((img * 255).round().to(torch.uint8))
            scores.append(pseudo_score(img, ref))
            sources.append(f"{name}-{s:04d}")
            kind_list.append(kind)
            levels.append(lv)
    return IQASet(name, torch.stack(images), np.asarray(scores, np.float64), sources, kind_list,
                  np.asarray(levels, np.int64), label="pseudo", higher_better=True,
                  meta={"crop": crop, "kinds": kinds, "version": EMBEDDED_VERSION})



def _read_set_cache(path: Path, crop: int) -> IQASet | None:
    """The cached set at ``path``, or None (with a warning naming the file) when it cannot be read back:
    truncated or garbage bytes, a pickle of something else, missing keys or inconsistent lengths."""
    try:
        d = load_torch_file(path)
        if not isinstance(d, dict):
            raise ValueError(f"holds a {type(d).__name__}, not the dict of an IQASet")
        ds = IQASet(**d)
        imgs, n = ds.images, len(ds.scores)
        if not (isinstance(imgs, torch.Tensor) and imgs.dtype == torch.uint8 and imgs.ndim == 4
                and tuple(imgs.shape[1:]) == (3, crop, crop)):
            raise ValueError(f"images must be uint8 (N, 3, {crop}, {crop}), got "
                             f"{getattr(imgs, 'dtype', type(imgs).__name__)} {tuple(getattr(imgs, 'shape', ()))}")
        lengths = {len(imgs), n, len(ds.sources), len(ds.kinds), len(ds.levels)}
        if len(lengths) != 1 or n == 0 or not np.isfinite(np.asarray(ds.scores, dtype=np.float64)).all():
            raise ValueError("images, scores, sources, kinds and levels differ in length, are empty or "
                             "hold non-finite scores")
        return ds
    except Exception as err:  # torch.load raises RuntimeError, UnpicklingError, EOFError, ...; IQASet TypeError
        warnings.warn(f"IQA set cache {path} is unreadable ({brief_error(err)}); rebuilding it "
                      "and replacing the file", stacklevel=3)
        return None


def embedded_distortion_set(split: str = "train", *, crop: int = 96, max_sources: int | None = None,
                            progress: bool = True) -> IQASet:
    """The embedded distortion set for ``split`` ("train" | "test" | "all"), cached.

    Sources are ``nriqa.data.pristine_frames(split)`` (the embedded clips' content split),
    ``max_sources`` caps their number. Built once and cached atomically under
    ``cache_dir()/iqa/``; the cache key includes a hash of the pristine pixels. A cached file that
    cannot be read back (truncated, garbage, wrong keys) is rebuilt, with a warning naming it.
    """
    _check_split(split)
    if split == "all":
        tr, te = (embedded_distortion_set(s, crop=crop, max_sources=max_sources, progress=progress)
                  for s in ("train", "test"))
        return IQASet("embedded", torch.cat([tr.images, te.images]), np.concatenate([tr.scores, te.scores]),
                      tr.sources + te.sources, tr.kinds + te.kinds, np.concatenate([tr.levels, te.levels]),
                      "pseudo", True, dict(tr.meta))
    pristine = _pristine_sources(split, max_sources)
    digest = hashlib.sha1((pristine.clamp(0, 1) * 255).round().to(torch.uint8).numpy().tobytes()).hexdigest()[:12]
    path = cache_dir() / "iqa" / f"embedded-{split}-c{crop}-v{EMBEDDED_VERSION}-{digest}.pt"
    if path.exists():
        cached = _read_set_cache(path, crop)
        if cached is not None:
            return cached
    ds = build_distortion_set(pristine, name=f"embedded-{split}", crop=crop, progress=progress)
    with atomic_path(path) as tmp:
        torch.save(ds.__dict__, tmp)
    return ds


# --------------------------------------------------------------------------- halves

#: ``IQASet.meta`` key of an embedded half: pristine frame id (``IQASet.sources``) -> the embedded
#: clip source it was taken from (``bigbuckbunny``, ``bikes-shot2``, ``photo-coffee``, ...)
CONTENT = "content_sources"


def _frame_content(split: str, max_sources: int | None, pristine: torch.Tensor) -> list[str]:
    """The clip source of each of the (N, 3, h, w) ``pristine`` frames of ``_pristine_sources(split,
    max_sources)``: the frames :func:`nriqa.data.pristine_frames` picks (evenly over the split's ordered
    (clip, frame) list, centre-cropped), each checked pixel for pixel against its clip."""
    clips = embedded_clips(split, progress=False)
    index = [(c, t) for c, clip in enumerate(clips) for t in range(clip.num_frames)]
    if max_sources is not None and max_sources < len(index):
        index = [index[i] for i in np.linspace(0, len(index) - 1, max_sources).round().astype(int)]
    h, w = pristine.shape[-2:]
    out = []
    for (c, t), frame in zip(index, pristine):
        H, W = clips[c].size
        top, left = (H - h) // 2, (W - w) // 2
        if not torch.equal(clips[c].hr[t, :, top:top + h, left:left + w], frame):
            raise RuntimeError(f"pristine frame {len(out)} of split {split!r} is not frame {t} of clip "
                               f"{clips[c].name}: nriqa.data.pristine_frames picks frames another way now")
        out.append(clips[c].source)
    if len(out) != len(pristine):
        raise RuntimeError(f"{len(pristine)} pristine frames of split {split!r}, {len(out)} (clip, frame) picks")
    return out


@dataclass(frozen=True)
class Half:
    """One half of the embedded distortion set: the clip ``sources`` whose training frames it holds
    and the distortion ``kinds`` (of :data:`nriqa.data.distortions.DISTORTIONS`) applied to them."""

    name: str
    sources: tuple[str, ...]
    kinds: tuple[str, ...]

    def describe(self) -> str:
        """One line: which sources and kinds."""
        return (f"half {self.name} of the embedded distortion set: training sources {', '.join(self.sources)}; "
                f"kinds {', '.join(self.kinds)} (5 levels each) and the pristine crops")


#: The two disjoint halves of the embedded set's training part: ``a`` trains the kit models used as
#: loss terms, ``b`` the kit models that judge them. Sources: the 8 training sources split 4/4 so that
#: both halves hold video and photo content and about the same number of frames (12 of the demo's 24:
#: Big Buck Bunny with two bikes shots and one photo pan, against two other bikes shots and two photo
#: pans; the bikes shots are separate scenes of one video, so both halves see that camera). Kinds: each
#: half covers blur, noise, colour and compression-like kinds, with different operators (Gaussian vs
#: motion / bicubic blur, white noise and coloured dots vs chroma noise, contrast vs saturation, JPEG
#: vs pixelation). Over-sharpening (ringing halos, which optimising an NR loss tends to produce) is in
#: the judges' half, so judges learn it is worse and no loss term was trained on it. A source missing
#: from both lists (a later training source) goes to the half of its crc32's parity.
HALVES: dict[str, Half] = {
    "a": Half("a", ("bigbuckbunny", "bikes-shot1", "bikes-shot2", "photo-astronaut"),
              ("gaussian_blur", "white_noise", "colored_dots", "jpeg", "contrast")),
    "b": Half("b", ("bikes-shot4", "bikes-shot5", "photo-coffee", "photo-motorcycle"),
              ("motion_blur", "bicubic_downup", "chroma_noise", "saturation", "pixelate", "oversharpen")),
}


def half_of_source(source: str) -> str:
    """``"a"`` or ``"b"``: the half whose training images come from embedded clip source ``source``."""
    for half in HALVES.values():
        if source in half.sources:
            return half.name
    return "ab"[zlib.crc32(source.encode()) % 2]


def _check_half(half: str) -> Half:
    if half not in HALVES:
        raise ValueError(f"embedded half must be one of {sorted(HALVES)}, got {half!r}")
    return HALVES[half]


def embedded_half_set(half: str, split: str = "train", *, crop: int = 96, max_sources: int | None = None,
                      progress: bool = True) -> IQASet:
    """Half ``half`` ("a" | "b", :data:`HALVES`) of :func:`embedded_distortion_set` (same ``crop``,
    ``max_sources``: the halves share its cached images and split its pristine frames between them).

    ``split="train"``: the images of the half's training sources, distorted by the half's kinds only
    (plus their pristine crops). ``split="test"``: the held-out sources (the same for both halves: never
    fitted on, used for held-out metrics) with the half's kinds, so a model is tested on the kinds it
    learnt, on unseen content. Fails when the half holds no frame (``max_sources`` too small)."""
    h = _check_half(half)
    if split not in ("train", "test"):
        raise ValueError(f"split of an embedded half must be 'train' or 'test', got {split!r}")
    ds = embedded_distortion_set(split, crop=crop, max_sources=max_sources, progress=progress)
    content = {f"embedded-{split}-{i:04d}": src for i, src in
               enumerate(_frame_content(split, max_sources, _pristine_sources(split, max_sources)))}
    keep = [i for i, (src, kind) in enumerate(zip(ds.sources, ds.kinds))
            if (kind == "pristine" or kind in h.kinds) and (split == "test" or half_of_source(content[src]) == half)]
    if not any(ds.kinds[i] != "pristine" for i in keep):
        raise ValueError(f"embedded half {half!r} ({split}) holds no distorted image: none of its sources "
                         f"{list(h.sources)} is among the {len(set(ds.sources))} pristine frames (max_sources="
                         f"{max_sources}); raise iqa.max_sources")
    out = ds.subset(keep)
    out.name = f"embedded-{half}-{split}"
    out.meta.update({"half": half, "kinds": list(h.kinds), CONTENT: {s: content[s] for s in set(out.sources)}})
    return out


# --------------------------------------------------------------------------- published sets

def _require(root: Path, rel: str, layout: str) -> Path:
    p = root / rel
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing. Expected layout under {root}:\n{layout}")
    return p


KONIQ_LAYOUT = """  koniq10k_scores_and_distributions.csv   (columns image_name, MOS, ...)
  1024x768/<image_name>                   (the images)"""


def load_koniq10k(root: str | Path) -> IQASet:
    """KonIQ-10k (authentic distortions; MOS 1..5, higher better; each image its own source)."""
    root = Path(root)
    df = pd.read_csv(_require(root, "koniq10k_scores_and_distributions.csv", KONIQ_LAYOUT))
    for col in ("image_name", "MOS"):
        if col not in df:
            raise ValueError(f"koniq10k_scores_and_distributions.csv lacks column {col!r}; has {list(df.columns)}")
    img_dir = _require(root, "1024x768", KONIQ_LAYOUT)
    paths = [img_dir / n for n in df["image_name"]]
    _check_files(paths, KONIQ_LAYOUT)
    n = len(df)
    return IQASet("koniq10k", paths, df["MOS"].to_numpy(float), [str(x) for x in df["image_name"]],
                  ["unknown"] * n, np.full(n, -1), "mos", True)


KADID_LAYOUT = """  dmos.csv            (columns dist_img, ref_img, dmos, var; dmos 1..5, higher better)
  images/<dist_img>   (e.g. images/I01_01_01.png; references images/I01.png)"""


def load_kadid10k(root: str | Path) -> IQASet:
    """KADID-10k (25 synthetic types x 5 levels; the published "dmos" is higher-better 1..5)."""
    root = Path(root)
    df = pd.read_csv(_require(root, "dmos.csv", KADID_LAYOUT))
    for col in ("dist_img", "ref_img", "dmos"):
        if col not in df:
            raise ValueError(f"dmos.csv lacks column {col!r}; has {list(df.columns)}")
    img_dir = _require(root, "images", KADID_LAYOUT)
    paths = [img_dir / n for n in df["dist_img"]]
    _check_files(paths, KADID_LAYOUT)
    stems = [Path(n).stem.split("_") for n in df["dist_img"]]
    kinds = [f"kadid{p[1]}" if len(p) == 3 else "unknown" for p in stems]
    levels = np.array([int(p[2]) if len(p) == 3 else -1 for p in stems])
    return IQASet("kadid10k", paths, df["dmos"].to_numpy(float), [str(r) for r in df["ref_img"]], kinds,
                  levels, "mos", True, {"note": "KADID's 'dmos' column is a higher-better score"},
                  _refs_if_present([img_dir / str(r) for r in df["ref_img"]]))


LIVE_LAYOUT = """  dmos.mat            (variables dmos (1x982), orgs (1x982))
  refnames_all.mat    (variable refnames_all (1x982 reference file names))
  jp2k/ jpeg/ wn/ gblur/ fastfading/  with img1.bmp ... (227, 233, 174, 174, 174 images)
  refimgs/<refname>   (the references, for full-reference measures)"""
LIVE_FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))


def load_live(root: str | Path) -> IQASet:
    """LIVE IQA Release 2 (DMOS, lower better; reference images (orgs == 1) are dropped)."""
    root = Path(root)
    m = loadmat(_require(root, "dmos.mat", LIVE_LAYOUT))
    r = loadmat(_require(root, "refnames_all.mat", LIVE_LAYOUT))
    dmos, orgs = np.ravel(m["dmos"]).astype(float), np.ravel(m["orgs"]).astype(int)
    refs = [str(np.ravel(x)[0]) for x in np.ravel(r["refnames_all"])]
    total = sum(n for _, n in LIVE_FOLDERS)
    if len(dmos) != total or len(refs) != total:
        raise ValueError(f"LIVE dmos.mat / refnames_all.mat must hold {total} entries, got {len(dmos)} / {len(refs)}")
    paths, kinds = [], []
    for folder, n in LIVE_FOLDERS:
        _require(root, folder, LIVE_LAYOUT)
        paths += [root / folder / f"img{i}.bmp" for i in range(1, n + 1)]
        kinds += [folder] * n
    keep = np.flatnonzero(orgs == 0)
    _check_files([paths[i] for i in keep], LIVE_LAYOUT)
    return IQASet("live", [paths[i] for i in keep], dmos[keep], [refs[i] for i in keep],
                  [kinds[i] for i in keep], np.full(len(keep), -1), "dmos", False,
                  refs=_refs_if_present([root / "refimgs" / refs[i] for i in keep]))


CSIQ_LAYOUT = """  csiq_dmos.csv     (CSV export of csiq.DMOS.xlsx; columns image, dst_type, dst_lev, dmos)
  dst_imgs/<dst_type>/<image>.<DST_TYPE>.<dst_lev>.png
  src_imgs/<image>.png   (the references, for full-reference measures)
  (dst_type folders: awgn, blur, contrast, fnoise, jpeg, jpeg2000; DMOS 0..1, lower better)"""
_CSIQ_TAG = {"awgn": "AWGN", "blur": "BLUR", "contrast": "contrast", "fnoise": "fnoise",
             "jpeg": "JPEG", "jpeg2000": "jpeg2000"}


def load_csiq(root: str | Path) -> IQASet:
    """CSIQ (DMOS 0..1, lower better). Needs the DMOS sheet exported to ``csiq_dmos.csv``."""
    root = Path(root)
    df = pd.read_csv(_require(root, "csiq_dmos.csv", CSIQ_LAYOUT))
    for col in ("image", "dst_type", "dst_lev", "dmos"):
        if col not in df:
            raise ValueError(f"csiq_dmos.csv lacks column {col!r}; has {list(df.columns)}")
    paths = []
    for img, typ, lev in zip(df["image"], df["dst_type"], df["dst_lev"]):
        key = str(typ).strip().lower().replace(" ", "")
        key = {"noise": "awgn", "jpeg 2000": "jpeg2000", "f noise": "fnoise"}.get(key, key)
        paths.append(root / "dst_imgs" / key / f"{img}.{_CSIQ_TAG.get(key, key)}.{int(lev)}.png")
    _check_files(paths, CSIQ_LAYOUT)
    return IQASet("csiq", paths, df["dmos"].to_numpy(float), [str(x) for x in df["image"]],
                  [str(t) for t in df["dst_type"]], df["dst_lev"].to_numpy(int), "dmos", False,
                  refs=_refs_if_present([root / "src_imgs" / f"{x}.png" for x in df["image"]]))


TID_LAYOUT = """  mos_with_names.txt   (lines "<MOS> <name>", e.g. "5.51429 i01_01_1.bmp"; MOS 0..9, higher better)
  distorted_images/<name>
  reference_images/I01.BMP ...   (the references, for full-reference measures)"""


def load_tid2013(root: str | Path) -> IQASet:
    """TID2013 (24 types x 5 levels, MOS higher better)."""
    root = Path(root)
    lines = _require(root, "mos_with_names.txt", TID_LAYOUT).read_text().split("\n")
    rows = [ln.split() for ln in lines if ln.strip()]
    bad = [r for r in rows if len(r) != 2]
    if bad:
        raise ValueError(f"mos_with_names.txt: expected '<MOS> <name>' per line, got {bad[0]!r}")
    names = [r[1] for r in rows]
    paths = [root / "distorted_images" / n for n in names]
    _check_files(paths, TID_LAYOUT)
    parts = [Path(n).stem.lower().split("_") for n in names]
    return IQASet("tid2013", paths, np.array([float(r[0]) for r in rows]), [p[0] for p in parts],
                  [f"tid{p[1]}" for p in parts], np.array([int(p[2]) for p in parts]), "mos", True,
                  refs=_refs_if_present([root / "reference_images" / f"{p[0].upper()}.BMP" for p in parts]))


PIPAL_LAYOUT = """  Train_Label/<ref>.txt   (lines "<dist_name>,<MOS>", e.g. "A0001_00_00.bmp,1456.2"; higher better)
  Train_Dist/<dist_name>
  Train_Ref/<ref>.bmp     (the references, for full-reference measures)"""


def load_pipal(root: str | Path) -> IQASet:
    """PIPAL training part (Elo-style MOS, higher better; includes GAN/SR outputs)."""
    root = Path(root)
    label_dir = _require(root, "Train_Label", PIPAL_LAYOUT)
    files = sorted(label_dir.glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"{label_dir} holds no .txt label files. Expected layout under {root}:\n{PIPAL_LAYOUT}")
    names, scores = [], []
    for f in files:
        for ln in f.read_text().split("\n"):
            if ln.strip():
                name, score = ln.strip().split(",")[:2]
                names.append(name.strip())
                scores.append(float(score))
    paths = [root / "Train_Dist" / n for n in names]
    _check_files(paths, PIPAL_LAYOUT)
    parts = [Path(n).stem.split("_") for n in names]
    return IQASet("pipal", paths, np.array(scores), [p[0] for p in parts],
                  [f"pipal{p[1]}" if len(p) > 1 else "unknown" for p in parts], np.full(len(names), -1),
                  "mos", True, refs=_refs_if_present([root / "Train_Ref" / f"{p[0]}.bmp" for p in parts]))


SPAQ_LAYOUT = """  Annotations/MOS and Image attribute scores.csv   (CSV export of the published .xlsx;
                                                    columns "Image name", "MOS"; MOS 0..100, higher better)
  TestImage/<Image name>                            (the 11,125 smartphone photos)"""
SPAQ_LABELS = "Annotations/MOS and Image attribute scores.csv"


def load_spaq(root: str | Path) -> IQASet:
    """SPAQ (smartphone photos, authentic distortions; MOS higher better; each image its own source).
    Needs the annotation sheet exported to CSV (no spreadsheet reader is a dependency)."""
    root = Path(root)
    df = pd.read_csv(_require(root, SPAQ_LABELS, SPAQ_LAYOUT))
    for col in ("Image name", "MOS"):
        if col not in df:
            raise ValueError(f"{SPAQ_LABELS} lacks column {col!r}; has {list(df.columns)}")
    img_dir = _require(root, "TestImage", SPAQ_LAYOUT)
    names = [str(x).strip() for x in df["Image name"]]
    paths = [img_dir / n for n in names]
    _check_files(paths, SPAQ_LAYOUT)
    n = len(df)
    return IQASet("spaq", paths, df["MOS"].to_numpy(float), names, ["unknown"] * n, np.full(n, -1), "mos", True)


LIVEC_LAYOUT = """  Data/AllImages_release.mat   (variable AllImages_release: the 1,169 image names)
  Data/AllMOS_release.mat      (variable AllMOS_release: their MOS, 0..100, higher better)
  Images/<name>                (the first 7 names are in Images/trainingImages/)"""


def load_live_challenge(root: str | Path) -> IQASet:
    """LIVE In the Wild Image Quality Challenge (authentic distortions; MOS higher better; each image
    its own source). The 7 training images of the release (``Images/trainingImages/``) are kept."""
    root = Path(root)
    names_mat = loadmat(_require(root, "Data/AllImages_release.mat", LIVEC_LAYOUT))
    mos_mat = loadmat(_require(root, "Data/AllMOS_release.mat", LIVEC_LAYOUT))
    if "AllImages_release" not in names_mat or "AllMOS_release" not in mos_mat:
        raise ValueError("LIVE Challenge .mat files must hold AllImages_release and AllMOS_release")
    names = [str(np.ravel(x)[0]) for x in np.ravel(names_mat["AllImages_release"])]
    mos = np.ravel(mos_mat["AllMOS_release"]).astype(float)
    if len(names) != len(mos):
        raise ValueError(f"LIVE Challenge: {len(names)} image names but {len(mos)} MOS values")
    img_dir = _require(root, "Images", LIVEC_LAYOUT)
    paths = [img_dir / n if (img_dir / n).exists() else img_dir / "trainingImages" / n for n in names]
    _check_files(paths, LIVEC_LAYOUT)
    n = len(names)
    return IQASet("livechallenge", paths, mos, names, ["unknown"] * n, np.full(n, -1), "mos", True)


def _refs_if_present(paths: list[Path]) -> list[Path] | None:
    """The reference file of each image when every one exists (full-reference assessment), else None."""
    return paths if paths and all(p.exists() for p in set(paths)) else None


def _check_files(paths: list[Path], layout: str) -> None:
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} image file(s) listed in the labels are missing, first: "
                                f"{missing[0]}. Expected layout:\n{layout}")


LOADERS: dict[str, Callable[[str | Path], IQASet]] = {
    "koniq10k": load_koniq10k, "kadid10k": load_kadid10k, "live": load_live,
    "csiq": load_csiq, "tid2013": load_tid2013, "pipal": load_pipal,
    "spaq": load_spaq, "livechallenge": load_live_challenge,
}
EMBEDDED_SETS = ("embedded", *(f"embedded-{h}" for h in HALVES))
DATASETS = [*EMBEDDED_SETS, *LOADERS]


def dataset_key(name: str) -> str:
    """The canonical name of IQA dataset ``name``: ``embedded``, ``embedded-a``, ``embedded-b`` or a key
    of :data:`LOADERS` (case, ``-`` and ``_`` ignored: ``KADID-10k`` -> ``kadid10k``)."""
    key = str(name).lower().replace("-", "").replace("_", "")
    if key in ("embedded", "embeddeddistortions"):
        return "embedded"
    for full in EMBEDDED_SETS:
        if key == full.replace("-", ""):
            return full
    if key not in LOADERS:
        raise ValueError(f"unknown IQA dataset {name!r}; choose one of {DATASETS}")
    return key


def load_iqa_dataset(name: str, root: str | Path | None = None, split: str = "all", **kw) -> IQASet:
    """Load IQA dataset ``name`` (one of :data:`DATASETS`) and take ``split``.

    ``embedded`` needs no root (keywords go to :func:`embedded_distortion_set`), nor do its halves
    ``embedded-a`` / ``embedded-b`` (:func:`embedded_half_set`, splits ``train`` and ``test``); the
    published sets need ``root`` in their published layout (errors name the missing file).
    """
    _check_split(split)
    key = dataset_key(name)
    if key == "embedded":
        return embedded_distortion_set(split, **kw)
    if key in EMBEDDED_SETS:
        return embedded_half_set(key.rsplit("-", 1)[1], split, **kw)
    if root is None:
        raise ValueError(f"IQA dataset {name!r} needs root=<folder with the published layout>")
    if not Path(root).is_dir():
        raise FileNotFoundError(f"IQA dataset root {root} is not a folder")
    return LOADERS[key](root).split(split)
