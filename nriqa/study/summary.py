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

What is rendered from the file: FINDINGS.md's block (:func:`render_findings`: the claims scoreboard
first, then per notebook a one-sentence summary, its numbers and its verdict tables, each table's rule
printed once), README's headline block (:func:`render_headline`: a few sentences, each naming its
notebook) and ``figures/claims_scoreboard.png`` (:func:`scoreboard`, drawn by
:func:`nriqa.viz.plots.claims_scoreboard`). All three are composed from the recorded rows, so a summary
written by an older notebook renders too.

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
from nriqa.paths import REPO_ROOT, atomic_write_text, figures_dir, runs_dir

from .manifest import differences, manifest, manifest_line
from .text import pct

try:
    import fcntl
except ImportError:  # Windows: atomic writes still, without the read-merge-write lock
    fcntl = None

SUMMARY_FILE = "summary.json"
TIMING_FILE = "timing.json"
START, END = "<!-- findings:start -->", "<!-- findings:end -->"
#: README's block of headline sentences (:func:`render_headline`)
HEADLINE_START, HEADLINE_END = "<!-- headline:start -->", "<!-- headline:end -->"
SCOREBOARD = "claims_scoreboard"          # figures/claims_scoreboard.png (and .svg)
#: how long the demo's notebooks should take on a 2-core CPU (README); the timing line is read against it
DEMO_TARGET_MIN = 20
#: what FINDINGS.md's block says before any demo run has written figures/summary.json (no digits)
PLACEHOLDER = ("_The findings are rendered here by `make demo` (`python -m nriqa findings --profile demo "
               "--write FINDINGS.md`) from the run's `summary.json`; no run has recorded them yet._")
HEADLINE_PLACEHOLDER = ("_The headline findings are rendered here by `make demo` from the run's `summary.json`; "
                        "no run has recorded them yet._")

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

#: claim id -> what the claim says (paper A: Kashkarov et al. 2024, NR-IQA methods as perceptual losses;
#: paper B: Zhang et al. 2025, the asymmetry between optimization and assessment). Each is decided by the one
#: primary row its notebook records (``primary: true``, ``id``), the contrast the profile's
#: ``verdicts.primary`` names (nriqa.analysis.claims).
CLAIMS = {
    "A1": "naive NR-IQA fine-tuning raises the held-out NR-IQA judges",
    "A2": "an LPIPS-type measure judges NR-only fine-tunes worse than the baseline",
    "A3": "adding LPIPS to an NR-IQA term lowers its artifacts",
    "A4": "naive NR-IQA fine-tuning adds visible artifacts (or stays artifact-free)",
    "B1": "a measure that assesses well need not optimize well",
    "B2": "the discriminator kind decides fidelity (patch-level over vanilla)",
    "B3": "discriminators transfer little to NR-IQA",
}
#: the finding a section's one-sentence summary leads with (else its first finding)
PRIMARY = {"02_finetuning": "largest_held_out_gain"}
#: the verdicts in the order the scoreboard counts them
VERDICT_ORDER = (claims.AGREES, claims.DISAGREES, claims.EQUIVALENT, claims.INCONCLUSIVE)


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


def _is_finding(value: Any) -> bool:
    return isinstance(value, Mapping) and "what" in value and "value" in value


def _is_verdicts(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) and "verdict" in v for v in value)


def _finding_text(value: Mapping[str, Any]) -> str:
    n = f" (n = {value['n']})" if value.get("n") is not None else ""
    return f"{value['what']}: {format_value(value.get('value'), value.get('fmt', '.3g'), value.get('unit', ''))}{n}"


def _render_value(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        # an indented line (a describe_* sub-item) becomes a nested bullet
        return [("  " if line[:1].isspace() else "") + f"- {line.strip()}"
                for line in value.splitlines() if line.strip()]
    if _is_finding(value):
        return [f"- {_finding_text(value)}"]
    if _is_verdicts(value):
        return ["", verdict_table(value), ""]
    if value is None or isinstance(value, (int, float)):
        return [f"- {key.replace('_', ' ')}: {format_value(value)}"]
    return [f"- {key.replace('_', ' ')}: {_cell(json.dumps(value))}"]


# --------------------------------------------------------------------------- verdict rows as numbers

_NUMBER = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*(%|[A-Za-z]+)?")


def parse_effect(text: Any) -> tuple[float, bool]:
    """A verdict row's effect cell back as a number: ``"+4.46%"`` -> ``(0.0446, True)`` (a gain,
    a fraction), ``"+0.00188"`` -> ``(0.00188, False)``; ``nan`` when the cell holds no number."""
    m = _NUMBER.fullmatch(str(text).strip().replace("\u2212", "-"))
    if not m:
        return math.nan, str(text).strip().endswith("%")
    value, percent = float(m.group(1)), m.group(2) == "%"
    return (value / 100 if percent else value), percent


def _interval(text: Any) -> tuple[float, float]:
    m = re.fullmatch(r"\[(.+?),\s*(.+?)\]", str(text).strip())
    return (parse_effect(m.group(1))[0], parse_effect(m.group(2))[0]) if m else (math.nan, math.nan)


def _number_or_nan(x: Any) -> float:
    try:
        return float(x) if x is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def scoreboard(summary: Mapping[str, Any]) -> list[dict]:
    """The primary row of each claim recorded in ``summary``, in claim order: ``{id, what, claim, effect,
    lo, hi, percent, n, p, verdict, interval, effect_text, section, notebook}`` (``effect``, ``lo``,
    ``hi`` as numbers, gains as fractions; ``what`` from :data:`CLAIMS`). The scoreboard table, figure
    and README's headline are drawn from it; ``[]`` when no notebook recorded a primary row."""
    out = {}
    for section in _sections(summary):
        values = summary.get(section)
        for key, value in (values.items() if isinstance(values, Mapping) else ()):
            if key.startswith("_") or not _is_verdicts(value):
                continue
            for r in value:
                if not r.get("primary"):
                    continue
                effect, percent = parse_effect(r.get("effect"))
                lo, hi = _interval(r.get("interval"))
                cid = str(r.get("id", ""))
                out[cid] = {"id": cid, "what": CLAIMS.get(cid, str(r.get("claim", ""))), "claim": str(r["claim"]),
                            "effect": effect, "lo": lo, "hi": hi, "percent": percent, "n": str(r.get("n", "")),
                            "p": _number_or_nan(r.get("p")), "verdict": str(r["verdict"]),
                            "effect_text": str(r.get("effect", "")), "interval": str(r.get("interval", "")),
                            "section": section, "notebook": _notebook(section)}
    order = list(CLAIMS)
    return sorted(out.values(), key=lambda c: (order.index(c["id"]) if c["id"] in order else len(order), c["id"]))


def secondary_counts(summary: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Per section, its secondary rows per verdict (``{"03_artifacts": {"agrees": 2, ...}}``)."""
    out = {}
    for section in _sections(summary):
        values = summary.get(section)
        rows = [r for k, v in (values.items() if isinstance(values, Mapping) else ())
                if not k.startswith("_") and _is_verdicts(v) for r in v if not r.get("primary")]
        if rows:
            out[section] = {v: sum(r["verdict"] == v for r in rows) for v in VERDICT_ORDER}
    return out


def _notebook(section: str) -> str:
    return section[:2] if section[:2].isdigit() else section


def _sections(summary: Mapping[str, Any]) -> list[str]:
    return [s for s in TITLES if s in summary] + sorted(s for s in summary if s not in TITLES)


# --------------------------------------------------------------------------- verdict tables

_P_VALUE = re.compile(r"\s*\(p = ([0-9.]+)\)|;\s*p = ([0-9.]+)")


def _rule_parts(rule: str) -> tuple[str, str | None]:
    """A rule without its row's TOST p-value, and that p-value (the rule text is then the same on every row)."""
    m = _P_VALUE.search(rule)
    return _P_VALUE.sub("", rule).strip(), (next(g for g in m.groups() if g) if m else None)


def verdict_table(rows: Iterable[Mapping[str, Any]]) -> str:
    """A Markdown table of verdict rows (:func:`verdict_rows`): a primary row's claim starts with its
    id in bold; columns claim, effect, 95% interval, [n], p, q (secondary rows), [rule], verdict. The
    rule is printed once under it (several rules are lettered (a), (b), ...), an ``n`` shared by every
    row too, and for secondary rows how many decisions chance alone would make (``alpha`` x rows)."""
    rows = list(rows)
    parts = [_rule_parts(str(r.get("rule", ""))) for r in rows]
    rules = list(dict.fromkeys(t for t, _ in parts))
    ns = list(dict.fromkeys(str(r.get("n", "")) for r in rows))
    several_n, several_rules = len(ns) > 1, len(rules) > 1
    has_q = any("q" in r for r in rows)
    head = (["claim", "effect", "95% interval"] + ["n"] * several_n + ["p"] + ["q (BH)"] * has_q
            + ["rule"] * several_rules + ["verdict"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r, (rule, p_old) in zip(rows, parts):
        p = _number_or_nan(r.get("p", p_old))
        claim = (f"**{r.get('id')}** " if r.get("primary") else "") + str(r.get("claim", ""))
        cells = ([claim, r.get("effect", ""), r.get("interval", "")] + [r.get("n", "")] * several_n
                 + [_p_text(p)] + [_p_text(_number_or_nan(r.get("q")))] * has_q
                 + [f"({_letter(rules.index(rule))})"] * several_rules)
        lines.append("| " + " | ".join(_cell(str(c)) for c in cells) + f" | **{r['verdict']}** |")
    notes = [f"n = {ns[0]} for every row."] if not several_n else []
    notes.append("Rules: " + "; ".join(f"({_letter(i)}) {t}" for i, t in enumerate(rules)) + "."
                 if several_rules else f"Rule: {rules[0]}.")
    chance = claims.chance_line(rows)
    return "\n".join(lines) + "\n\n" + " ".join(notes + ([chance] if chance else []))


def _letter(i: int) -> str:
    return chr(ord("a") + i) if i < 26 else str(i + 1)


# --------------------------------------------------------------------------- sentences from the rows

def _short(claim: str) -> str:
    """A claim without its trailing parenthesis (what its effect measures)."""
    claim = claim.strip()
    if not claim.endswith(")"):
        return claim
    depth = 0
    for i in range(len(claim) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(claim[i], 0)
        if depth == 0:
            return claim[:i].rstrip(" ,;") or claim
    return claim


def _row_text(r: Mapping[str, Any], *, n: bool = False) -> str:
    effect, interval = str(r.get("effect", "")), str(r.get("interval", ""))
    parts = [effect if math.isfinite(parse_effect(effect)[0]) else "no estimate",
             f"95% interval {interval}" if interval not in ("", "none") else "no 95% interval"]
    parts += [f"n = {r['n']}"] if n and r.get("n") else []
    return f"{_short(str(r['claim']))}: **{r['verdict']}** ({', '.join(parts)})"


def decided_sentence(rows: list[Mapping[str, Any]], *, limit: int = 2, rest: str = "in the tables below") -> str:
    """How many verdict rows are decided (agrees / disagrees / equivalent) and the first ``limit`` of them
    (agreements and disagreements before equivalences; ``rest`` says where the others are); or that none is."""
    decided = ([r for r in rows if r["verdict"] in (claims.AGREES, claims.DISAGREES)]
               + [r for r in rows if r["verdict"] == claims.EQUIVALENT])
    if not decided:
        return f"none of its {len(rows)} verdict rows is decided: every one is inconclusive"
    tally = ", ".join(f"{sum(r['verdict'] == v for r in rows)} {v}" for v in VERDICT_ORDER
                      if any(r["verdict"] == v for r in rows))
    more = len(decided) - limit
    more = f"; {more} more decided row{'s' * (more > 1)} {rest}" if more > 0 else ""
    return (f"{len(decided)} of {len(rows)} verdict rows decided ({tally}): "
            + "; ".join(_row_text(r) for r in decided[:limit]) + more)


def _found(section: str, values: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The section's one-sentence summary, and the key of the finding it shows (not repeated as a bullet)."""
    rows = [r for k, v in values.items() if not k.startswith("_") and _is_verdicts(v) for r in v]
    if rows:
        primary = [r for r in rows if r.get("primary")]
        secondary = [r for r in rows if not r.get("primary")]
        lead = "; ".join(f"{r.get('id')} {_row_text(r)}" for r in primary)
        rest = ("secondary rows (BH q): " + decided_sentence(secondary)) if secondary else ""
        return "; ".join(x for x in (lead, rest) if x), None
    keys = [k for k, v in values.items() if not k.startswith("_") and _is_finding(v)]
    key = PRIMARY.get(section) if PRIMARY.get(section) in keys else (keys[0] if keys else None)
    return (_finding_text(values[key]), key) if key else (None, None)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _without_repeats(text: str, findings: list[Mapping[str, Any]]) -> str:
    """``text`` without the lines that only repeat a finding of the same section (its value, its words)."""
    keep = []
    for line in text.splitlines():
        words = _words(line)
        repeated = any(format_value(f.get("value"), f.get("fmt", ".3g")) in line and words
                       and len(words & _words(f"{f['what']} {f.get('n', '')}")) >= 0.8 * len(words)
                       for f in findings)
        if not repeated:
            keep.append(line)
    return "\n".join(keep)


# --------------------------------------------------------------------------- FINDINGS.md

def _p_text(p: float) -> str:
    return "–" if not math.isfinite(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def scoreboard_table(board: list[dict]) -> str:
    """The 7-row Markdown table of :func:`scoreboard` (a sentence when no claim has a primary row)."""
    if not board:
        return "_No notebook has recorded a primary verdict row yet._"
    lines = ["| id | claim | primary row (fixed before the run) | effect | 95% interval | n | p | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for c in board:
        lines.append(f"| **{c['id']}** | {_cell(c['what'])} | {_cell(c['claim'])} ({_link(c['section'])}) "
                     f"| {c['effect_text']} | {c['interval']} | {_cell(c['n'])} | {_p_text(c['p'])} "
                     f"| **{c['verdict']}** |")
    return "\n".join(lines)


def _scoreboard_lines(board: list[dict], secondary: Mapping[str, Mapping[str, int]] | None = None) -> list[str]:
    if not board:
        return []
    lines = ["**Scoreboard: the seven claims, each decided by its one primary row**", "",
             f"![claims scoreboard](figures/{SCOREBOARD}.png)", "", scoreboard_table(board)]
    lines += ["", "Each claim's primary row is the contrast the profile's `verdicts.primary` names before the run, "
              "decided on its own 95% interval (or equivalence test); the figure draws each effect and interval "
              "divided by the interval's half-width (0 = no effect; a line clear of 0 is a decided direction), "
              "coloured by verdict. Units: SD = seed-to-seed standard deviations of the fidelity-only arm; "
              "margins = just-visible artifacts (the profile's `artifact_margins`)."]
    if secondary:
        parts = [f"{_notebook(sec)}: {sum(c.values())} rows, "
                 f"{sum(c[v] for v in VERDICT_ORDER if v != claims.INCONCLUSIVE)} decided"
                 for sec, c in secondary.items()]
        lines += ["", "Every other row is secondary, decided on its Benjamini-Hochberg q < 0.05 within its "
                  "notebook's table (" + "; ".join(parts) + ")."]
    return lines + [""]


def _timing_lines(values: Mapping[str, Any], profile: Any) -> list[str]:
    """The demo's notebook time read against :data:`DEMO_TARGET_MIN`."""
    t = values.get("notebook_time")
    if profile != "demo" or not _is_finding(t) or t.get("value") is None:
        return []
    over = float(t["value"]) - DEMO_TARGET_MIN
    verdict = f"{over:.1f} min over it" if over > 0 else f"within it ({-over:.1f} min to spare)"
    return [f"- against the demo's target of {DEMO_TARGET_MIN} min on a 2-core CPU: {verdict}"]


def _section_lines(section: str, values: Mapping[str, Any], profile: Any) -> list[str]:
    seed = values.get("_seed")
    out = [f"**{TITLES.get(section, section)}**" + (f" (seed {seed})" if seed is not None else ""), ""]
    findings = [v for v in values.values() if _is_finding(v)]
    found, shown = _found(section, values)
    if found and section not in ("run", "manifest"):
        out += [f"*Found:* {found}.", ""]
        values = {k: v for k, v in values.items() if k != shown}
    for key, value in values.items():
        if key.startswith("_"):
            continue
        if isinstance(value, str):
            value = _without_repeats(value, findings)
        elif _is_finding(value):
            value = {**value, "what": str(value["what"])}
        out += _render_value(key, value)
    if section == "run":
        out += _timing_lines(values, profile)
    return out + [""]


def render_findings(summary: Mapping[str, Any], timing: Mapping[str, Any] | None = None) -> str:
    """Markdown of the recorded findings (and the run's ``timing``, :func:`read_timing`): the claims
    scoreboard (:func:`scoreboard`) first, then one heading per section (in :data:`TITLES` order, then
    the others by name) with a one-sentence summary, its values in the order they were recorded and its
    verdict tables (:func:`verdict_table`); the manifest as its one line."""
    if not summary:
        return PLACEHOLDER
    board, secondary = scoreboard(summary), secondary_counts(summary)
    summary = {**summary, **(timing or {})}
    profile = None
    if isinstance(summary.get("manifest"), Mapping):
        profile = summary["manifest"].get("profile")
        summary["manifest"] = {"line": manifest_line(recorded=summary["manifest"])}
    out = _scoreboard_lines(board, secondary)
    for section in _sections(summary):
        out += _section_lines(section, summary[section] or {}, profile)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


# --------------------------------------------------------------------------- README's headline

def _link(section: str) -> str:
    nn = _notebook(section)
    book = next(iter(sorted((REPO_ROOT / "notebooks").glob(f"{nn}_*.ipynb"))), None)
    return f"[notebook {nn}](notebooks/{book.name})" if book else f"notebook {nn}"


def _rows(summary: Mapping[str, Any], section: str, key: str) -> list[Mapping[str, Any]]:
    value = (summary.get(section) or {}).get(key)
    return list(value) if _is_verdicts(value) else []


def _headline_gain(summary: Mapping[str, Any]) -> str | None:
    """Notebook 02's largest held-out gain (a run's own measures left out)."""
    held_gain = (summary.get("02_finetuning") or {}).get("largest_held_out_gain")
    if not _is_finding(held_gain):
        return None
    return f"**Fine-tuning with one extra term** ({_link('02_finetuning')}): {_finding_text(held_gain)}."


def _headline_claim(c: Mapping[str, Any]) -> str:
    interval = f"95% interval {c['interval']}" if c["interval"] not in ("", "none") else "no 95% interval"
    return (f"**{c['id']}** {c['what']} ({_link(c['section'])}): **{c['verdict']}** "
            f"({c['effect_text']}, {interval}, n = {c['n']}).")


def render_headline(summary: Mapping[str, Any]) -> str:
    """README's headline block: notebook 02's largest held-out gain, then one bullet per claim from its
    primary row (:func:`scoreboard`), each naming its notebook. :data:`HEADLINE_PLACEHOLDER` before any run."""
    if not summary:
        return HEADLINE_PLACEHOLDER
    sentences = [x for x in [_headline_gain(summary)] if x] + [_headline_claim(c) for c in scoreboard(summary)]
    return "\n".join(f"- {x}" for x in sentences) if sentences else HEADLINE_PLACEHOLDER


# --------------------------------------------------------------------------- the blocks in the files

def findings_block(text: str, start: str = START, end: str = END) -> str | None:
    """The Markdown between the markers ``start`` / ``end`` of ``text`` (stripped), ``None`` without them."""
    m = re.search(re.escape(start) + r"\n?(.*?)\n?" + re.escape(end), text, flags=re.S)
    return m.group(1).strip() if m else None


def replace_block(text: str, rendered: str, start: str = START, end: str = END) -> str:
    """``text`` with its block between ``start`` and ``end`` replaced by ``rendered``; a clear error without markers."""
    if findings_block(text, start, end) is None:
        raise UserError(f"no findings block: the file needs a line {start} and a line {end}")
    return re.sub(re.escape(start) + r".*?" + re.escape(end),
                  lambda _: f"{start}\n{rendered.strip()}\n{end}", text, count=1, flags=re.S)


def fill_blocks(path: str | os.PathLike, summary: Mapping[str, Any], timing: Mapping[str, Any] | None = None) -> bool:
    """Write the findings (:func:`render_findings`) and the headline (:func:`render_headline`) into the
    blocks of the Markdown file ``path`` that has their markers (atomically); False when it has neither."""
    path = Path(path)
    text = original = path.read_text()
    has_findings = findings_block(text) is not None
    has_headline = findings_block(text, HEADLINE_START, HEADLINE_END) is not None
    if has_findings:
        text = replace_block(text, render_findings(summary, timing))
    if has_headline:
        text = replace_block(text, render_headline(summary), HEADLINE_START, HEADLINE_END)
    if text != original:
        atomic_write_text(path, text)
    return has_findings or has_headline


def draw_scoreboard(summary: Mapping[str, Any], folder: str | os.PathLike) -> list[Path]:
    """``<folder>/claims_scoreboard.png`` (and ``.svg``) drawn from ``summary``'s verdict rows
    (:func:`scoreboard`); nothing (``[]``) when it holds none."""
    board = scoreboard(summary)
    if not board:
        return []
    from nriqa.viz import save_figure
    from nriqa.viz.plots import claims_scoreboard

    return save_figure(claims_scoreboard(board), SCOREBOARD, folder=folder, show=False)


def write_findings(summary_file: str | os.PathLike,
                   readme: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
                   copy_to: str | os.PathLike | None = None, figures: str | os.PathLike | None = None) -> str:
    """Render ``summary_file``; write it into the blocks of ``readme`` (one Markdown file or several:
    each gets the blocks it has markers for, :func:`fill_blocks`), copy the summary to ``copy_to`` and
    draw the scoreboard into ``figures`` (each optional, each atomic). Returns the rendered findings."""
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
    targets = [readme] if isinstance(readme, (str, os.PathLike)) else list(readme or [])
    for target in targets:
        if not fill_blocks(target, summary, timing):
            raise UserError(f"{target} has no findings block: it needs the lines {START} and {END} "
                            f"(FINDINGS.md), or {HEADLINE_START} and {HEADLINE_END} (README.md)")
    if figures is not None:
        draw_scoreboard(summary, figures)
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


def _with_readme(files: list[str]) -> list[Path]:
    """``files`` plus the README.md beside each one that has a findings block, when that README has a headline block."""
    out = [Path(f) for f in files]
    for f in list(out):
        readme = f.with_name("README.md")
        if (readme not in out and f.exists() and readme.exists() and findings_block(f.read_text()) is not None
                and findings_block(readme.read_text(), HEADLINE_START, HEADLINE_END) is not None):
            out.append(readme)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m nriqa findings``: print (or write into FINDINGS.md and README.md) the findings of a profile's run."""
    ap = argparse.ArgumentParser(prog="python -m nriqa findings",
                                 description="Render the findings recorded in <RUN_ROOT>/<profile>/summary.json "
                                             "as Markdown; --write puts them between the findings markers of a "
                                             "Markdown file (FINDINGS.md) and the headline sentences between the "
                                             "headline markers (README.md; the README.md beside a written "
                                             "FINDINGS.md is filled too), and draws figures/claims_scoreboard.png "
                                             "(the demo profile's summary is also copied to figures/summary.json).")
    ap.add_argument("--profile", default="demo", help="profile whose summary.json to render (default: demo)")
    ap.add_argument("--run-root", default=None, help="root of run folders (default: $NRIQA_RUNS, else runs/)")
    ap.add_argument("--summary", default=None, metavar="SUMMARY.json",
                    help="render this file instead of <RUN_ROOT>/<profile>/summary.json "
                         "(e.g. the committed figures/summary.json)")
    ap.add_argument("--write", action="append", default=[], metavar="FINDINGS.md",
                    help="Markdown file whose findings / headline block is replaced (repeatable)")
    args = ap.parse_args(argv)
    root = Path(args.run_root).expanduser() if args.run_root else runs_dir()
    src = Path(args.summary) if args.summary else root / args.profile / SUMMARY_FILE
    copy_to = figures_dir() / SUMMARY_FILE if args.profile == "demo" and args.write else None
    if copy_to is not None and src.exists() and copy_to.exists() and src.resolve() == copy_to.resolve():
        copy_to = None
    figures = (figures_dir() if args.profile == "demo" else root / args.profile / "figures") if args.write else None
    for line in stale_findings(args.profile, [src, figures_dir() / SUMMARY_FILE]):
        print(f"[nriqa findings] warning: {line}", file=sys.stderr)
    written = _with_readme(args.write)
    rendered = write_findings(src, readme=written, copy_to=copy_to, figures=figures)
    print(rendered)
    if written:
        print(f"\n[nriqa findings] wrote {', '.join(map(str, written))}, {figures / (SCOREBOARD + '.png')}"
              + (f" and {copy_to}" if copy_to else ""))
    return 0


__all__ = ["record", "record_timing", "read_timing", "finding", "verdict_rows", "summary_path", "read_summary",
           "load_summary", "render_findings", "findings_block", "replace_block", "write_findings", "format_value",
           "START", "END", "PLACEHOLDER", "HEADLINE_START", "HEADLINE_END", "HEADLINE_PLACEHOLDER", "scoreboard",
           "verdict_table", "parse_effect", "decided_sentence", "render_headline", "fill_blocks", "draw_scoreboard",
           "scoreboard_table", "secondary_counts"]
