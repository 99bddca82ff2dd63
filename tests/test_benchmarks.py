"""benchmarks/gpu_check.py: its dry run (the GPU check's code on the CPU, tiny models) writes the
full table with finite numbers; its renderer and plan are checked for the GPU case without a GPU."""
from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
MODELS = ("basicvsrpp", "vrt")
STEP_ROWS = ("fp32", "bf16", "bf16+cl", "bf16+cl+compile", "bf16+cl+nr", "bf16+cl+fr")


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tables(text: str) -> list[list[dict[str, str]]]:
    """Every markdown table in ``text`` as a list of {header: cell} rows."""
    tables, block = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if block:
            header, rows = block[0], block[2:]
            assert all(len(r) == len(header) for r in rows), block
            tables.append([dict(zip(header, r, strict=True)) for r in rows])
            block = []
    return tables


def _number(cell: str) -> float:
    return float(cell.replace(",", "").rstrip("x"))


@pytest.mark.slow
def test_dry_run_writes_every_row_with_finite_numbers(tmp_path):
    out = tmp_path / "gpu_check.md"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    text = out.read_text()
    assert text.startswith("## GPU check - DRY RUN")
    steps, trainer = _tables(text)

    seen = {(r["model"], r["row"].split(" ")[0]): r for r in steps}
    assert set(seen) == {(m, rid) for m in MODELS for rid in STEP_ROWS}
    for (model, rid), r in seen.items():
        columns = ["params", "step s", "frames/s", "speed-up vs fp32", "time vs bf16+cl", "peak mem MB"]
        if rid.endswith("compile"):
            columns.append("compile s")
        for col in columns:
            value = _number(r[col])
            assert math.isfinite(value) and value >= 0, (model, rid, col, r[col])
        assert _number(r["step s"]) > 0 and _number(r["params"]) > 1000
    assert "(niqe-kit)" in seen[("vrt", "bf16+cl+nr")]["row"]
    assert "(lpips-vgg-randtrunk)" in seen[("vrt", "bf16+cl+fr")]["row"]

    rows = {r["row"]: r for r in trainer}
    assert set(rows) == {"direct loop", "trainer (torchrun)"}
    for r in rows.values():
        for col in ("step s", "frames/s", "time vs direct loop", "peak mem MB"):
            value = _number(r[col])
            assert math.isfinite(value) and value > 0, (r["row"], col, r[col])
    run = rows["trainer (torchrun)"]
    assert math.isfinite(_number(run["step s logged"])) and run["world size"] == "1"


def test_gpu_plan_isolates_compiles_and_fits_the_budget():
    gc = _gpu_check()
    mode = gc.MODES["gpu"]
    groups = gc.plan(mode, ["basicvsrpp", "vrt"], "niqe", "lpips-vgg-randtrunk", compile_rows=True, trainer=True)
    kinds = [g["kind"] for g in groups]
    assert kinds == ["eager", "eager", "trainer", "compile", "compile"]
    assert all(len(g["cases"]) == 1 for g in groups if g["kind"] == "compile")
    assert mode["device"] == "cuda" and mode["compile_backend"] == "inductor" and mode["size"] == "paper"
    assert mode["budget_s"] + gc.MIN_GROUP_S <= 8 * 60  # the check must end within 8 minutes
    eager = groups[0]["cases"]
    assert [c["id"] for c in eager] == ["fp32", "bf16", "bf16+cl", "bf16+cl+nr", "bf16+cl+fr", "direct loop"]
    assert tuple(eager[0]["shape"]) == (1, 30, 64, 64) and tuple(groups[1]["cases"][0]["shape"]) == (1, 6, 64, 64)
    assert eager[-1]["bf16"] and eager[-1]["channels_last"]  # the trainer's "auto" on CUDA


def test_render_gpu_rows_errors_and_missing_baselines():
    gc = _gpu_check()
    meta = dict(dry_run=False, device_name="NVIDIA H200", torch="2.x", date="2026-01-01", total_s=400.0,
                command="python benchmarks/gpu_check.py", warmup=3, steps=5, size="paper",
                compile_backend="inductor", tf32="fp32 = PyTorch defaults", nr="niqe", fr="lpips-vgg-randtrunk",
                models=["basicvsrpp", "vrt"], trainer_model="basicvsrpp", peak_how="max_memory_allocated")
    common = dict(shape=[1, 30, 64, 64], params=7322927, terms={"charbonnier": 1.0}, peak_mb=1000.0)
    rows = [
        dict(common, model="basicvsrpp", id="fp32", step_s=0.5, frames_per_s=60.0),
        dict(common, model="basicvsrpp", id="bf16+cl", step_s=0.25, frames_per_s=120.0),
        dict(common, model="basicvsrpp", id="bf16+cl+compile", step_s=0.2, frames_per_s=150.0, compile_s=90.0),
        dict(common, model="basicvsrpp", id="bf16+cl+nr", step_s=0.3, frames_per_s=100.0,
             terms={"charbonnier": 1.0, "niqe": 0.02}),
        dict(common, model="vrt", id="fp32", error="out of memory: CUDA out of memory"),
        dict(common, model="vrt", id="bf16+cl", step_s=1.0, frames_per_s=6.0),
        dict(common, model="basicvsrpp", id="trainer (torchrun)", error="timed out: not finished within 120 s"),
    ]
    text = gc.render(rows, meta)
    assert text.startswith("## GPU check\n") and "DRY RUN" not in text
    steps, trainer = _tables(text)
    by = {(r["model"], r["row"]): r for r in steps}
    assert by[("basicvsrpp", "bf16+cl")]["speed-up vs fp32"] == "2.00x"
    assert by[("basicvsrpp", "bf16+cl+nr (niqe)")]["time vs bf16+cl"] == "1.20x"
    assert by[("basicvsrpp", "bf16+cl+compile")]["compile s"] == "90"
    assert "out of memory" in by[("vrt", "fp32")]["step s"]
    assert by[("vrt", "bf16+cl")]["speed-up vs fp32"] == "n/a"  # no fp32 baseline to compare with
    assert [r["row"] for r in trainer] == ["trainer (torchrun)"] and "timed out" in trainer[0]["step s"]
