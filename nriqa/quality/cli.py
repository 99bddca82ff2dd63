"""``python -m nriqa quality`` (card table, with a legend of its columns) and ``python -m nriqa weights``
(presence / fetch).

The card table lists every registered measure and the kit's own NR-IQA models (``<arch>@embedded-a``,
``<arch>@embedded-b``: the two halves of the embedded distortion set) even before any run has trained
them (:func:`untrained_kit_cards`); its ``trained on`` column is each card's ``training_data``.

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

from nriqa.models.iqa_nets import ARCHS
from nriqa.models.released import RELEASED
from nriqa.models.released import SUBDIR as RELEASED_SUBDIR
from nriqa.paths import atomic_path, file_sha256, weights_dir
from nriqa.progress import progress_bar
from nriqa.quality.base import Card, WeightFile
from nriqa.quality.kit import kit_card, register_kit_models
from nriqa.quality.registry import card, cards, loss_mapping


def _rng(r) -> str:
    return "-" if r is None else f"{r[0]}..{r[1]}"


def card_dict(c: Card) -> dict:
    return {
        "name": c.name, "mode": c.mode, "higher_better": c.higher_better,
        "score_range": list(c.score_range) if c.score_range else None,
        "loss": loss_mapping(c), "differentiable": c.differentiable, "min_size": c.min_size,
        "video": c.video, "backend": c.backend, "present": c.present, "description": c.description,
        "training_data": list(c.training_data),
        "weights": [{"filename": w.filename, "path": str(w.path), "present": w.present, "url": w.url,
                     "size_bytes": w.size_bytes, "sha256": w.sha256} for w in c.weights],
    }


#: the kit's NR-IQA models are trained on these data sets (``<arch>@embedded-a``: loss terms,
#: ``<arch>@embedded-b``: judges; :data:`nriqa.data.iqa_sets.HALVES`)
KIT_DATASETS = ("embedded-a", "embedded-b")
NOT_TRAINED = "not trained yet"
#: what the card table's columns say (printed under it)
LEGEND = """columns:
  name     the measure's registry name: nriqa.quality.create(name); <arch>@embedded-a / -b is a kit NR-IQA
           model trained on half a (loss terms) / half b (judges) of the embedded distortion set
  mode     FR: full-reference (compares with the ground truth), NR: no-reference (the image alone)
  better   which way the raw score is better
  range    the raw score's range (-: unbounded)
  loss     how the score s becomes a lower-is-better loss term
  diff     yes: differentiable, so usable as a loss term; no: a judge only
  min      the smallest image side (pixels) it accepts
  video    yes: it scores clips (B, T, C, H, W), not single frames
  weights  none: it needs no weight files; present: its files are on this machine;
           MISSING k/n: k of its n files are missing (python -m nriqa weights NAME says where they go,
           python -m nriqa weights fetch NAME downloads them);
           not trained yet: a kit model no run has trained; notebook 02 trains it
           (or python -m nriqa train-iqa ARCH@embedded-a --profile demo);
           in kit set KEY: a kit model trained for another profile's set (NRIQA_KIT_SET=KEY uses it)
  trained on  ids of the quality data its parameters were fitted on (Card.training_data; -: none, or
           none stated): a judge sharing one with a loss term does not judge that term's runs
  backend  the code that computes it"""


def untrained_kit_cards(cs: list[Card] | None = None) -> list[Card]:
    """Cards of the kit NR-IQA models (``<arch>@embedded-a`` and ``<arch>@embedded-b`` per
    :data:`nriqa.models.iqa_nets.ARCHS`) missing from ``cs`` (default: the registry): no run has installed
    them in the active kit set yet.
    Listed so that a table of the measures names them before notebook 02 (or ``python -m nriqa train-iqa``)
    trains them; their ``present`` is False."""
    names = {c.name for c in (cards() if cs is None else cs)}
    return [kit_card(f"{arch}@{d}") for arch in ARCHS for d in KIT_DATASETS if f"{arch}@{d}" not in names]


def _kit_status(name: str) -> str:
    """``not trained yet``, or ``in kit set KEY`` when another kit set than the active one holds ``name``."""
    sets = sorted(p.parent.name for p in (weights_dir() / "kit").glob(f"*/{name}.pt"))
    return f"in kit set {', '.join(sets)}" if sets else NOT_TRAINED


def card_table(cs: list[Card], untrained: list[Card] = ()) -> str:
    """Plain-text table: one row per measure, then the ``untrained`` kit models (``not trained yet``)."""
    head = ("name", "mode", "better", "range", "loss", "diff", "min", "video", "weights", "trained on", "backend")
    rows = [head]
    waiting = {c.name for c in untrained}
    for c in [*cs, *untrained]:
        wt = "none" if not c.weights else ("present" if c.present else f"MISSING {len(c.missing)}/{len(c.weights)}")
        wt = _kit_status(c.name) if c.name in waiting else wt
        rows.append((c.name, c.mode, "higher" if c.higher_better else "lower", _rng(c.score_range),
                     loss_mapping(c), "yes" if c.differentiable else "no", str(c.min_size),
                     "yes" if c.video else "no", wt, "+".join(c.training_data) or "-", c.backend))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


def quality_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nriqa quality", description="Card table of every quality measure.")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--offline", action="store_true", help="only measures whose weights are on disk")
    a = ap.parse_args(argv)
    register_kit_models()  # list the kit-trained models (arch@dataset) whose checkpoints are on disk
    cs = [c for c in cards() if c.present or not a.offline]
    untrained = [] if a.offline else untrained_kit_cards()
    if a.json:
        waiting = [{**card_dict(c), "status": f"{_kit_status(c.name)}: trained by notebook 02 / "
                    f"python -m nriqa train-iqa {c.name}"} for c in untrained]
        print(json.dumps([card_dict(c) for c in cs] + waiting, indent=1))
    else:
        print(card_table(cs, untrained))
        print()
        print(LEGEND)
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
