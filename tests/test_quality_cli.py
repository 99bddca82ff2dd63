"""nriqa.quality.cli: the ``quality`` card table (text and JSON, ``--offline``) and the ``weights``
command: it lists weight paths, fetches atomically and verified (a fake opener), names the pip command
for files that ship in wheels."""
from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys

from doubles import save_torch

from nriqa import quality as q
from nriqa.quality import cli

# ---------------------------------------------------------------- MDTVSFA


# ---------------------------------------------------------------- CLI
def test_weights_cli_lists_paths(offline_home, capsys):
    assert cli.weights_main(["maniqa", "psnr"]) == 0
    out = capsys.readouterr().out
    assert "maniqa: MISSING" in out and str(offline_home / "torch/hub/pyiqa/ckpt_koniq10k.pt") in out
    assert "psnr: no weight files needed" in out
    save_torch({}, q.card("maniqa").weights[0].path)
    cli.weights_main(["maniqa"])
    assert "maniqa: present" in capsys.readouterr().out
    assert cli.weights_main(["manqia"]) == 2


class _FakeResponse(io.BytesIO):
    headers: dict = {}

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def test_weights_fetch_is_atomic_and_verified(offline_home, monkeypatch, capsys):
    payload = b"fake weights" * 100
    wf = q.WeightFile("fake.pt", len(payload), "https://example.invalid/fake.pt",
                      hashlib.sha256(payload).hexdigest(), subdir="test", root="nriqa")
    q.register(q.Card(name="test-fetchable", mode="NR", higher_better=True, score_range=(0, 1),
                      differentiable=False, min_size=1, video=False, weights=(wf,)), lambda **kw: None)
    calls = []

    def opener(url):
        calls.append(url)
        return _FakeResponse(payload)

    monkeypatch.setattr(cli.urllib.request, "urlopen", opener)
    assert cli.weights_main(["fetch", "test-fetchable"]) == 0
    assert calls == ["https://example.invalid/fake.pt"] and wf.path.read_bytes() == payload
    assert cli.weights_main(["fetch", "test-fetchable"]) == 0 and len(calls) == 1   # present: no download
    # wrong content: nothing is left at the target, no temp files either
    wf.path.unlink()
    monkeypatch.setattr(cli.urllib.request, "urlopen", lambda url: _FakeResponse(b"x" * len(payload)))
    assert cli.weights_main(["fetch", "test-fetchable"]) == 1
    assert not wf.path.exists() and list(wf.path.parent.iterdir()) == []
    assert "sha256 mismatch" in capsys.readouterr().err


def test_weights_fetch_names_the_pip_command(no_wheels, capsys):
    assert cli.weights_main(["fetch", "brisque"]) == 1
    err = capsys.readouterr().err
    assert "svm.txt cannot be downloaded; create it with: pip install brisque==0.2.0" in err


def test_quality_command_lists_them_as_runnable_offline():
    out = subprocess.run([sys.executable, "-m", "nriqa", "quality", "--offline", "--json"],
                         capture_output=True, text=True, check=True)
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    for name in ("niqe", "niqe-kit", "brisque", "st-lpips-vgg", "st-lpips-alex"):
        assert rows[name]["present"] and rows[name]["differentiable"], name
    assert "niqe-live" not in rows


def test_quality_cli_explains_its_columns_and_lists_untrained_kit_models(offline_home, capsys):
    assert cli.quality_main([]) == 0
    out = capsys.readouterr().out
    table, legend = out.split("\ncolumns:\n")
    for column in ("name", "mode", "better", "range", "loss", "diff", "min", "video", "weights", "trained on",
                   "backend"):
        assert re.search(rf"^  {column} +\S", legend, re.M), f"the legend does not explain {column!r}"
    for word in ("none:", "present:", "MISSING k/n:", "not trained yet:"):
        assert word in legend
    for arch in ("cnniqa", "wadiqam", "dbcnn", "vitiqa"):
        for half in ("a", "b"):   # each kit model names the half it trains on, in "trained on" too
            assert re.search(rf"^{arch}@embedded-{half} +NR .* not trained yet +embedded-{half} +nriqa\.quality\.kit$",
                             table, re.M), (arch, half)
    assert re.search(r"^brisque +NR .* live +nriqa$", table, re.M)
    assert re.search(r"^psnr .* - +pyiqa:psnr$", table, re.M)
    assert cli.quality_main(["--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert not rows["dbcnn@embedded-a"]["present"] and rows["dbcnn@embedded-a"]["training_data"] == ["embedded-a"]
    assert rows["dbcnn@embedded-b"]["status"].startswith("not trained yet: trained by notebook 02")
    assert rows["dbcnn@embedded-b"]["status"].endswith("train-iqa dbcnn@embedded-b")
    assert cli.quality_main(["--offline", "--json"]) == 0
    assert "dbcnn@embedded-a" not in {r["name"] for r in json.loads(capsys.readouterr().out)}
    # a model another kit set holds is said to be there, not untrained
    save_torch({}, offline_home / "weights" / "kit" / "abc123" / "vitiqa@embedded-b.pt")
    assert re.search(r"^vitiqa@embedded-b .* in kit set abc123 ", cli.card_table([], cli.untrained_kit_cards([])),
                     re.M)


def test_quality_cli_table_and_json(capsys):
    assert cli.quality_main([]) == 0
    out = capsys.readouterr().out
    assert "lpips-vgg-randtrunk" in out and "MISSING" in out and "1 - s" in out
    assert cli.quality_main(["--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by = {r["name"]: r for r in rows}
    assert by["ssim"]["higher_better"] is True and by["ssim"]["present"] is True
    assert by["maniqa"]["weights"][0]["filename"] == "ckpt_koniq10k.pt"
    assert cli.quality_main(["--offline", "--json"]) == 0
    assert all(r["present"] for r in json.loads(capsys.readouterr().out))
