"""``python -m nriqa run``: execute the numbered notebooks in order with papermill.

    python -m nriqa run --profile demo                 # every notebook
    python -m nriqa run --profile demo --only 02,03    # a subset, still in order
    python -m nriqa run -p SEED 1 -p DEVICE cuda       # notebook parameters

Each notebook records its key findings in ``<RUN_ROOT>/<profile>/summary.json`` (the runner adds
the notebooks' times); after a ``demo`` run the runner renders them into FINDINGS.md's findings block
and README's headline block, draws ``figures/claims_scoreboard.png`` and copies the summary to
``figures/summary.json`` (``python -m nriqa findings``).

Executed copies go to ``<RUN_ROOT>/<profile>/notebooks/`` (``RUN_ROOT``: ``--run-root``, else
``$NRIQA_RUNS``, else ``runs/`` of the repository); the run stops at the first failing notebook
and prints the failing cell. A ``-p`` name that no selected notebook's parameters cell defines is
an error before anything runs.

While a notebook runs, one status line in the terminal shows which notebook and its last printed
line (e.g. the run being trained). The kernels see ``NRIQA_BATCH=1``: a headless run, so each
training prints one plain line when it ends instead of a progress bar (``nriqa.progress``; a bar
would be saved in the notebook as a widget stuck at 0 %), and the viewers draw static figures.
Figures are shown inline in the executed copies.

The executed copies hold no path of this machine: the run root reaches the kernels as
``$NRIQA_RUNS`` (the notebooks' ``RUN_ROOT = None`` reads it), a profile file inside the repository
as a path relative to ``notebooks/`` (where the kernels start), one outside it as
``$NRIQA_PROFILE``; papermill's ``input_path``/``output_path`` are written relative to the
repository (``<RUN_ROOT>/...`` for a run root outside it). The kernels are started with CurveZMQ
transport encryption where their kernelspec supports it (ipykernel's, the ``nriqa`` kernel's).
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import re
import shutil
import sys
import time
from pathlib import Path

from .compute import set_cpu_threads
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


def _papermill():
    """papermill, or a ``UserError`` saying how to install it (it is in the ``notebooks`` extra, not a
    dependency of the library)."""
    try:
        import papermill
    except ImportError:
        raise UserError('running the notebooks needs papermill and a Jupyter kernel: pip install "nriqa[notebooks]"'
                        ) from None
    return papermill


def notebook_parameters(book: Path) -> dict[str, dict]:
    """The parameters cell of ``book``: ``{name: {default, inferred_type_name, help}}`` (papermill's
    reading of it, which ``papermill --help-notebook`` prints)."""
    pm = _papermill()

    return dict(pm.inspect_notebook(str(book)))


_PARAMETER_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "list": (list,),
                    "dict": (dict,)}


def parameter_type_ok(value, type_name: str | None) -> bool:
    """Whether ``value`` (parsed from ``-p``) fits a parameters cell's annotation (``int``,
    ``Optional[list]``, ...); an annotation this does not know accepts anything."""
    name = (type_name or "").strip().strip("'\"")
    optional = name.startswith("Optional[") and name.endswith("]")
    if optional:
        name = name[len("Optional["):-1]
    if value is None:
        return optional or name not in _PARAMETER_TYPES
    kinds = _PARAMETER_TYPES.get(name)
    if kinds is None:
        return True
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


def check_parameters(books: list[Path], parameters: dict) -> None:
    """Raise a ``UserError`` (a ``ValueError``) naming every key of ``parameters`` that no notebook in ``books``
    defines in its parameters cell (a typo such as ``SEEED`` would otherwise be injected,
    ignored, and the run would use the default), or whose value does not fit the cell's annotation
    (``-p SEED abc`` for ``SEED: int``): before any notebook runs."""
    known: dict[str, str] = {}
    types: dict[str, str] = {}
    for book in books:
        for name, spec in notebook_parameters(book).items():
            known.setdefault(name, book.name)
            types.setdefault(name, spec.get("inferred_type_name"))
    wrong = [f"-p {k} {v!r} is not {types[k]}" for k, v in parameters.items()
             if k in types and not parameter_type_ok(v, types[k])]
    if wrong:
        raise UserError("; ".join(wrong) + " (the notebooks' parameters cells declare these types)")
    unknown = [k for k in parameters if k not in known]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, list(known), n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise UserError(f"unknown notebook parameter {', '.join(hints)}; the selected notebooks "
                         f"take: {', '.join(sorted(known))}")


_BAR = re.compile(r"\d+/\d+")


class StatusLine:
    """Receives a kernel's stdout/stderr while papermill runs a notebook and keeps one status line
    in the terminal: ``[nriqa run] 02_per_loss_finetuning | training ft-... | train: 40%|... 80/200
    [00:20<00:30]``. On a terminal the line is redrawn in place; elsewhere (a log file, CI) a line
    is printed at most every ``every`` seconds."""

    def __init__(self, label: str, stream=None, every: float = 30.0):
        self.label, self.stream, self.every = label, stream or sys.stdout, every
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.message, self.bar, self.last, self.drawn = "", "", 0.0, False

    def write(self, text: str) -> int:
        for part in re.split(r"[\r\n]+", text):
            part = part.strip()
            if not part:
                continue
            if _BAR.search(part) and ("|" in part or "it/s" in part or "s/it" in part):
                self.bar = part
            else:
                self.message, self.bar = part, ""
        self._draw()
        return len(text)

    def flush(self) -> None:
        pass

    def line(self) -> str:
        return " | ".join(x for x in (f"[nriqa run] {self.label}", self.message, self.bar) if x)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            self.stream.write("\r\033[K" + self.line()[:width])
            self.stream.flush()
            self.drawn = True
        elif force or now - self.last >= self.every:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self.last = now

    def close(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()


@contextlib.contextmanager
def _kernel_environment(extra: dict[str, str] | None = None):
    """What the notebook kernels inherit during a batch run (plus ``extra``), restored afterwards."""
    changes = {
        "NRIQA_BATCH": "1",                     # a headless run: plain progress lines, static viewers
        "TQDM_MININTERVAL": os.environ.get("TQDM_MININTERVAL", "2"),  # a few updates, not one per step
        # figures inline in the executed notebooks, whatever backend the shell exported (Agg)
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        **(extra or {}),
    }
    saved = {k: os.environ.get(k) for k in [*changes, "OMP_NUM_THREADS", "_NRIQA_OMP_SET"]}
    os.environ.update(changes)
    set_cpu_threads()  # the kernel's torch threads (OMP_NUM_THREADS): free cores when it starts
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def kernel_inputs(profile: str, run_root: Path) -> tuple[dict, dict[str, str]]:
    """``(parameters, environment)`` that tell the notebooks the profile and the run root without a
    path of this machine in the executed copy: the run root as ``$NRIQA_RUNS`` (the notebooks'
    ``RUN_ROOT = None`` default reads it); a bundled profile by name; a profile file inside the
    repository relative to ``notebooks/`` (the kernels' working folder), one outside it as
    ``$NRIQA_PROFILE`` (read by the notebooks' ``PROFILE = None`` default)."""
    env = {"NRIQA_RUNS": str(run_root)}
    if Path(profile).suffix not in {".yaml", ".yml"}:
        return {"PROFILE": profile}, env
    path = Path(profile).expanduser().resolve()
    if _inside(path, REPO_ROOT):
        return {"PROFILE": Path(os.path.relpath(path, NOTEBOOKS_DIR)).as_posix()}, env
    return {}, {**env, "NRIQA_PROFILE": str(path)}


def shown_path(path: Path, run_root: Path) -> str:
    """``path`` as an executed notebook records it: relative to the repository, else to the run root
    (``<RUN_ROOT>/smoke/notebooks/...``), else its name."""
    path = Path(path).resolve()
    if _inside(path, REPO_ROOT):
        return path.relative_to(REPO_ROOT).as_posix()
    if _inside(path, Path(run_root).resolve()):
        return "<RUN_ROOT>/" + path.relative_to(Path(run_root).resolve()).as_posix()
    return path.name


def _relative_metadata(target: Path, book: Path, run_root: Path) -> None:
    """papermill's ``input_path``/``output_path`` in the executed copy ``target``: :func:`shown_path`,
    not the absolute paths papermill was given."""
    import nbformat

    if not target.exists():
        return
    nb = nbformat.read(target, as_version=4)
    meta = nb.metadata.get("papermill")
    if meta is None:
        return
    meta["input_path"], meta["output_path"] = shown_path(book, run_root), shown_path(target, run_root)
    nbformat.write(nb, target)


def _kernel_config():
    """nbclient/jupyter_client configuration of the kernels papermill starts: CurveZMQ keys where the
    kernelspec declares support (``KernelManager.transport_encryption = "auto"``, jupyter_client >=
    8.10 with a pyzmq built with CurveZMQ), so ipykernel does not warn "Kernel is running over TCP
    without encryption". That warning is logged by the kernel process itself (ipykernel's
    ``IPKernelApp`` logger, to the kernel's stderr, which is the terminal), where no filter of this
    process reaches it; its cause, unencrypted TCP sockets, is what this removes. Elsewhere (an older
    jupyter_client, no CurveZMQ, a kernelspec without ``supported_encryption``) kernels start as before."""
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    if not (KernelManager.class_traits().get("transport_encryption") and zmq.has("curve")):
        return Config()
    return Config({"KernelManager": {"transport_encryption": "auto"}})


def run_notebooks(profile: str = "demo", only: list[str] | None = None,
                  parameters: dict | None = None, run_root: Path | None = None,
                  kernel_name: str = "python3", status_stream=None) -> list[Path]:
    """Execute notebooks in order; returns the executed copies. Raises on the first failure, and
    before anything runs on an unknown profile or a parameter no selected notebook takes."""
    pm = _papermill()

    from .config import load_profile

    name = str(load_profile(profile)["name"])  # fail fast on an unknown profile, before any notebook starts
    books = list_notebooks(only=only)
    if not books:
        raise FileNotFoundError(f"no numbered notebooks found in {NOTEBOOKS_DIR}")
    check_parameters(books, parameters or {})
    run_root = Path(run_root).expanduser().resolve() if run_root else runs_dir()
    from .study.summary import SUMMARY_FILE, read_summary

    read_summary(run_root / name / SUMMARY_FILE)   # a damaged summary fails now, not in the last cell
    out_dir = run_root / name / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    params, kernel_env = kernel_inputs(profile, run_root)
    params.update(parameters or {})
    config = _kernel_config()
    done, seconds = [], {}
    for book in books:
        target = out_dir / book.name
        t0 = time.time()
        print(f"[nriqa run] {book.name} ...", flush=True)
        status = StatusLine(book.stem, stream=status_stream)
        try:
            with _kernel_environment(kernel_env):
                pm.execute_notebook(str(book), str(target), parameters=params, kernel_name=kernel_name,
                                    cwd=str(NOTEBOOKS_DIR), progress_bar=False, log_output=False,
                                    stdout_file=status, stderr_file=status, config=config)
        except pm.PapermillExecutionError as err:
            status.close()
            _relative_metadata(target, book, run_root)
            print(f"[nriqa run] FAILED in {book.name}, cell {err.exec_count}:\n{err.source}\n"
                  f"{err.ename}: {err.evalue}\nexecuted copy: {target}", file=sys.stderr)
            raise
        status.close()
        _relative_metadata(target, book, run_root)
        seconds[book.stem] = time.time() - t0
        print(f"[nriqa run] {book.name} done in {seconds[book.stem]:.0f} s -> {target}", flush=True)
        done.append(target)
    _record_times(name, run_root, seconds)
    return done


def _record_times(profile: str, run_root: Path, seconds: dict[str, float]) -> None:
    """The run's notebook times in ``<RUN_ROOT>/<profile>/timing.json`` (not in summary.json, whose
    numbers the commit and profile alone decide)."""
    from .study.summary import record_timing

    record_timing(Path(run_root) / profile, seconds)


def render_findings_into_readme(profile: str, run_root: Path | None = None,
                                readme: Path = REPO_ROOT / "FINDINGS.md") -> Path | None:
    """After a demo run: FINDINGS.md's findings block (between ``<!-- findings:start/end -->``), the
    headline block of the README.md beside it (``<!-- headline:start/end -->``, where it has one),
    ``figures/claims_scoreboard.png`` and ``figures/summary.json``, rendered from
    ``<RUN_ROOT>/demo/summary.json``. Other profiles, or a FINDINGS.md without the block (an installed
    package), leave them alone. Returns the FINDINGS.md written."""
    from .paths import figures_dir
    from .study.summary import HEADLINE_END, HEADLINE_START, SUMMARY_FILE, findings_block, write_findings

    if profile != "demo" or not readme.exists() or findings_block(readme.read_text()) is None:
        return None
    front = readme.with_name("README.md")
    targets = [readme] + ([front] if front != readme and front.exists()
                          and findings_block(front.read_text(), HEADLINE_START, HEADLINE_END) is not None else [])
    root = Path(run_root).expanduser().resolve() if run_root else runs_dir()
    write_findings(root / profile / SUMMARY_FILE, readme=targets, copy_to=figures_dir() / SUMMARY_FILE,
                   figures=figures_dir())
    return readme


def build_parser() -> argparse.ArgumentParser:
    """The ``run`` command's arguments (its ``--help`` is the module docstring without RST markup)."""
    ap = argparse.ArgumentParser(prog="python -m nriqa run", description=__doc__.replace("``", ""),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="demo", help="bundled profile name (demo, smoke, paper) or a YAML path")
    ap.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 02,03")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                    metavar=("KEY", "VALUE"), help="notebook parameter (value parsed as YAML)")
    ap.add_argument("--run-root", default=None,
                    help="root of run folders (default: $NRIQA_RUNS, else runs/ of the repository)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    params = {k: _parse_value(k, v) for k, v in args.parameter}
    # argument errors (nriqa.errors.UserError: python -m nriqa prints one line, exits 2) before any notebook runs
    from .config import load_profile

    load_profile(args.profile)
    only = args.only.split(",") if args.only else None
    check_parameters(list_notebooks(only=only), params)
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
    from .study.runs import figure_dir
    from .study.runs import profile as load

    written = render_findings_into_readme(args.profile, args.run_root)
    if written:
        print(f"[nriqa run] findings rendered into {written} (and README's headline), "
              "figures/claims_scoreboard.png and figures/summary.json")
    figs = figure_dir(load(args.profile, run_root=args.run_root))
    print(f"[nriqa run] all notebooks done in {time.time() - t0:.0f} s; figures in {figs}")
    for f in sorted(figs.glob("*.png")):
        print(f"  {f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
