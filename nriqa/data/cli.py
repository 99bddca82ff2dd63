"""``python -m nriqa data``: which datasets are available, with clip counts and resolutions.

The embedded dataset is always listed (decoded and cached on first use). Folder datasets are listed
when a root is given (``--vimeo90k DIR``, ``--reds DIR``, ``--vid4 DIR``, or ``--root DIR`` with
``--source NAME``) or set in ``$NRIQA_VIMEO90K`` / ``$NRIQA_REDS`` / ``$NRIQA_VID4``.
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
    parser = argparse.ArgumentParser(prog="python -m nriqa data", description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="root folder of the dataset named by --source")
    parser.add_argument("--source", choices=sorted(DATASETS), help="which folder dataset --root holds")
    for name in DATASETS:
        parser.add_argument(f"--{name}", metavar="DIR", help=f"root of the {name} dataset")
    args = parser.parse_args(argv)
    if args.root and not args.source:
        parser.error("--root needs --source (vimeo90k, reds or vid4)")

    print("Dataset           Clips  Content                      HR resolution (clips)")
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
            info = open_dataset(name, root).describe()
        except (OSError, ValueError) as e:
            print(f"{name:<17}     !  {e}", flush=True)
            status = 1
            continue
        counts = ", ".join(f"{s} {info[s]}" for s in open_dataset(name, root).splits)
        print(f"{name:<17} {'':>5}  {counts:<28} {info.get('hr_size', '?')} "
              f"({info.get('frames_per_clip', '?')} frames/clip)  {root}")
    return status


if __name__ == "__main__":
    sys.exit(main())
