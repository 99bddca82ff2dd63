"""``python -m nriqa run``: execute the numbered notebooks in order with papermill.

    python -m nriqa run --profile demo                 # every notebook
    python -m nriqa run --profile demo --only 02,03    # a subset, still in order
    python -m nriqa run -p SEED 1 -p DEVICE cuda       # notebook parameters

Executed copies go to ``<RUN_ROOT>/<profile>/notebooks/``; the run stops at the first failing
notebook and prints the failing cell.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .errors import UserError
from .paths import REPO_ROOT, runs_dir

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def list_notebooks(folder: Path = NOTEBOOKS_DIR, only: list[str] | None = None) -> list[Path]:
    """Numbered notebooks (``NN_name.ipynb``) in order; ``only`` keeps those whose number or name
    prefix is listed (e.g. ``["02", "03"]``)."""
    books = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = [o.strip() for o in only if o.strip()]
        unknown = [w for w in wanted if not any(p.name.startswith(w) for p in books)]
        if unknown:
            raise UserError(f"--only {','.join(unknown)} matches no notebook in {folder}; "
                            f"have: {[p.name for p in books]}")
        books = [p for p in books if any(p.name.startswith(w) for w in wanted)]
    return books


def _parse_value(key: str, raw: str):
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as err:
        why = " ".join(str(getattr(err, "problem", None) or err).split())
        raise UserError(f"-p {key} {raw!r}: the value is not valid YAML ({why}); quote text, write lists "
                        "as [a, b]") from None


def run_notebooks(profile: str = "demo", only: list[str] | None = None,
                  parameters: dict | None = None, run_root: Path | None = None,
                  kernel_name: str = "python3") -> list[Path]:
    """Execute notebooks in order; returns the executed copies. Raises on the first failure."""
    import papermill as pm

    from .config import load_profile

    load_profile(profile)  # fail fast on an unknown profile, before any notebook starts
    os.environ.setdefault("NRIQA_STATIC", "1")  # widgets draw static figures in batch runs
    os.environ.setdefault("MPLBACKEND", "Agg")
    run_root = Path(run_root or runs_dir())
    out_dir = run_root / profile / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"PROFILE": profile, "RUN_ROOT": str(run_root)}
    params.update(parameters or {})
    books = list_notebooks(only=only)
    if not books:
        raise FileNotFoundError(f"no numbered notebooks found in {NOTEBOOKS_DIR}")
    done = []
    for book in books:
        target = out_dir / book.name
        t0 = time.time()
        print(f"[nriqa run] {book.name} ...", flush=True)
        try:
            pm.execute_notebook(str(book), str(target), parameters=params, kernel_name=kernel_name,
                                cwd=str(NOTEBOOKS_DIR), progress_bar=False, log_output=False)
        except pm.PapermillExecutionError as err:
            print(f"[nriqa run] FAILED in {book.name}, cell {err.exec_count}:\n{err.source}\n"
                  f"{err.ename}: {err.evalue}\nexecuted copy: {target}", file=sys.stderr)
            raise
        print(f"[nriqa run] {book.name} done in {time.time() - t0:.0f} s -> {target}", flush=True)
        done.append(target)
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nriqa run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="demo", help="bundled profile name (demo, smoke, paper)")
    ap.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 02,03")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                    metavar=("KEY", "VALUE"), help="notebook parameter (value parsed as YAML)")
    ap.add_argument("--run-root", default=None, help="root of run folders (default ./runs)")
    args = ap.parse_args(argv)
    params = {k: _parse_value(k, v) for k, v in args.parameter}
    # argument errors (nriqa.errors.UserError: python -m nriqa prints one line, exits 2) before any notebook runs
    from .config import load_profile

    load_profile(args.profile)
    only = args.only.split(",") if args.only else None
    list_notebooks(only=only)
    t0 = time.time()
    try:
        run_notebooks(args.profile, only=only, parameters=params,
                      run_root=Path(args.run_root) if args.run_root else None)
    except Exception as err:  # noqa: BLE001 - report and exit non-zero
        if not err.__class__.__name__ == "PapermillExecutionError":
            print(f"[nriqa run] {err}", file=sys.stderr)
        return 1
    # imported here, not at the top: the study pulls in torch and pandas, which ``--help`` and a
    # failed run never need
    from .study.runs import figure_dir, profile as load

    figs = figure_dir(load(args.profile, run_root=args.run_root))
    print(f"[nriqa run] all notebooks done in {time.time() - t0:.0f} s; figures in {figs}")
    for f in sorted(figs.glob("*.png")):
        print(f"  {f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
