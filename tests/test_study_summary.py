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
    assert "- PSNR over bicubic: -0.05 dB (n = 3)" in text
    assert "- largest mean panel gain: +1.23 % (n = 9 runs)" in text
    assert "(seed 1)" in text and "\n- smallest: b\n  - sub-item: c" in text
    assert text.index("largest mean panel gain: +1.23") < text.index("- largest: a")  # recorded order
    assert ("| GANs help | +1.00% | [+0.20%, +1.80%] | 3 seeds x 3 clips | agrees if the 95% interval lies above 0"
            " | **agrees** |") in text
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
    """README's block is figures/summary.json rendered; before any demo run, a placeholder with no
    typed number in it."""
    block = S.findings_block((REPO_ROOT / "FINDINGS.md").read_text())
    assert block is not None, "FINDINGS.md lost its findings markers"
    committed = REPO_ROOT / "figures" / "summary.json"
    if committed.exists():
        assert block == S.render_findings(S.read_summary(committed), S.read_timing(committed)), (
            "FINDINGS.md differs from figures/summary.json: run "
            "python -m nriqa findings --profile demo --write FINDINGS.md after a demo run")
    else:
        assert "make demo" in block
        assert not re.search(r"\d", block), f"typed numbers in README's findings block: {block!r}"


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
