"""Run a command with one CPU-bound process beside it (``make test``'s reproducibility pass):

    python tests/beside_busy.py python -m nriqa run --profile smoke

The busy process (``while True: pass``) starts first and is killed when the command ends, however it
ends; the exit status is the command's.
"""
from __future__ import annotations

import subprocess
import sys


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python tests/beside_busy.py COMMAND [ARG ...]", file=sys.stderr)
        return 2
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        return subprocess.call(argv)
    finally:
        busy.kill()
        busy.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
