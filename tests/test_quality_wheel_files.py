"""Measures whose model files ship inside installed wheels: located with importlib.metadata, listed
as offline, one clear error before any build when a file is absent, a refusal when it differs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nriqa import quality as q
from nriqa.quality import base, cli

WHEEL_MEASURES = {                     # measure -> (distribution, pip command on its card)
    "niqe": ("iqa-torch", "pip install iqa-torch==1.2.1"),
    "brisque": ("brisque", "pip install brisque==0.2.0"),
    "st-lpips-alex": ("stlpips-pytorch", "pip install stlpips-pytorch==0.0.2"),
    "st-lpips-vgg": ("stlpips-pytorch", "pip install stlpips-pytorch==0.0.2"),
}


@pytest.mark.parametrize("name", sorted(WHEEL_MEASURES))
def test_files_are_found_in_the_installed_wheel(name):
    import importlib.metadata

    dist, pip = WHEEL_MEASURES[name]
    c = q.card(name)
    assert c.present and name in q.offline_names() and name in q.offline_names(differentiable=True)
    for w in c.weights:
        assert w.root == f"package:{dist}" and w.url == pip
        assert w.path == Path(importlib.metadata.distribution(dist).locate_file(f"{w.subdir}/{w.filename}"))
        assert base.verified_path(w) == w.path


@pytest.fixture()
def no_wheels(tmp_path, monkeypatch):
    """Every package file is looked up under an empty folder, as if the wheels were not installed."""
    monkeypatch.setattr(base, "package_dir", lambda dist: tmp_path / "site-packages")
    return tmp_path / "site-packages"


@pytest.mark.parametrize("name", sorted(WHEEL_MEASURES))
def test_missing_wheel_file_one_error_before_build(name, no_wheels, monkeypatch):
    _, pip = WHEEL_MEASURES[name]
    c, _builder = base._REGISTRY[name]

    def must_not_build(*a, **k):
        raise AssertionError("builder ran although a file is missing")

    monkeypatch.setitem(base._REGISTRY, name, (c, must_not_build))
    assert not q.card(name).present and name not in q.offline_names()
    with pytest.raises(q.WeightsMissingError) as e:
        q.create(name)
    msg = str(e.value)
    for w in c.weights:
        assert w.filename in msg and str(no_wheels / w.subdir / w.filename) in msg
    assert pip in msg and f"python -m nriqa weights fetch {name}" in msg


def test_builder_refuses_an_absent_file_too(no_wheels):
    """The loaders check the file themselves (a builder called directly gets the same error)."""
    from nriqa.quality import niqe

    with pytest.raises(q.WeightsMissingError, match="pip install iqa-torch==1.2.1"):
        niqe.published_params()


def test_a_different_file_is_refused(no_wheels):
    from nriqa.quality import brisque_measure, niqe, stlpips_measure

    for w in (niqe.PRISTINE_FILE, brisque_measure.SVM_FILE, stlpips_measure.ALEX_FILE):
        w.path.parent.mkdir(parents=True, exist_ok=True)
        w.path.write_bytes(b"\0" * 10)                                  # wrong size
        with pytest.raises(ValueError, match="expected"):
            base.verified_path(w)
    niqe.PRISTINE_FILE.path.write_bytes(b"\0" * niqe.PRISTINE_FILE.size_bytes)   # right size, other bytes
    with pytest.raises(ValueError, match="sha256"):
        niqe.published_params()


def test_package_dir_of_an_absent_distribution_is_where_pip_would_put_it():
    import sysconfig

    assert base.package_dir("no-such-distribution-nriqa") == Path(sysconfig.get_paths()["purelib"])


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
