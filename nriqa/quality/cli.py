"""``python -m nriqa quality`` (card table) and ``python -m nriqa weights`` (presence / fetch).

``weights fetch NAME`` is the only code path in nriqa that downloads: it fetches each missing
file of measure NAME from the URL on its card (or the published model checkpoint NAME of
:mod:`nriqa.models.released`), checks size/sha256 when known, and renames it into place atomically.
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

from nriqa.models.released import RELEASED
from nriqa.models.released import SUBDIR as RELEASED_SUBDIR
from nriqa.paths import atomic_path, file_sha256
from nriqa.progress import progress_bar
from nriqa.quality.base import Card, WeightFile
from nriqa.quality.kit import register_kit_models
from nriqa.quality.registry import card, cards, loss_mapping


def _rng(r) -> str:
    return "-" if r is None else f"{r[0]}..{r[1]}"


def card_dict(c: Card) -> dict:
    return {
        "name": c.name, "mode": c.mode, "higher_better": c.higher_better,
        "score_range": list(c.score_range) if c.score_range else None,
        "loss": loss_mapping(c), "differentiable": c.differentiable, "min_size": c.min_size,
        "video": c.video, "backend": c.backend, "present": c.present, "description": c.description,
        "weights": [{"filename": w.filename, "path": str(w.path), "present": w.present, "url": w.url,
                     "size_bytes": w.size_bytes, "sha256": w.sha256} for w in c.weights],
    }


def card_table(cs: list[Card]) -> str:
    """Plain-text table: one row per measure."""
    head = ("name", "mode", "better", "range", "loss", "diff", "min", "video", "weights", "backend")
    rows = [head]
    for c in cs:
        wt = "none" if not c.weights else ("present" if c.present else f"MISSING {len(c.missing)}/{len(c.weights)}")
        rows.append((c.name, c.mode, "higher" if c.higher_better else "lower", _rng(c.score_range),
                     loss_mapping(c), "yes" if c.differentiable else "no", str(c.min_size),
                     "yes" if c.video else "no", wt, c.backend))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


def quality_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nriqa quality", description="Card table of every quality measure.")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--offline", action="store_true", help="only measures whose weights are on disk")
    a = ap.parse_args(argv)
    register_kit_models()  # list the kit-trained models (arch@dataset) whose checkpoints are on disk
    cs = [c for c in cards() if c.present or not a.offline]
    if a.json:
        print(json.dumps([card_dict(c) for c in cs], indent=1))
    else:
        print(card_table(cs))
    return 0


def fetch_file(w: WeightFile, *, progress: bool = True, opener=None) -> Path:
    """Download ``w.url`` to ``w.path`` atomically; verify size/sha256 when known."""
    opener = opener or urllib.request.urlopen
    target = w.path
    with atomic_path(target) as tmp:
        with opener(w.url) as resp, open(tmp, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            bar = None
            if progress:
                bar = progress_bar(total=total, unit="B", unit_scale=True, desc=w.filename, leave=False)
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
        size = tmp.stat().st_size
        if w.size_bytes is not None and size != w.size_bytes:
            raise OSError(f"{w.filename}: downloaded {size} bytes, expected {w.size_bytes}; nothing written")
        if w.sha256 is not None and not file_sha256(tmp).startswith(w.sha256):
            raise OSError(f"{w.filename}: sha256 mismatch; nothing written")
    return target


def released_weight_file(name: str) -> WeightFile:
    """The published checkpoint ``name`` (:data:`nriqa.models.released.RELEASED`) as a :class:`WeightFile`."""
    r = RELEASED[name]
    return WeightFile(r.filename, None, r.url, r.sha256, subdir=RELEASED_SUBDIR, root="nriqa")


def _fetch_released(name: str) -> int:
    w = released_weight_file(name)
    if w.present:
        print(f"{name}: {w.path} present")
        return 0
    print(f"{name}: fetching {w.url} -> {w.path}")
    try:
        fetch_file(w)
    except Exception as e:  # network down, bad size/hash: report
        print(f"{name}: FAILED {w.filename}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def weights_main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    if argv and argv[0] == "fetch":
        ap = argparse.ArgumentParser(prog="python -m nriqa weights fetch",
                                     description="Download the missing weight files of measure(s), or a "
                                                 f"published model checkpoint ({', '.join(RELEASED)}).")
        ap.add_argument("names", nargs="+", metavar="NAME", help="measure or released model whose files to download")
        a = ap.parse_args(argv[1:])
        rc = 0
        for name in a.names:
            if name in RELEASED:   # a published generator / SpyNet checkpoint (nriqa.models.released)
                rc = max(rc, _fetch_released(name))
                continue
            try:
                c = card(name)
            except ValueError as e:
                print(str(e), file=sys.stderr)
                return 2
            if not c.missing:
                print(f"{c.name}: all weight files present")
            for w in c.missing:
                if not w.url.startswith(("https://", "http://")):
                    print(f"{c.name}: {w.filename} cannot be downloaded; create it with: {w.url}", file=sys.stderr)
                    rc = 1
                    continue
                print(f"{c.name}: fetching {w.url} -> {w.path}")
                try:
                    fetch_file(w)
                except Exception as e:  # network down, bad size/hash: report, keep going
                    print(f"{c.name}: FAILED {w.filename}: {type(e).__name__}: {e}", file=sys.stderr)
                    rc = 1
        return rc
    ap = argparse.ArgumentParser(prog="python -m nriqa weights",
                                 description="Which weight files are present/missing, and where each goes. "
                                             "'python -m nriqa weights fetch NAME' downloads a measure's files "
                                             "(the only command that downloads).")
    ap.add_argument("names", nargs="*", help="measures to show (default: all)")
    ap.add_argument("--json", action="store_true", help="machine-readable output: measure -> its weight files")
    a = ap.parse_args(argv)
    register_kit_models()  # as in quality_main
    try:
        cs = [card(n) for n in a.names] if a.names else cards()
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps({c.name: card_dict(c)["weights"] for c in cs}, indent=1))
        return 0
    for c in cs:
        state = "no weight files needed" if not c.weights else ("present" if c.present else "MISSING")
        print(f"{c.name}: {state}")
        for w in c.weights:
            print(f"    [{'x' if w.present else ' '}] {w.filename}  {w.path}")
    return 0
