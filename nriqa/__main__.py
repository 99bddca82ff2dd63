"""``python -m nriqa <command> ...`` — the batch entry points.

Commands (each lives next to the code it drives and is imported only when used):

  data        which datasets are available, clip counts and resolutions
  quality     the card table of every quality measure (``--json`` for machines)
  weights     which weight files are present/missing and where they go; ``weights fetch NAME``
  train       train or fine-tune a VSR model from a profile: ``train demo --set train.steps=50``
  train-iqa   train a kit NR-IQA model on the embedded distortion set (or a real IQA dataset)
  eval        evaluate run folders with a quality panel, print a summary, write the CSV
  import-checkpoint  make the authors' released weights the finished baseline run of a profile:
              ``import-checkpoint vrt 001_VRT_videosr_bi_REDS_6frames.pth --profile paper``
  release     train the kit's tiny baselines on the training clips and ship them with their provenance:
              ``release basicvsrpp --profile demo`` (a profile with ``baselines: release`` imports them)
  run         execute the notebooks in order with papermill
  sweep       submit every training run of a profile's study, then its evaluation (slurm or local)
  findings    the findings a run recorded (summary.json) as Markdown (--write README.md puts them into README)

Global flags (before the command): ``--debug`` shows the full traceback of an error
(also ``NRIQA_DEBUG=1``); ``--version`` prints the kit's version.

A user error (unknown profile, key or value, a bad ``--set``, a missing dataset, file or weight
file, a damaged checkpoint, a run folder another trainer holds) prints one line to stderr
(what, where, how to fix) and exits with status 2.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import sys

from nriqa import __version__
from nriqa.compute import set_cpu_threads
from nriqa.errors import UserError, one_line

COMMANDS = {
    "data": ("nriqa.data.cli", "main"),
    "quality": ("nriqa.quality.cli", "quality_main"),
    "weights": ("nriqa.quality.cli", "weights_main"),
    "train": ("nriqa.train.cli", "main"),
    "train-iqa": ("nriqa.iqa.cli", "main"),
    "eval": ("nriqa.analysis.cli", "main"),
    "import-checkpoint": ("nriqa.study.checkpoint_import", "main"),
    "release": ("nriqa.study.kit_release", "main"),
    "findings": ("nriqa.study.summary", "main"),
    "run": ("nriqa.runner", "main"),
    "sweep": ("nriqa.sweep", "main"),
}


@contextlib.contextmanager
def _one_line_usage_errors():
    """While a command parses its arguments, a usage error (an unknown flag, a missing value) is one
    line on stderr, like every other user error, not argparse's usage block; exit status 2."""
    original = argparse.ArgumentParser.error

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
    argparse.ArgumentParser.error = error
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original


def _user_error(err: BaseException) -> bool:
    """Errors whose message is the whole story: nriqa's own, a missing input file (this includes
    ``nriqa.quality.WeightsMissingError`` and ``nriqa.data.LayoutError``)."""
    return isinstance(err, (UserError, FileNotFoundError, NotADirectoryError, IsADirectoryError))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("NRIQA_DEBUG", "").strip().lower() not in {"", "0", "false", "no"}
    while argv and argv[0] == "--debug":
        debug = True
        argv = argv[1:]
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__.replace("``", ""))  # the docstring without its RST markup
        return 0
    if argv[0] in {"--version", "-V"}:
        print(f"nriqa {__version__}")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        close = difflib.get_close_matches(cmd, COMMANDS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        print(f"nriqa: unknown command {cmd!r}; commands: {', '.join(COMMANDS)}.{hint}", file=sys.stderr)
        return 2
    module, func = COMMANDS[cmd]
    try:
        set_cpu_threads()  # threads outside a job: the free cores; checks NRIQA_THREADS / OMP_NUM_THREADS
        with _one_line_usage_errors():
            return int(getattr(importlib.import_module(module), func)(rest) or 0)
    except Exception as err:  # noqa: BLE001 - user errors get one line; everything else its traceback
        if debug or not _user_error(err):
            raise
        print(f"nriqa {cmd}: error: {one_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
