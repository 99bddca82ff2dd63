"""The run's key findings as data: each notebook records them in ``<RUN_ROOT>/<profile>/summary.json``,
and FINDINGS.md's findings block is rendered from that file (never typed by hand).

    record(cfg, "02_finetuning", {"gains": study.describe_gains(table),
                                  "best": finding("largest mean panel gain", 0.012, fmt="pct", n=9)})
    render_findings(load_summary(cfg))          # Markdown
    python -m nriqa findings --profile demo --write FINDINGS.md

A section is one notebook's findings (``{"01_baseline": {...}, ...}``); :func:`record` replaces
the keys it is given and keeps the others, under a lock, and writes the file atomically. A value
is one of:

- a number or a :func:`finding` (``{"what", "value", "fmt", "unit", "n"}``): a measured number
  with what it is and how many things it summarises;
- a string: sentences the notebook rendered from its tables (``describe_*``), one per line;
- a list of verdict rows (:func:`verdict_rows`: the text cells of :func:`nriqa.analysis.claims.rows`): a table.

Keys starting with ``_`` (``_seed``) are bookkeeping, not rendered as findings. Section ``manifest``
(:func:`nriqa.study.manifest.manifest`: commit, versions, threads, device) is written with every record.

``summary.json`` holds only what the commit and profile decide, so two runs of them give the same file
on any machine; what differs from run to run (the notebooks' wall times, when they ran) goes to
``timing.json`` beside it (:func:`record_timing`), rendered with the findings.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from nriqa.analysis import claims
from nriqa.errors import ConfigError, UserError
from nriqa.paths import atomic_write_text, figures_dir, runs_dir

from .manifest import differences, manifest, manifest_line
from .text import pct

try:
    import fcntl
except ImportError:  # Windows: atomic writes still, without the read-merge-write lock
    fcntl = None

SUMMARY_FILE = "summary.json"
TIMING_FILE = "timing.json"
START, END = "<!-- findings:start -->", "<!-- findings:end -->"
#: what FINDINGS.md's block says before any demo run has written figures/summary.json (no digits)
PLACEHOLDER = ("_The findings are rendered here by `make demo` (`python -m nriqa findings --profile demo "
               "--write FINDINGS.md`) from the run's `summary.json`; no run has recorded them yet._")

#: section -> heading in the rendered findings (unknown sections use their own name)
TITLES = {
    "run": "The run",
    "manifest": "Manifest (what the numbers depend on besides the profile)",
    "01_baseline": "Baselines (notebook 01)",
    "02_finetuning": "Fine-tuning with one extra term (notebook 02)",
    "03_artifacts": "Artifacts (notebook 03)",
    "04_weighting": "Loss weights from gradient norms (notebook 04)",
    "05_adversarial": "Adversarial set-ups (notebook 05)",
    "06_asymmetry": "Assessment vs optimization (notebook 06)",
}


# --------------------------------------------------------------------------- values

def finding(what: str, value: float, *, fmt: str = ".3g", unit: str = "", n: int | str | None = None) -> dict:
    """A measured number with what it is. ``fmt``: a format spec (``"+.2f"``) or ``"pct"`` (a
    fraction shown as a signed percentage); ``n``: how many things it summarises (clips, runs, measures)."""
    if not isinstance(what, str) or not what.strip():
        raise UserError(f"finding(): 'what' must name the number, got {what!r}")
    out = {"what": what, "value": _number(value, what), "fmt": fmt, "unit": unit}
    if n is not None:
        out["n"] = n if isinstance(n, str) else int(n)
    return out


def verdict_rows(verdicts: Iterable[Any]) -> list[dict]:
    """Verdicts (:class:`nriqa.analysis.claims.Verdict`, or rows already) as JSON rows of text cells
    ``{claim, effect, interval, n, rule, verdict}``."""
    return [dict(v) if isinstance(v, Mapping) else claims.rows([v])[0] for v in verdicts]


def _number(value: Any, what: str) -> float | None:
    if value is None:  # recorded as not measured
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UserError(f"finding {what!r}: value {value!r} is not a number") from None
    return x if math.isfinite(x) else None  # JSON has no NaN: not measured -> null


def _clean(section: str, key: str, value: Any) -> Any:
    """``value`` checked and made JSON-safe (a clear error names the section and key otherwise)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) or type(value).__module__ == "numpy":
        return _number(value, f"{section}.{key}")
    if isinstance(value, Mapping):
        if "what" in value and "value" in value:
            return {**value, "value": _number(value["value"], value["what"])}
        return {str(k): _clean(section, f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if value and not isinstance(value[0], (Mapping, str, int, float)):
            value = verdict_rows(value)
        return [_clean(section, f"{key}[{i}]", v) for i, v in enumerate(value)]
    raise UserError(f"summary {section}.{key}: cannot record a {type(value).__name__}; record numbers, "
                    "strings, finding(...) or verdict rows")


# --------------------------------------------------------------------------- the file

def summary_path(cfg: Mapping[str, Any]) -> Path:
    """``<RUN_ROOT>/<profile>/summary.json`` of a resolved profile (``nriqa.study.runs.profile``)."""
    return Path(cfg.get("run_root") or runs_dir()) / str(cfg["name"]) / SUMMARY_FILE


def read_summary(path: str | os.PathLike) -> dict:
    """The summary at ``path`` (``{}`` when there is none); a damaged file is a clear error."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path} is not a readable summary ({err}); delete it and re-run the "
                          "notebooks to record it again") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a summary is a JSON object of sections, got {type(data).__name__}")
    return data


def load_summary(cfg: Mapping[str, Any]) -> dict:
    """The recorded summary of a resolved profile."""
    return read_summary(summary_path(cfg))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold ``<path>.lock`` (an OS lock) while reading, merging and writing ``path``: two notebooks
    that record at once each keep their section."""
    if fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def record(cfg: Mapping[str, Any], section: str, values: Mapping[str, Any]) -> Path:
    """Merge ``values`` into ``section`` of the profile's summary (other sections and this
    section's other keys are kept) and write it atomically; returns the file."""
    if not isinstance(section, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", section):
        raise UserError(f"summary section {section!r}: use letters, digits, '_', '.', '-' (e.g. '01_baseline')")
    if not isinstance(values, Mapping):
        raise UserError(f"summary {section}: values must be a dict, got {type(values).__name__}")
    clean = {str(k): _clean(section, str(k), v) for k, v in values.items()}
    path = summary_path(cfg)
    with _locked(path):
        data = read_summary(path)
        sec = dict(data.get(section) or {})
        sec.update(clean)
        sec["_seed"] = cfg.get("seed")
        data[section] = sec
        if "device" in cfg:   # a resolved profile (nriqa.study.runs.profile)
            data["manifest"] = manifest(cfg)
        atomic_write_text(path, json.dumps(data, indent=1) + "\n")
    return path


def record_timing(folder: str | os.PathLike, seconds: Mapping[str, float]) -> Path:
    """``<folder>/timing.json``: section ``run`` with the notebooks' total wall time (from
    ``{notebook: seconds}``), their names and when the run ended. Kept out of ``summary.json``: a
    wall time is the machine's, not the commit's. Returns the file."""
    path = Path(folder) / TIMING_FILE
    run = {"notebook_time": finding("time to execute the notebooks of the last `nriqa run`",
                                    sum(seconds.values()) / 60, fmt=".1f", unit="min", n=len(seconds)),
           "notebooks": "notebooks executed: " + ", ".join(seconds),
           "_seconds": {k: round(float(v), 1) for k, v in seconds.items()},
           "_recorded": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    atomic_write_text(path, json.dumps({"run": run}, indent=1) + "\n")
    return path


def read_timing(summary_file: str | os.PathLike) -> dict:
    """The ``timing.json`` beside ``summary_file`` (``{}`` when there is none)."""
    return read_summary(Path(summary_file).with_name(TIMING_FILE))


# --------------------------------------------------------------------------- rendering

def format_value(value: float | None, fmt: str = ".3g", unit: str = "") -> str:
    """One number as the findings show it (``None``: not measured)."""
    if value is None:
        return "not measured"
    text = pct(value) if fmt == "pct" else format(float(value), fmt)
    return f"{text} {unit}".rstrip() if unit else text


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _render_value(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        # an indented line (a describe_* sub-item) becomes a nested bullet
        return [("  " if line[:1].isspace() else "") + f"- {line.strip()}"
                for line in value.splitlines() if line.strip()]
    if isinstance(value, Mapping) and "what" in value:
        n = f" (n = {value['n']})" if value.get("n") is not None else ""
        return [f"- {value['what']}: "
                f"{format_value(value.get('value'), value.get('fmt', '.3g'), value.get('unit', ''))}{n}"]
    if isinstance(value, list) and value and all(isinstance(v, Mapping) and "verdict" in v for v in value):
        return ["", claims.report(value), ""]
    if value is None or isinstance(value, (int, float)):
        return [f"- {key.replace('_', ' ')}: {format_value(value)}"]
    return [f"- {key.replace('_', ' ')}: {_cell(json.dumps(value))}"]


def render_findings(summary: Mapping[str, Any], timing: Mapping[str, Any] | None = None) -> str:
    """Markdown of the recorded findings (and the run's ``timing``, :func:`read_timing`): one heading
    per section (in :data:`TITLES` order, then the others by name), its values in the order they
    were recorded; the manifest as its one line."""
    if not summary:
        return PLACEHOLDER
    summary = {**summary, **(timing or {})}
    if isinstance(summary.get("manifest"), Mapping):
        summary["manifest"] = {"line": manifest_line(recorded=summary["manifest"])}
    order = [s for s in TITLES if s in summary] + sorted(s for s in summary if s not in TITLES)
    out = []
    for section in order:
        values = summary[section] or {}
        title = TITLES.get(section, section)
        seed = values.get("_seed")
        out.append(f"**{title}**" + (f" (seed {seed})" if seed is not None else ""))
        out.append("")
        for key, value in values.items():
            if not key.startswith("_"):
                out += _render_value(key, value)
        out.append("")
    return "\n".join(out).replace("\n\n\n", "\n\n").strip()


def findings_block(text: str) -> str | None:
    """The Markdown between the findings markers of ``text`` (stripped), ``None`` without markers."""
    m = re.search(re.escape(START) + r"\n?(.*?)\n?" + re.escape(END), text, flags=re.S)
    return m.group(1).strip() if m else None


def replace_block(text: str, rendered: str) -> str:
    """``text`` with its findings block replaced by ``rendered``; a clear error without markers."""
    if findings_block(text) is None:
        raise UserError(f"no findings block: the file needs a line {START} and a line {END}")
    return re.sub(re.escape(START) + r".*?" + re.escape(END),
                  lambda _: f"{START}\n{rendered.strip()}\n{END}", text, count=1, flags=re.S)


def write_findings(summary_file: str | os.PathLike, readme: str | os.PathLike | None = None,
                   copy_to: str | os.PathLike | None = None) -> str:
    """Render ``summary_file``; write it into ``readme``'s block and copy the summary to ``copy_to``
    (both optional, both atomic). Returns the rendered Markdown."""
    summary = read_summary(summary_file)
    if not summary:
        raise UserError(f"no findings recorded in {summary_file}: run the notebooks first "
                        "(python -m nriqa run --profile <name>)")
    timing = read_timing(summary_file)
    rendered = render_findings(summary, timing)
    if copy_to is not None:
        atomic_write_text(copy_to, json.dumps(summary, indent=1) + "\n")
        if timing:
            atomic_write_text(Path(copy_to).with_name(TIMING_FILE), json.dumps(timing, indent=1) + "\n")
    if readme is not None:
        readme = Path(readme)
        atomic_write_text(readme, replace_block(readme.read_text(), rendered))
    return rendered


def stale_findings(profile: str, files: Iterable[str | os.PathLike]) -> list[str]:
    """Warnings for each summary in ``files`` (those that exist) whose manifest says its numbers are
    not what this checkout gives with ``profile``: other code, versions, CPU kernels, threads or device
    (:func:`nriqa.study.manifest.differences`); figures/summary.json is what FINDINGS.md shows."""
    from nriqa.compute import resolve_device
    from nriqa.config import load_profile

    cfg = load_profile(profile)
    cfg["device"] = resolve_device(cfg.get("device", "auto"))
    here, out, seen = manifest(cfg), [], set()
    for f in files:
        f = Path(f)
        if f.resolve() in seen or not f.exists():
            continue
        seen.add(f.resolve())
        recorded = read_summary(f).get("manifest")
        if not isinstance(recorded, Mapping):
            out.append(f"{f} records no manifest: which code and versions made it is unknown")
            continue
        out += [f"{f}: {d}" for d in differences(recorded, here)]
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m nriqa findings``: print (or write into README) the findings of a profile's run."""
    ap = argparse.ArgumentParser(prog="python -m nriqa findings",
                                 description="Render the findings recorded in <RUN_ROOT>/<profile>/summary.json "
                                             "as Markdown; --write puts them between the findings markers "
                                             "of a Markdown file (FINDINGS.md) "
                                             "(the demo profile's summary is also copied to figures/summary.json).")
    ap.add_argument("--profile", default="demo", help="profile whose summary.json to render (default: demo)")
    ap.add_argument("--run-root", default=None, help="root of run folders (default: $NRIQA_RUNS, else runs/)")
    ap.add_argument("--write", default=None, metavar="FINDINGS.md",
                    help="Markdown file whose findings block is replaced")
    args = ap.parse_args(argv)
    root = Path(args.run_root).expanduser() if args.run_root else runs_dir()
    src = root / args.profile / SUMMARY_FILE
    copy_to = figures_dir() / SUMMARY_FILE if args.profile == "demo" and args.write else None
    for line in stale_findings(args.profile, [src, figures_dir() / SUMMARY_FILE]):
        print(f"[nriqa findings] warning: {line}", file=sys.stderr)
    rendered = write_findings(src, readme=args.write, copy_to=copy_to)
    print(rendered)
    if args.write:
        print(f"\n[nriqa findings] wrote {args.write}" + (f" and {copy_to}" if copy_to else ""))
    return 0


__all__ = ["record", "record_timing", "read_timing", "finding", "verdict_rows", "summary_path", "read_summary",
           "load_summary", "render_findings", "findings_block", "replace_block", "write_findings", "format_value",
           "START", "END", "PLACEHOLDER"]
