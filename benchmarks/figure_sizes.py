"""Is every figure readable at README width? Pixel size and smallest font of each PNG in a folder.

    python benchmarks/figure_sizes.py                 # figures/
    python benchmarks/figure_sizes.py runs/smoke/figures --min-pt 9

A font size cannot be read back from pixels, so :func:`nriqa.viz.save_figure` writes it into the
PNG when it saves a figure (text chunks ``nriqa:min_pt`` and ``nriqa:display_pt``, from
:func:`nriqa.viz.text_sizes`): ``min_pt`` is the smallest nominal font (pt; JupyterLab at 100 %
shows about that), ``display_pt`` the smallest at README width (the PNG shown at most 800 CSS px
wide). A PNG saved before save_figure recorded them reads ``-``. Prints a markdown table: name,
pixel size, width shown in the README, both font sizes, and ``ok`` where ``display_pt >= --min-pt``.
Exits 1 when a figure with recorded sizes is below ``--min-pt`` (with ``--check``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def rows(folder: Path) -> list[dict]:
    """One dict per ``*.png`` of ``folder`` (sorted): ``name, width, height, shown, min_pt, display_pt``
    (the font sizes NaN where the PNG does not record them)."""
    from PIL import Image

    from nriqa.viz import README_PX

    out = []
    for path in sorted(folder.glob("*.png")):
        with Image.open(path) as im:
            w, h = im.size
            text = getattr(im, "text", {}) or {}
        out.append({"name": path.name, "width": w, "height": h, "shown": min(w, README_PX),
                    "min_pt": float(text.get("nriqa:min_pt", "nan")),
                    "display_pt": float(text.get("nriqa:display_pt", "nan"))})
    return out


def table(found: list[dict], min_pt: float) -> str:
    """The markdown table of :func:`rows`."""
    def pt(v: float) -> str:
        return "-" if v != v else f"{v:.1f}"

    lines = ["| figure | pixels | shown in README (px) | smallest font (pt) | at README width (pt) | >= "
             f"{min_pt:g} pt |", "|---|---|---|---|---|---|"]
    for r in found:
        ok = "-" if r["display_pt"] != r["display_pt"] else ("ok" if r["display_pt"] >= min_pt else "TOO SMALL")
        lines.append(f"| {r['name']} | {r['width']}x{r['height']} | {r['shown']} | {pt(r['min_pt'])} | "
                     f"{pt(r['display_pt'])} | {ok} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", default=str(REPO / "figures"), help="folder of PNG figures")
    ap.add_argument("--min-pt", type=float, default=9.0, help="smallest readable font at README width (pt)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a figure is below --min-pt")
    args = ap.parse_args(argv)
    found = rows(Path(args.folder))
    if not found:
        print(f"no PNG in {args.folder}", file=sys.stderr)
        return 1
    print(table(found, args.min_pt))
    small = [r["name"] for r in found if r["display_pt"] < args.min_pt]  # NaN compares False
    return 1 if args.check and small else 0


if __name__ == "__main__":
    sys.exit(main())
