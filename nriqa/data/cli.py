"""``python -m nriqa data``: which datasets are available, with clip counts and resolutions.

The embedded dataset is always listed (decoded and cached on first use). Folder datasets are listed
when a root is given (``--vimeo90k DIR``, ``--reds DIR``, ``--vid4 DIR``, or ``--root DIR`` with
``--source NAME``) or set in ``$NRIQA_VIMEO90K`` / ``$NRIQA_REDS`` / ``$NRIQA_VID4``.

A listed folder dataset is checked frame by frame first (readable, complete images; one size per
clip; its own LR frames as many as HR and LR x scale == HR; ``--decode`` decodes every frame too):
a dataset that fails gets a ``!`` row naming the first bad file, and the exit status is 1.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter

from nriqa.data.embedded import SPLITS, embedded_clips, source_split
from nriqa.data.factory import dataset_root
from nriqa.data.folders import DATASETS, open_dataset


def _embedded_rows() -> list[tuple[str, str, int, str]]:
    clips = embedded_clips("all", progress=True)
    rows = []
    for split in SPLITS[:2]:
        chosen = [c for c in clips if source_split(c.source) == split]
        sizes = Counter(f"{c.size[0]}x{c.size[1]}" for c in chosen)
        frames = sum(c.num_frames for c in chosen)
        sources = len({c.source for c in chosen})
        res = ", ".join(f"{s} ({n})" for s, n in sorted(sizes.items()))
        rows.append((f"embedded/{split}", f"{sources} sources, {frames} frames", len(chosen), res))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nriqa data", description=__doc__.splitlines()[0].replace("``", ""))
    parser.add_argument("--root", help="root folder of the dataset named by --source")
    parser.add_argument("--source", choices=sorted(DATASETS), help="which folder dataset --root holds")
    for name in DATASETS:
        parser.add_argument(f"--{name}", metavar="DIR", help=f"root of the {name} dataset")
    parser.add_argument("--scale", type=int, default=4, help="HR / LR size ratio the LR folders must have")
    parser.add_argument("--decode", action="store_true",
                        help="decode every frame (slow) instead of reading headers and checking file ends")
    args = parser.parse_args(argv)
    if args.root and not args.source:
        parser.error("--root needs --source (vimeo90k, reds or vid4)")

    print("Dataset           Clips  Content                      HR resolution HxW (clips)")
    for name, content, n, res in _embedded_rows():
        print(f"{name:<17} {n:>5}  {content:<28} {res}")
    status = 0
    for name in DATASETS:
        given = getattr(args, name) or (args.root if args.source == name else None)
        root = dataset_root(name, given)
        if root is None:
            print(f"{name:<17}     -  not configured (--{name} DIR or $NRIQA_{name.upper()})")
            continue
        try:
            ds = open_dataset(name, root, scale=args.scale)
            info = ds.check(decode=args.decode, progress=sys.stderr.isatty())
        except (OSError, ValueError) as e:
            print(f"{name:<17}     !  {e}", flush=True)
            status = 1
            continue
        clips = sum(info[s] for s in ds.splits)
        counts = ", ".join(f"{s} {info[s]}" for s in ds.splits)
        sizes = ", ".join(f"{s} ({n})" for s, n in sorted(info["hr_sizes"].items()))
        lr = ", ".join(f"{d}x{ds.scale} {n}/{clips}" for d, n in info["lr"].items()) or "none (made on the fly)"
        print(f"{name:<17} {clips:>5}  {counts:<28} {sizes} ({info['frames_per_clip']} frames/clip; "
              f"own LR: {lr})  {root}")
    return status


if __name__ == "__main__":
    sys.exit(main())
