"""Evaluate super-resolved clips with a panel of quality measures -> one tidy DataFrame.

The source of the outputs may be a generator (``nn.Module``: ``(1,T,3,h,w) -> (1,T,3,4h,4w)``),
a run folder (loaded with :func:`nriqa.train.load_generator`, EMA weights), a folder of output
frames (``<folder>/<clip>/*.png``, sorted by name) or a dict ``{clip: (T,3,H,W) tensor}``.

Scores are cached per ``(source, dataset, measure)`` as a CSV under ``cache_dir`` (a run or frame folder
by its path, whatever label it is judged under; a module or a dict of tensors by the ``run`` label).  The cache key
holds a fingerprint of the source (checkpoint path + size + mtime, frame files, or a hash of
the weights/tensors), of the test set, and of the measure (its card and weight files), so a new
checkpoint, other clips or retrained measure weights invalidate it. A cached file that cannot be
read back whole (garbage bytes, a truncated file, wrong columns or rows) is scored again and
replaced, with a warning naming it; files are written atomically.

A run folder's output frames on the test set are cached beside the scores (``outputs__*.pt``, float32,
keyed by the checkpoint and test-set fingerprints), so the generator runs once per checkpoint:
:func:`evaluate` writes them and :func:`generator_outputs` (the artifact tables' source) reads them.

Inputs are checked before any compute (:func:`nriqa.models.check_video`): ground truth and LR
frames, and outputs handed in as a dict or frame folder, must be float ``[0, 1]`` and finite;
a generator's output must be finite (it is clamped to ``[0, 1]``).
"""
from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from nriqa import config, quality
from nriqa.errors import brief_error
from nriqa.models import check_video, upscale
from nriqa.paths import atomic_path
from nriqa.progress import progress_bar
from nriqa.quality.kit import KitCheckpointError
from nriqa.train import load_generator

COLUMNS = ["run", "model", "dataset", "clip", "frame", "measure", "score"]

#: Measures allowed to run under bf16 autocast on CUDA (deep networks that tolerate it);
#: everything else (PSNR, SSIM, NIQE, ... statistics sensitive to precision) runs in float32.
BF16_TOLERANT = frozenset({
    "maniqa", "dbcnn", "nima", "hyperiqa", "paq2piq", "clipiqa", "musiq", "topiq_nr", "mdtvsfa",
    "lpips-vgg", "lpips-alex", "lpips-vgg-randtrunk", "dists", "dists-vgg-randtrunk", "pieapp",
})


def resolve_panel(panel: str | Sequence[str]) -> list[str]:
    """The ``panel`` of a profile (``"demo"``, ``"paper"``, see :func:`nriqa.config.available_profiles`),
    a comma-separated string of measure names, or a list of measure names."""
    if isinstance(panel, str):
        if panel in config.available_profiles():
            return list(config.load_profile(panel)["panel"])
        names = [p.strip() for p in panel.split(",") if p.strip()]
        if not names:
            raise ValueError(f"panel {panel!r} names no measure; profiles with a panel: "
                             f"{config.available_profiles()}")
        return names
    names = list(panel)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"panel must be a non-empty list of measure names, got {panel!r}")
    return names


# ----------------------------------------------------------------------------- sources
def _is_run_dir(p: Path) -> bool:
    return (p / "config.yaml").exists() or (p / "checkpoints").is_dir()


def _is_frames_folder(source: Any) -> bool:
    """A folder of ``<clip>/*.png`` output frames (not a run folder)."""
    return isinstance(source, (str, Path)) and Path(source).is_dir() and not _is_run_dir(Path(source))


def _hash_bytes(h: "hashlib._Hash", t: torch.Tensor) -> None:
    h.update(str(tuple(t.shape)).encode())
    h.update(t.detach().float().contiguous().cpu().numpy().tobytes())


def _checkpoint_file(run_dir: Path) -> Path | None:
    ck = run_dir / "checkpoints"
    for name in ("latest.pt", "best.pt"):
        if (ck / name).exists():
            return ck / name
    found = sorted(ck.glob("*.pt")) if ck.is_dir() else []
    return found[-1] if found else None


def source_fingerprint(source: Any) -> str:
    """A short hash that changes when the outputs would change (new checkpoint, new frames)."""
    h = hashlib.sha1()
    if isinstance(source, (str, Path)):
        p = Path(source)
        if _is_run_dir(p):
            ck = _checkpoint_file(p)
            if ck is None:
                raise FileNotFoundError(f"run folder {p} has no checkpoint under {p / 'checkpoints'}")
            st = ck.stat()
            h.update(f"run:{ck.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
        else:
            for f in sorted(p.glob("*/*.png")):
                st = f.stat()
                h.update(f"{f.relative_to(p)}:{st.st_size}:{st.st_mtime_ns}".encode())
    elif isinstance(source, torch.nn.Module):
        for k, v in source.state_dict().items():
            h.update(k.encode())
            _hash_bytes(h, v)
    elif isinstance(source, Mapping):
        for k in sorted(source):
            h.update(str(k).encode())
            _hash_bytes(h, source[k])
    else:
        raise TypeError(f"cannot fingerprint source of type {type(source).__name__}")
    return h.hexdigest()[:12]


def test_set_fingerprint(test_set: Sequence[Mapping]) -> str:
    """Hash of clip names, shapes and a subsample of the ground-truth pixels."""
    h = hashlib.sha1()
    for c in test_set:
        h.update(str(c["name"]).encode())
        hr = c["hr"]
        h.update(str(tuple(hr.shape)).encode())
        h.update(str(c.get("eval_frames")).encode())
        _hash_bytes(h, hr.flatten()[:: max(1, hr.numel() // 4096)])
    return h.hexdigest()[:12]


test_set_fingerprint.__test__ = False  # a package function, not a pytest test


def _cache_key(source: Any, test_set: Sequence[Mapping]) -> str:
    """``<source fingerprint>-<test-set fingerprint>``: the part of every cache file name of ``source``
    on ``test_set`` that changes when the outputs or the clips would."""
    return f"{source_fingerprint(source)}-{test_set_fingerprint(test_set)}"


def _read_frames_folder(folder: Path) -> torch.Tensor:
    import cv2  # imported on use: only frame folders need it

    files = sorted(folder.glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no PNG frames in {folder}")
    frames = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"cannot read frame {f}")
        frames.append(torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1])).permute(2, 0, 1))
    return torch.stack(frames).float() / 255.0


def _check_test_set(test_set: Any, needs_lr: bool = False) -> None:
    """Every clip: a dict with 'name' and 'hr' (1,T,3,H,W) float in [0, 1], finite
    (:func:`nriqa.models.check_video`); 'lr' (1,T,3,h,w) likewise when present or ``needs_lr``
    (a generator is run on it), with as many frames as 'hr'."""
    if isinstance(test_set, (str, bytes)) or not isinstance(test_set, Sequence) or not test_set:
        raise ValueError("test_set must be a non-empty list of {'name', 'lr', 'hr'} dicts")
    for i, c in enumerate(test_set):
        if not isinstance(c, Mapping) or not {"name", "hr"} <= set(c):
            raise ValueError(f"test_set[{i}] must be a dict with 'name', 'lr' (1,T,3,h,w) and 'hr' (1,T,3,H,W)")
        label = f"test_set[{i}] ({c['name']!r})"
        hr = check_video(c["hr"], f"{label}['hr']")
        if hr.shape[0] != 1:
            raise ValueError(f"{label}['hr'] must be one clip (1,T,3,H,W), got {tuple(hr.shape)}")
        if c.get("lr") is None:
            if needs_lr:
                raise ValueError(f"{label} has no 'lr' (1,T,3,h,w): the generator needs it")
            continue
        lr = check_video(c["lr"], f"{label}['lr']")
        if lr.shape[:2] != hr.shape[:2]:
            raise ValueError(f"{label}: 'lr' {tuple(lr.shape)} and 'hr' {tuple(hr.shape)} must have the same "
                             "(1, T) leading dims")


def _check_output(out: Any, name: str, source: str, hr_shape: tuple, clamped: bool) -> torch.Tensor:
    """An output clip ``(T,3,H,W)`` (or ``(1,T,3,H,W)``) as float32 on the CPU, checked: the shape
    of the ground truth, finite, and (for outputs handed in, ``clamped=False``) floats in [0, 1]."""
    label = f"output of clip {name!r} ({source})"
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{label} must be a (T,3,H,W) tensor, got {type(out).__name__}")
    if out.dim() == 5 and out.shape[0] == 1:
        out = out[0]
    if tuple(out.shape) != tuple(hr_shape):
        raise ValueError(f"{label} has shape {tuple(out.shape)}, ground truth {tuple(hr_shape)}")
    if clamped:  # a generator's raw output: may overshoot [0, 1] (clamped below), must be finite
        if not out.is_floating_point() or not bool(torch.isfinite(out).all()):
            raise ValueError(f"{label} contains NaN or Inf values: the generator's weights have diverged "
                             "(evaluate an earlier checkpoint)")
    else:
        check_video(out[None], label)
    return out.float().clamp(0, 1).cpu()


def _path_hash(folder: str | Path) -> str:
    """10 hex digits of the folder's resolved path: names its cache files, whatever label it has."""
    return hashlib.sha1(str(Path(folder).resolve()).encode()).hexdigest()[:10]


def _outputs_path(cache: Path, run_dir: Path, key: str) -> Path:
    """``<cache>/outputs__<hash of the run folder's path>__<key>.pt``: one file per run folder."""
    return cache / f"outputs__{_path_hash(run_dir)}__{key}.pt"


def _read_cached_outputs(path: Path, test_set: Sequence[Mapping]) -> dict[str, torch.Tensor] | None:
    """The cached ``{clip: (T,3,H,W)}`` float32 outputs at ``path``, or None (with a warning naming the
    file) when it cannot be read back whole: then the generator runs again and the file is replaced."""
    try:
        got = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(got, dict):
            raise ValueError(f"it holds a {type(got).__name__}, not a dict of clips")
        for c in test_set:
            name, shape = str(c["name"]), tuple(c["hr"].shape[1:])
            t = got.get(name)
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape or t.dtype != torch.float32:
                raise ValueError(f"clip {name!r} is missing or not a float32 {shape} tensor")
            if not bool(torch.isfinite(t).all()) or float(t.min()) < 0 or float(t.max()) > 1:
                raise ValueError(f"clip {name!r} holds values outside [0, 1]")
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        warnings.warn(f"evaluation cache {path} is unreadable ({brief_error(err)}); running the "
                      "generator again and replacing the file", stacklevel=3)
        return None
    return got


class _Outputs:
    """The one place that turns :func:`evaluate`'s first argument into output clips ``(T,3,H,W)`` in
    [0,1], one test clip at a time (lazily). It accepts four kinds of source:

    - an ``nn.Module`` generator, run on each clip's ``lr`` (bf16 autocast on CUDA with ``amp``);
      its output must be finite and is clamped to [0, 1];
    - a run folder (``config.yaml`` or ``checkpoints/``): its generator is loaded on first use
      (:func:`nriqa.train.load_generator`, EMA weights) and run as above; with :meth:`use_cache`
      the clips are read from, and :meth:`save` writes them to, ``outputs__*.pt`` in the cache
      folder, so the generator runs once per checkpoint;
    - a folder of output frames ``<folder>/<clip>/*.png`` (sorted by name);
    - a dict ``{clip: (T,3,H,W) tensor}``.

    Frames and dict entries must be float [0, 1] and finite. Anything else raises TypeError (a path
    that is no folder: FileNotFoundError).
    """

    def __init__(self, source: Any, device: str, amp: bool):
        self.device, self.amp = device, amp
        self.generator: torch.nn.Module | None = None
        self.frames_dir: Path | None = None
        self.mapping: Mapping | None = None
        self.cache: Path | None = None
        self.produced: dict[str, torch.Tensor] = {}
        self._cached: dict[str, torch.Tensor] | None = None
        if isinstance(source, torch.nn.Module):
            self.generator = source
        elif isinstance(source, Mapping):
            self.mapping = source
        elif isinstance(source, (str, Path)):
            p = Path(source)
            if not p.is_dir():
                raise FileNotFoundError(f"{p} is neither a run folder nor a folder of output frames")
            if _is_run_dir(p):
                self._run_dir = p
            else:
                self.frames_dir = p
        else:
            raise TypeError("generator_or_run_dir must be an nn.Module, a run folder, a folder of "
                            f"<clip>/*.png frames or a dict {{clip: (T,3,H,W)}}; got {type(source).__name__}")

    @staticmethod
    def runs_generator(source: Any) -> bool:
        """Whether ``source`` is (or, being a path that is no folder of frames, is taken for) a
        generator or run folder, so the test clips need their ``lr`` frames."""
        return isinstance(source, (torch.nn.Module, str, Path)) and not _is_frames_folder(source)

    def use_cache(self, cache: Path | None, key: str, test_set: Sequence[Mapping]) -> None:
        """Read and write a run folder's outputs in the cache folder ``cache`` under ``key`` (the source and
        test-set fingerprints; :func:`_outputs_path`); no-op without a cache or for other sources."""
        if cache is None or self.generator is not None or self.mapping is not None or self.frames_dir is not None:
            return
        path = _outputs_path(cache, self._run_dir, key)
        self.cache = path
        if path.exists():
            self._cached = _read_cached_outputs(path, test_set)

    def _load_generator(self) -> torch.nn.Module:
        if self.generator is None:
            self.generator = load_generator(self._run_dir, ema=True, device=self.device)
        return self.generator

    @torch.no_grad()
    def clip(self, clip: Mapping) -> torch.Tensor:
        name = clip["name"]
        hr_shape = tuple(clip["hr"].shape[1:])
        if self.mapping is not None:
            if name not in self.mapping:
                raise KeyError(f"outputs have no clip {name!r}; they have {sorted(self.mapping)}")
            return _check_output(self.mapping[name], name, "the dict of outputs", hr_shape, clamped=False)
        if self.frames_dir is not None:
            return _check_output(_read_frames_folder(self.frames_dir / name), name,
                                 f"frames in {self.frames_dir / name}", hr_shape, clamped=False)
        if self._cached is not None and str(name) in self._cached:
            return self._cached[str(name)]
        gen = self._load_generator().eval()
        lr = clip["lr"].to(self.device)
        scale = clip["hr"].shape[-1] // max(lr.shape[-1], 1)
        use_amp = self.amp and str(self.device).startswith("cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            out = upscale(gen, lr, scale=scale, what=f"lr of clip {name!r}")  # checked; cast to gen's dtype
        out = _check_output(out, name, "the generator", hr_shape, clamped=True)
        self.produced[str(name)] = out
        return out

    def save(self, test_set: Sequence[Mapping]) -> None:
        """Write the outputs of every clip of ``test_set`` to the cache file (atomically, replacing
        this run folder's older entries) when the generator produced them all in this call."""
        if self.cache is None or not self.produced or not all(str(c["name"]) in self.produced for c in test_set):
            return
        prefix = self.cache.name.split("__")[1]
        for old in self.cache.parent.glob(f"outputs__{prefix}__*.pt"):
            old.unlink()  # the outputs of an older checkpoint or test set
        with atomic_path(self.cache) as tmp:
            torch.save({str(c["name"]): self.produced[str(c["name"])] for c in test_set}, tmp)


def generator_outputs(run_dir: Path | str, test_set: Sequence[Mapping], *, cache_dir: Path | str | None = None,
                      device: str = "cpu", amp: bool = True) -> dict[str, torch.Tensor]:
    """``{clip: (T,3,H,W)}`` float32 output frames in ``[0, 1]`` (CPU) of a run folder's generator (EMA
    weights) on ``test_set``, the same frames :func:`evaluate` scores. With ``cache_dir`` (the one given
    to :func:`evaluate`) they are read from the cache that :func:`evaluate` wrote, or computed once and
    written there; a changed checkpoint or test set makes new ones."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or not _is_run_dir(run_dir):
        raise FileNotFoundError(f"{run_dir} is not a run folder (it needs config.yaml and checkpoints/)")
    _check_test_set(test_set, needs_lr=True)
    outputs = _Outputs(run_dir, device, amp)
    if cache_dir is not None:
        outputs.use_cache(Path(cache_dir), _cache_key(run_dir, test_set), test_set)
    result = {str(c["name"]): outputs.clip(c) for c in test_set}
    outputs.save(test_set)
    return result


# ----------------------------------------------------------------------------- measures
def _default_create(name: str, device: str):
    return quality.create(name, device=device)


def _card_of(name: str, measure: Any = None):
    card = getattr(measure, "card", None)
    if card is None:
        try:
            card = quality.card(name)
        except ValueError:  # a measure made by a custom ``create`` under a name the registry lacks
            card = None
    return card


def check_panel_names(names: Sequence[str]) -> list[str]:
    """Validate measure names against :mod:`nriqa.quality` (before any compute) and return the
    ones that cannot run for lack of weights: missing weight files, or a kit model
    (``arch@data``) whose checkpoint has not been trained yet.  Unknown names raise ValueError."""
    missing, unknown = [], []
    for n in names:
        try:
            card = quality.card(n)  # an arch@data name finds a kit-trained checkpoint on disk
        except KitCheckpointError:
            raise  # the checkpoint is there but unreadable: its message names the file and the fix
        except ValueError:
            (missing if "@" in n else unknown).append(n)
            continue
        if not card.present:
            missing.append(n)
    if unknown:
        raise ValueError(f"unknown quality measure(s) {unknown} in panel; known: {quality.names()}")
    return missing


def measure_fingerprint(name: str) -> str:
    """Short hash of a measure's card and the size/mtime of its weight files ('' when unknown),
    so a retrained kit model or replaced weight file invalidates cached scores."""
    try:
        card = quality.card(name)
    except ValueError:
        return ""
    h = hashlib.sha1(repr(card).encode())
    for w in getattr(card, "weights", ()):
        try:
            st = w.path.stat()
            h.update(f"{w.path}:{st.st_size}:{st.st_mtime_ns}".encode())
        except (OSError, ValueError):
            h.update(b"missing")
    return h.hexdigest()[:8]


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)


def _folder_tag(source: Any) -> str:
    """``<folder name>-<hash of its resolved path>`` for a run / frame folder ('' for a module or a
    dict of tensors)."""
    if isinstance(source, (str, Path)):
        return f"{_safe(Path(source).resolve().name)}-{_path_hash(source)}"
    return ""


def _scores_prefix(run: str, dataset: str, name: str, folder: str) -> str:
    """The start of the cached scores' file name of one source, dataset and measure: a folder's
    :func:`_folder_tag` (its scores do not depend on the label they are shown under, so the seeds
    of an arm never evict each other and a folder judged under two labels is scored once), else
    the ``run`` label (a module or a dict of tensors)."""
    return f"{folder or _safe(run)}__{_safe(dataset)}__{_safe(name)}__"


def _score_frames(measure, name: str, pred: torch.Tensor, gt: torch.Tensor, fr: bool,
                  batch_size: int, device: str, video: bool = False) -> list[float]:
    use_amp = str(device).startswith("cuda") and name in BF16_TOLERANT
    if video:  # a video measure (e.g. MDTVSFA) scores the whole clip once; every frame gets that score
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            x = pred[None].to(device)
            s = measure(x, gt[None].to(device)) if fr else measure(x)
        s = torch.as_tensor(s).float().flatten().cpu()
        if s.numel() != 1:
            raise ValueError(f"video measure {name!r} returned {s.numel()} scores for one clip")
        return [float(s)] * pred.shape[0]
    scores: list[float] = []
    for i in range(0, pred.shape[0], batch_size):
        x = pred[i:i + batch_size].to(device)
        ref = gt[i:i + batch_size].to(device) if fr else None
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            s = measure(x, ref) if fr else measure(x)
        s = torch.as_tensor(s).float().flatten().cpu()
        if s.numel() != x.shape[0]:
            raise ValueError(f"measure {name!r} returned {s.numel()} scores for {x.shape[0]} frames")
        scores.extend(s.tolist())
    return scores


def _expected_rows(test_set: Sequence[Mapping]) -> list[tuple[str, int]]:
    """``(clip, frame)`` of every row a complete score table of ``test_set`` holds, in order."""
    rows = []
    for c in test_set:
        frames = c.get("eval_frames")
        ids = [int(i) for i in frames] if frames is not None else range(c["hr"].shape[1])
        rows += [(str(c["name"]), f) for f in ids]
    return rows


def _read_cached_scores(path: Path, name: str, expected: list[tuple[str, int]]) -> pd.DataFrame | None:
    """The cached scores of measure ``name`` at ``path``, or None with a warning naming the file when it
    cannot be read back whole: unparsable bytes, missing columns, rows of another measure, missing,
    extra or repeated (clip, frame) rows (a truncated file), non-numeric or non-finite scores. The
    caller then scores the frames again and replaces the file."""
    need = COLUMNS + ["higher_better"]
    try:
        t = pd.read_csv(path, dtype={"clip": str})
        missing = [c for c in need if c not in t.columns]
        if missing:
            raise ValueError(f"columns {missing} are missing")
        if not (t["measure"].astype(str) == name).all():
            raise ValueError(f"it holds rows of measures other than {name!r}")
        frames = pd.to_numeric(t["frame"], errors="raise")
        if not np.array_equal(frames, frames.round()):
            raise ValueError("frame numbers are not integers")
        got = list(zip(t["clip"].astype(str), frames.astype(int)))
        if got != expected:
            raise ValueError(f"it holds {len(got)} (clip, frame) rows, the test set has {len(expected)}"
                             if len(got) != len(expected) else "its (clip, frame) rows differ from the test set's")
        scores = pd.to_numeric(t["score"], errors="raise").astype(float)
        if not np.isfinite(scores).all():
            raise ValueError("it holds missing or non-finite scores")
        hb = t["higher_better"]
        if hb.dtype != bool:
            raise ValueError("its higher_better column is not True/False throughout")
    except Exception as err:  # pandas raises EmptyDataError, ParserError, UnicodeDecodeError, ...
        warnings.warn(f"evaluation cache {path} is unreadable ({brief_error(err)}); scoring "
                      f"{name!r} again and replacing the file", stacklevel=4)
        return None
    t = t[need].copy()
    t["frame"], t["score"] = frames.astype(int), scores
    return t


def _check_arguments(source: Any, test_set: Sequence[Mapping], names: Sequence[str], labels: Mapping[str, Any],
                     *, check_names: bool) -> None:
    """:func:`evaluate`'s checks before any compute: the test set (with ``lr`` frames when the source is a
    generator or run folder), non-empty string labels and, with ``check_names``, the measure names."""
    _check_test_set(test_set, needs_lr=_Outputs.runs_generator(source))
    for label, v in labels.items():
        if not isinstance(v, str) or not v:
            raise ValueError(f"{label} must be a non-empty string, got {v!r}")
    if check_names:
        check_panel_names(names)  # unknown names fail here, before any compute


class _ScoreFiles:
    """Where one source's scores on one dataset are cached: ``<cache>/<prefix><key>[-<measure fingerprint>].csv``
    per measure (:func:`_scores_prefix`); no file without a cache folder. The measure's fingerprint is part of
    the name for registry measures (``fingerprint``), not for those of a custom ``create``."""

    def __init__(self, cache: Path | None, run: str, dataset: str, folder: str, key: str, *, fingerprint: bool):
        self.cache, self.run, self.dataset, self.folder = cache, run, dataset, folder
        self.key, self.fingerprint = key, fingerprint

    def prefix(self, name: str) -> str:
        return _scores_prefix(self.run, self.dataset, name, self.folder)

    def path(self, name: str) -> Path | None:
        mkey = measure_fingerprint(name) if self.fingerprint else ""
        return self.cache / f"{self.prefix(name)}{self.key}{mkey and '-' + mkey}.csv" \
            if self.cache is not None else None


def _cached_scores(files: _ScoreFiles, names: Sequence[str], test_set: Sequence[Mapping], *, run: str, model: str,
                   dataset: str) -> tuple[list[pd.DataFrame], dict[str, Path | None]]:
    """Cache lookup: the tables of the measures whose cached scores read back whole (labelled ``run``,
    ``model``, ``dataset``), and ``{measure: its cache file or None}`` of those left to score."""
    tables: list[pd.DataFrame] = []
    to_score: dict[str, Path | None] = {}
    expected = _expected_rows(test_set)
    for name in names:
        path = files.path(name)
        t = _read_cached_scores(path, name, expected) if path is not None and path.exists() else None
        if t is not None:
            t["run"], t["model"], t["dataset"] = run, model, dataset
            tables.append(t)
        else:
            to_score[name] = path
    return tables, to_score


def _make_measures(names: list[str], device: str, create: Callable[[str, str], Any] | None,
                   ) -> tuple[dict[str, Any], list[str]]:
    """``({name: measure}, skipped)``: the measures of ``names`` that can run, and those that cannot for
    lack of weights (one warning names them; nothing is downloaded)."""
    measures: dict[str, Any] = {}
    skipped: list[str] = check_panel_names(names) if create is None else []
    for name in names:
        if name in skipped:
            continue
        try:
            measures[name] = (create or _default_create)(name, device)
        except FileNotFoundError:  # includes nriqa.quality.WeightsMissingError
            skipped.append(name)
    if skipped:
        warnings.warn(f"skipping measures whose weights are missing (nothing is downloaded): {skipped}; "
                      "see `python -m nriqa weights`", stacklevel=3)
    return measures, skipped


def _score_outputs(outputs: _Outputs, test_set: Sequence[Mapping], measures: Mapping[str, Any], *, run: str,
                   model: str, dataset: str, batch_size: int, device: str, progress: bool) -> dict[str, pd.DataFrame]:
    """Scoring: ``{measure: table}`` of every output frame of every clip (its ``eval_frames`` only, when
    given) scored by each of ``measures``, clip by clip (each clip's outputs are made once)."""
    rows: dict[str, list[dict]] = {n: [] for n in measures}
    clips = progress_bar(test_set, desc=f"eval {run}/{dataset}", leave=False) if progress and measures else test_set
    for clip in clips if measures else []:
        pred, gt = outputs.clip(clip), clip["hr"][0].float()
        frame_ids = list(range(pred.shape[0]))
        if clip.get("eval_frames") is not None:  # e.g. Vimeo-90K: the centre frame only
            frame_ids = [int(i) for i in clip["eval_frames"]]
            pred, gt = pred[frame_ids], gt[frame_ids]
        for name, m in measures.items():
            card = _card_of(name, m)
            fr = getattr(card, "mode", "NR") == "FR"
            hb = bool(getattr(card, "higher_better", True))
            video = bool(getattr(card, "video", False))
            for f, s in zip(frame_ids, _score_frames(m, name, pred, gt, fr, batch_size, device, video)):
                rows[name].append({"run": run, "model": model, "dataset": dataset,
                                   "clip": str(clip["name"]), "frame": f, "measure": name,
                                   "score": s, "higher_better": hb})
    return {name: pd.DataFrame(r, columns=COLUMNS + ["higher_better"]) for name, r in rows.items()}


def _write_scores(files: _ScoreFiles, scored: Mapping[str, pd.DataFrame],
                  paths: Mapping[str, Path | None]) -> list[pd.DataFrame]:
    """Cache writing: each measure's new table goes to its cache file (atomically), replacing the older
    files of the same source, dataset and measure; returns the tables."""
    for name, t in scored.items():
        path = paths[name]
        if path is not None:
            for old in path.parent.glob(f"{files.prefix(name)}*.csv"):
                old.unlink()  # stale entries of an older checkpoint of the same folder
            with atomic_path(path) as tmp:
                t.to_csv(tmp, index=False)
    return list(scored.values())


def _score_table(tables: list[pd.DataFrame], names: Sequence[str], skipped: list[str]) -> pd.DataFrame:
    """One table of ``tables`` sorted by measure (in ``names`` order), clip and frame, with
    ``attrs["skipped"]``."""
    df = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS + ["higher_better"])
    order = {n: i for i, n in enumerate(names)}
    df = df.sort_values(["measure", "clip", "frame"], key=lambda c: c.map(order) if c.name == "measure" else c,
                        kind="stable").reset_index(drop=True)
    df.attrs["skipped"] = skipped
    return df


def evaluate(generator_or_run_dir: Any, test_set: Sequence[Mapping], panel: str | Sequence[str], *,
             run: str, model: str, dataset: str, cache_dir: Path | str | None = None,
             device: str = "cpu", batch_size: int = 8, amp: bool = True,
             create: Callable[[str, str], Any] | None = None, progress: bool = True) -> pd.DataFrame:
    """Score every output frame of every test clip with every measure of ``panel``.

    In order: check the arguments, turn the first argument into outputs (:class:`_Outputs`), look the
    scores up in the cache (:func:`_cached_scores`), make the measures the cache lacks
    (:func:`_make_measures`), score the outputs with them (:func:`_score_outputs`), write their scores
    (and a run folder's outputs) to the cache (:func:`_write_scores`), and sort one table (:func:`_score_table`).

    Args:
        generator_or_run_dir: one of the four kinds :class:`_Outputs` accepts: an ``nn.Module``
            generator, a run folder, a folder of ``<clip>/*.png`` output frames, or ``{clip: (T,3,H,W)}``
            tensors in [0,1].
        test_set: ``[{"name", "lr": (1,T,3,h,w), "hr": (1,T,3,H,W)}]`` (``nriqa.data.build_test_set``);
            a clip's optional ``"eval_frames"`` (list of indices) restricts scoring to those frames.
        panel: measure names, or a profile name whose ``panel`` to use (:func:`resolve_panel`).
        run, model, dataset: labels written into the table (and the cache key).
        cache_dir: where per-(source, dataset, measure) CSVs are cached; ``None`` = no cache.
        device: generator/measure device; on CUDA the generator and :data:`BF16_TOLERANT`
            measures run under bf16 autocast (``amp=True``).
        create: ``name, device -> measure`` factory (default :func:`nriqa.quality.create`); a
            measure is called ``m(x)`` (NR) or ``m(x, ref)`` (FR) on ``(N,3,H,W)`` and returns ``(N,)``.

    Returns:
        Tidy DataFrame with columns ``run, model, dataset, clip, frame, measure, score,
        higher_better`` (raw scores; ``higher_better`` from each measure's card).  A video
        measure (``card.video``, e.g. MDTVSFA) scores each clip once; its frames share that score.  Measures
        that cannot run because their weights are missing are skipped with one warning; their
        names are in ``df.attrs["skipped"]``.
    """
    names = resolve_panel(panel)
    _check_arguments(generator_or_run_dir, test_set, names, {"run": run, "model": model, "dataset": dataset},
                     check_names=create is None)
    outputs = _Outputs(generator_or_run_dir, device, amp)
    cache = Path(cache_dir) if cache_dir is not None else None
    key = _cache_key(generator_or_run_dir, test_set)
    outputs.use_cache(cache, key, test_set)
    files = _ScoreFiles(cache, run, dataset, _folder_tag(generator_or_run_dir), key, fingerprint=create is None)

    tables, to_score = _cached_scores(files, names, test_set, run=run, model=model, dataset=dataset)
    skipped: list[str] = []
    if to_score:
        measures, skipped = _make_measures(list(to_score), device, create)
        scored = _score_outputs(outputs, test_set, measures, run=run, model=model, dataset=dataset,
                                batch_size=batch_size, device=device, progress=progress)
        tables += _write_scores(files, scored, to_score)
        outputs.save(test_set)
    return _score_table(tables, names, skipped)
