"""The findings summary: recorded by the notebooks, rendered into README (never typed by hand)."""
from __future__ import annotations

import json
import multiprocessing as mp
import re

import pytest

from nriqa.__main__ import main as nriqa_main
from nriqa.analysis.claims import Verdict
from nriqa.errors import ConfigError, UserError
from nriqa.paths import REPO_ROOT
from nriqa.study import summary as S


def _cfg(tmp_path, name="demo", seed=0):
    return {"name": name, "run_root": str(tmp_path), "seed": seed}


def test_record_merges_sections_and_keys(tmp_path):
    cfg = _cfg(tmp_path)
    path = S.record(cfg, "01_baseline", {"a": S.finding("PSNR over bicubic", 0.123, fmt="+.2f", unit="dB", n=3),
                                         "text": "line one\nline two"})
    assert path == tmp_path / "demo" / "summary.json"
    S.record(cfg, "02_finetuning", {"gain": 0.5})
    S.record(cfg, "01_baseline", {"text": "replaced"})
    data = json.loads(path.read_text())
    assert set(data) == {"01_baseline", "02_finetuning"}
    assert data["01_baseline"]["a"]["value"] == pytest.approx(0.123)
    assert data["01_baseline"]["text"] == "replaced"
    assert data["01_baseline"]["_seed"] == 0
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_record_keeps_the_old_file_when_a_value_is_bad(tmp_path):
    cfg = _cfg(tmp_path)
    path = S.record(cfg, "01_baseline", {"x": 1.0})
    before = path.read_text()
    with pytest.raises(UserError, match="not a number"):
        S.record(cfg, "01_baseline", {"y": S.finding("z", 0.0) | {"value": "abc"}})
    with pytest.raises(UserError, match="cannot record"):
        S.record(cfg, "01_baseline", {"y": object()})
    with pytest.raises(UserError, match="section"):
        S.record(cfg, "bad section/..", {"y": 1})
    assert path.read_text() == before


def test_nan_is_recorded_as_not_measured(tmp_path):
    S.record(_cfg(tmp_path), "06_asymmetry", {"rho": S.finding("Spearman rho", float("nan"), n=7)})
    text = S.render_findings(S.load_summary(_cfg(tmp_path)))
    assert "Spearman rho: not measured (n = 7)" in text


def _record_many(args):
    root, i = args
    S.record({"name": "demo", "run_root": root, "seed": 0}, f"s{i}", {"v": float(i)})


def test_concurrent_records_keep_every_section(tmp_path):
    with mp.get_context("fork").Pool(4) as pool:
        pool.map(_record_many, [(str(tmp_path), i) for i in range(12)])
    data = S.read_summary(tmp_path / "demo" / "summary.json")
    assert {f"s{i}" for i in range(12)} <= set(data)


def test_damaged_summary_is_a_clear_error(tmp_path):
    p = tmp_path / "demo" / "summary.json"
    p.parent.mkdir(parents=True)
    p.write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable summary"):
        S.record(_cfg(tmp_path), "x", {"v": 1})


def test_render_formats_numbers_sentences_and_verdicts():
    summary = {
        "02_finetuning": {"gain": S.finding("largest mean panel gain", 0.01234, fmt="pct", n="9 runs"),
                          "text": "largest: a\nsmallest: b\n  sub-item: c", "_seed": 1},
        "01_baseline": {"db": S.finding("PSNR over bicubic", -0.0512, fmt="+.2f", unit="dB", n=3)},
        "05_adversarial": {"verdicts": S.verdict_rows([Verdict(
            "GANs help", 0.01, 0.002, 0.018, "3 seeds x 3 clips", "agrees if the 95% interval lies above 0",
            "agrees")])},
    }
    text = S.render_findings(summary)
    assert text.index("notebook 01") < text.index("notebook 02") < text.index("notebook 05")
    # a section's first finding is its one-sentence summary, not repeated as a bullet
    assert "*Found:* PSNR over bicubic: -0.05 dB (n = 3)." in text and "- PSNR over bicubic" not in text
    assert "*Found:* largest mean panel gain: +1.23 % (n = 9 runs)." in text
    assert "(seed 1)" in text and "\n- smallest: b\n  - sub-item: c" in text
    assert text.index("largest mean panel gain: +1.23") < text.index("- largest: a")  # recorded order
    assert "| GANs help | +1.00% | [+0.20%, +1.80%] | \u2013 | \u2013 | **agrees** |" in text   # p, q: none given
    assert "n = 3 seeds x 3 clips for every row. Rule: agrees if the 95% interval lies above 0." in text
    assert "_seed" not in text and "_recorded" not in text
    assert S.render_findings({}) == S.PLACEHOLDER


def test_replace_block_and_its_errors():
    doc = f"intro\n{S.START}\nold 1.23\n{S.END}\nrest\n"
    new = S.replace_block(doc, "- new 4.56")
    assert S.findings_block(new) == "- new 4.56" and new.startswith("intro\n") and new.endswith("rest\n")
    with pytest.raises(UserError, match="findings block"):
        S.replace_block("no markers", "x")


def test_findings_command_writes_readme_and_copies_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NRIQA_FIGURES", str(tmp_path / "figs"))
    S.record(_cfg(tmp_path), "01_baseline", {"db": S.finding("PSNR over bicubic", 0.25, fmt="+.2f", unit="dB")})
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{S.START}\n{S.PLACEHOLDER}\n{S.END}\n")
    assert nriqa_main(["findings", "--profile", "demo", "--run-root", str(tmp_path), "--write", str(readme)]) == 0
    assert "PSNR over bicubic: +0.25 dB" in S.findings_block(readme.read_text())
    copied = S.read_summary(tmp_path / "figs" / "summary.json")
    assert S.render_findings(copied) == S.findings_block(readme.read_text())
    capsys.readouterr()
    assert nriqa_main(["findings", "--profile", "smoke", "--run-root", str(tmp_path)]) == 2
    assert "no findings recorded" in capsys.readouterr().err
    # a FINDINGS.md fills the README.md beside it (its headline block) and draws the scoreboard
    (tmp_path / "site").mkdir()
    findings, front = tmp_path / "site" / "FINDINGS.md", tmp_path / "site" / "README.md"
    findings.write_text(f"# f\n{S.START}\n{S.PLACEHOLDER}\n{S.END}\n")
    front.write_text(f"# r\n{S.HEADLINE_START}\n{S.HEADLINE_PLACEHOLDER}\n{S.HEADLINE_END}\n")
    rows = [{**_row("measures differ", "-0.2", "[-1, +1]", "inconclusive"), "primary": True, "id": "B1", "p": 0.7}]
    S.record(_cfg(tmp_path), "06_asymmetry", {"verdicts": rows})
    assert nriqa_main(["findings", "--profile", "demo", "--run-root", str(tmp_path), "--write", str(findings)]) == 0
    assert "**inconclusive** (-0.2" in S.findings_block(front.read_text(), S.HEADLINE_START, S.HEADLINE_END)
    assert "| **B1** |" in S.findings_block(findings.read_text())
    before = findings.read_text(), front.read_text()
    assert nriqa_main(["findings", "--profile", "demo", "--run-root", str(tmp_path), "--write", str(findings)]) == 0
    assert (findings.read_text(), front.read_text()) == before          # rendering again changes nothing
    assert (tmp_path / "figs" / "claims_scoreboard.png").exists()


def test_demo_run_renders_findings_into_readme(tmp_path, monkeypatch):
    from nriqa.runner import _record_times, render_findings_into_readme

    monkeypatch.setenv("NRIQA_FIGURES", str(tmp_path / "figs"))
    S.record(_cfg(tmp_path), "01_baseline", {"x": 1.0})
    _record_times("demo", tmp_path, {"00_tour": 60.0, "01_baseline_training": 120.0})
    readme = tmp_path / "README.md"
    readme.write_text(f"{S.START}\n{S.PLACEHOLDER}\n{S.END}\n")
    assert render_findings_into_readme("smoke", tmp_path, readme=readme) is None
    assert render_findings_into_readme("demo", tmp_path, readme=readme) == readme
    assert "notebooks of the last `nriqa run`: 3.0 min (n = 2)" in readme.read_text()
    assert (tmp_path / "figs" / "summary.json").exists() and (tmp_path / "figs" / "timing.json").exists()
    assert "notebook" not in (tmp_path / "figs" / "summary.json").read_text()   # wall times stay out of it


def test_readme_findings_agree_with_the_committed_summary():
    """FINDINGS.md's block and README's headline block are figures/summary.json rendered; before any
    demo run, placeholders with no typed number in them."""
    block = S.findings_block((REPO_ROOT / "FINDINGS.md").read_text())
    headline = S.findings_block((REPO_ROOT / "README.md").read_text(), S.HEADLINE_START, S.HEADLINE_END)
    assert block is not None, "FINDINGS.md lost its findings markers"
    assert headline is not None, "README.md lost its headline markers"
    committed = REPO_ROOT / "figures" / "summary.json"
    fix = ("run python -m nriqa findings --profile demo --write FINDINGS.md after a demo run "
           "(--summary figures/summary.json renders the committed file)")
    if committed.exists():
        summary = S.read_summary(committed)
        assert block == S.render_findings(summary, S.read_timing(committed)), \
            f"FINDINGS.md differs from figures/summary.json: {fix}"
        assert headline == S.render_headline(summary), f"README's headline differs from figures/summary.json: {fix}"
        if S.scoreboard(summary):
            assert (REPO_ROOT / "figures" / "claims_scoreboard.png").exists(), f"no scoreboard figure: {fix}"
    else:
        for text in (block, headline):
            assert "make demo" in text
            assert not re.search(r"\d", text), f"typed numbers in a findings block: {text!r}"


def test_findings_print_each_rule_once_per_table():
    """Every verdict table of FINDINGS.md names its rule(s) once, under the table, not on each row."""
    block = S.findings_block((REPO_ROOT / "FINDINGS.md").read_text())
    tables = re.findall(r"((?:^\|.*\|\n)+)\n(n = [^\n]*?)?(Rules?: [^\n]+)", block + "\n", flags=re.M)
    for rows, _, rules in tables:
        for rule in re.split(r"; \([a-z]\) |^Rules?: (?:\(a\) )?", rules.rstrip(".")):
            if rule:
                assert rule not in rows, f"the rule {rule!r} is repeated in its table's rows"
                assert block.count(rule) >= 1
    verdict_tables = block.count("| claim | effect | 95% interval")
    assert verdict_tables == len(tables), "a verdict table without its rule line under it"
    assert not re.search(r"^\|.*\b(agrees|disagrees|equivalent) if ", block, flags=re.M), "a rule in a table row"


def _row(claim, effect, interval, verdict, rule="agrees if the 95% interval lies above 0, disagrees if below 0",
         n="3 seeds x 3 clips"):
    return {"claim": claim, "effect": effect, "interval": interval, "n": n, "rule": rule, "verdict": verdict}


def test_verdict_table_letters_several_rules_and_shows_p_and_q():
    rows = [{**_row("A1 pooled (SD)", "+0.50 SD", "[+0.10 SD, +0.90 SD]", "agrees"), "p": 0.02, "primary": True,
             "id": "A1"},
            {**_row("a adds no x (x minus the baseline's)", "+0.01", "[-0.02, +0.04]", "equivalent",
                    rule="equivalent if TOST passes (90% interval below 0.05), disagrees if beyond 0.05"),
             "p": 0.012, "q": 0.024},
            {**_row("b raises y (gain)", "+2.00%", "[+1.00%, +3.00%]", "agrees", n="3 seeds x 1 clip"),
             "p": 0.0001, "q": 0.0002}]
    text = S.verdict_table(rows)
    assert "| claim | effect | 95% interval | n | p | q (BH) | rule | verdict |" in text
    assert ("| **A1** A1 pooled (SD) | +0.50 SD | [+0.10 SD, +0.90 SD] | 3 seeds x 3 clips | 0.020 | \u2013 "
            "| (a) |") in text
    assert ("| a adds no x (x minus the baseline's) | +0.01 | [-0.02, +0.04] | 3 seeds x 3 clips | 0.012 | 0.024 "
            "| (b) |") in text
    assert "| 3 seeds x 1 clip | < 0.001 | < 0.001 | (a) | **agrees** |" in text
    assert "(b) equivalent if TOST passes (90% interval below 0.05), disagrees if beyond 0.05" in text
    assert "2 secondary rows: with no true effect anywhere" in text and "about 0.1 decisions" in text
    assert S.parse_effect("+4.46%") == (pytest.approx(0.0446), True)
    assert S.parse_effect("-0.000141") == (pytest.approx(-0.000141), False)
    assert S.parse_effect("+1.5 SD") == (pytest.approx(1.5), False)


def _primary(cid, claim, effect, interval, verdict, p, n="3 seeds x 3 clips"):
    return {**_row(claim, effect, interval, verdict, n=n), "primary": True, "id": cid, "p": p}


def _toy_summary():
    rows03 = [_primary("A1", "naive NR-IQA fine-tuning raises the held-out NR-IQA judges (2 arms pooled)",
                       "+0.40 SD", "[-0.10 SD, +0.90 SD]", "inconclusive", 0.11),
              _primary("A4", "naive NR-IQA fine-tuning adds visible artifacts", "+2.0 margins",
                       "[+1.2 margins, +2.8 margins]", "agrees", 0.001),
              {**_row("naive niqe fine-tuning adds ringing (ringing minus the baseline's)", "+0.038", "[+0.002, +0.07]",
                      "agrees"), "p": 0.01, "q": 0.03}]
    return {"02_finetuning": {
                "largest_held_out_gain": S.finding("largest held-out panel gain over the baseline, own measures "
                                                   "excluded (gmsd)", -0.013, fmt="pct", n="2 runs x 3 panel measures"),
                "largest_gain": S.finding("largest mean panel gain over the baseline, own measures included (dbcnn)",
                                          0.045, fmt="pct", n="2 runs x 3 panel measures")},
            "03_artifacts": {"verdicts": rows03},
            "06_asymmetry": {"verdicts": [_primary("B1", "a measure that assesses quality well is not necessarily a "
                                                   "good optimization objective", "-0.2", "[-0.7, +0.4]",
                                                   "inconclusive", 0.5, n="12 measures x 3 seeds x 3 clips")]}}


def test_headline_reports_held_out_gain_and_each_primary_row():
    summary = _toy_summary()
    lines = S.render_headline(summary).splitlines()
    assert len(lines) == 4 and all(line.startswith("- **") for line in lines)
    assert all("notebook 0" in line for line in lines)                 # each names its notebook
    assert "largest held-out panel gain over the baseline, own measures excluded (gmsd): -1.30 %" in lines[0]
    assert "own measures included" not in lines[0]
    assert lines[1].startswith("- **A1** naive NR-IQA fine-tuning raises the held-out NR-IQA judges")
    assert "**inconclusive** (+0.40 SD, 95% interval [-0.10 SD, +0.90 SD], n = 3 seeds x 3 clips)" in lines[1]
    assert lines[2].startswith("- **A4**") and "**agrees** (+2.0 margins" in lines[2]
    assert "n = 12 measures x 3 seeds x 3 clips" in lines[3]
    assert "ringing" not in " ".join(lines)                              # secondary rows stay in FINDINGS.md
    assert S.render_headline({}) == S.HEADLINE_PLACEHOLDER
    findings = S.render_findings(summary)
    assert "*Found:* largest held-out panel gain over the baseline, own measures excluded (gmsd): -1.30 %" in findings
    assert findings.count("own measures excluded (gmsd)") == 1


def test_scoreboard_is_the_primary_rows_figure_and_table(tmp_path):
    summary = _toy_summary()
    board = S.scoreboard(summary)
    assert [(c["id"], c["notebook"], c["verdict"]) for c in board] == [
        ("A1", "03", "inconclusive"), ("A4", "03", "agrees"), ("B1", "06", "inconclusive")]
    assert (board[0]["effect"], board[0]["lo"], board[0]["hi"]) == (pytest.approx(0.4), pytest.approx(-0.1),
                                                                    pytest.approx(0.9))
    assert board[1]["p"] == pytest.approx(0.001)
    assert S.secondary_counts(summary) == {"03_artifacts": {"agrees": 1, "disagrees": 0, "equivalent": 0,
                                                            "inconclusive": 0}}
    text = S.render_findings(summary)
    assert text.startswith("**Scoreboard") and "figures/claims_scoreboard.png" in text
    assert "| **A4** | naive NR-IQA fine-tuning adds visible artifacts (or stays artifact-free) |" in text
    assert "| +2.0 margins | [+1.2 margins, +2.8 margins] | 3 seeds x 3 clips | 0.001 | **agrees** |" in text
    assert "(03: 1 rows, 1 decided)" in text
    paths = S.draw_scoreboard(summary, tmp_path)
    assert [p.name for p in paths] == ["claims_scoreboard.png", "claims_scoreboard.svg"]
    assert S.draw_scoreboard({"01_baseline": {"x": 1.0}}, tmp_path / "none") == []


def test_a_line_that_repeats_a_finding_is_rendered_once():
    summary = {"05_adversarial": {"transfer": "vit: SRCC random 0.2 -> 0.3 (+0.1)\nmean change from discriminator "
                                              "initialisation: +0.157 level-order SRCC (3 seeds x 4 kinds)",
                                  "transfer_change": S.finding("mean held-out level-order SRCC change from "
                                                               "discriminator initialisation", 0.157, fmt="+.3f",
                                                               n="3 seeds x 4 kinds")}}
    text = S.render_findings(summary)
    assert text.count("+0.157") == 1 and "- vit: SRCC random 0.2" in text


def test_every_notebook_with_findings_records_them():
    for n in ("01", "02", "03", "04", "05", "06"):
        src = next((REPO_ROOT / "notebooks" / "src").glob(f"{n}_*.py")).read_text()
        assert re.search(r'record\(cfg, "%s_' % n, src), f"notebook {n} records no findings"


def test_summary_holds_no_time_and_carries_the_manifest(tmp_path):
    """Two records of the same values give the same bytes (no clock in the file); a resolved profile
    adds its manifest, rendered as one line."""
    cfg = {**_cfg(tmp_path), "device": "cpu", "threads": 1}
    path = S.record(cfg, "01_baseline", {"x": 1.0})
    first = path.read_text()
    path.unlink()
    S.record(cfg, "01_baseline", {"x": 1.0})
    assert path.read_text() == first
    m = json.loads(first)["manifest"]
    assert m["threads"] == 1 and m["device"] == "cpu" and m["packages"]["torch"]
    assert "1 thread(s) per job" in S.render_findings(json.loads(first))


def test_findings_warn_when_the_checkout_differs(tmp_path):
    """A summary whose manifest names other versions, or a commit git does not know, is flagged."""
    from nriqa.compute import resolve_device
    from nriqa.config import load_profile
    from nriqa.study.manifest import manifest

    cfg = {**load_profile("demo"), "run_root": str(tmp_path)}
    cfg["device"] = resolve_device("auto")
    path = S.record(cfg, "01_baseline", {"x": 1.0})
    data = json.loads(path.read_text())
    assert not [w for w in S.stale_findings("demo", [path]) if "torch" in w or "threads" in w]
    data["manifest"] = {**manifest(cfg), "commit": "0" * 40, "code_changed": False, "threads": 2,
                        "packages": {**manifest(cfg)["packages"], "torch": "0.0.1"}}
    path.write_text(json.dumps(data))
    warnings = " | ".join(S.stale_findings("demo", [path]))
    assert "torch 0.0.1 then" in warnings and "threads 2 then, 1 here" in warnings
    assert "cannot compare the code with 0000000" in warnings
    del data["manifest"]
    path.write_text(json.dumps(data))
    assert "records no manifest" in S.stale_findings("demo", [path])[0]
