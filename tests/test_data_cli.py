"""``python -m nriqa data``: lists the embedded and the configured folder datasets (the checks it runs:
tests/test_data_checks.py)."""
from __future__ import annotations

import pytest
from doubles import gt_only_vid4

from nriqa.data.cli import main as data_cli


@pytest.fixture
def vid4(tmp_path):
    return gt_only_vid4(tmp_path / "Vid4")


def test_cli_lists_embedded_and_configured_folders(vid4, capsys, monkeypatch):
    monkeypatch.delenv("NRIQA_REDS", raising=False)
    assert data_cli(["--vid4", str(vid4)]) == 0
    out = capsys.readouterr().out
    assert "embedded/train" in out and "embedded/test" in out
    assert "vid4" in out and "test 4" in out and "30x42" in out
    assert "not configured" in out                                            # reds / vimeo90k
    assert data_cli(["--reds", str(vid4)]) == 1                               # wrong layout -> error row
    assert "train_sharp" in capsys.readouterr().out
