"""Weight files: presence, one clear error before any build, loading from created files with the
network blocked, MDTVSFA, and the `weights` CLI (fetch with a fake opener)."""
from __future__ import annotations

import hashlib
import io
import socket

import pytest
import torch

from nriqa import quality as q
from nriqa.quality import cli


@pytest.fixture()
def offline_home(tmp_path, monkeypatch):
    """Empty TORCH_HOME / NRIQA_WEIGHTS in tmp, and any network connection raises."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path / "weights"))

    def no_network(*a, **k):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    return tmp_path


def _save(obj, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)


def test_paths_follow_the_environment(offline_home):
    c = q.card("dbcnn")
    paths = {w.filename: w.path for w in c.weights}
    assert paths["DBCNN_KonIQ10k-2de81c0a.pth"] == offline_home / "torch/hub/pyiqa/DBCNN_KonIQ10k-2de81c0a.pth"
    assert paths["vgg16-397923af.pth"] == offline_home / "torch/hub/checkpoints/vgg16-397923af.pth"
    assert q.card("mdtvsfa").weights[0].path == offline_home / "weights/mdtvsfa/MDTVSFA.pt"
    assert not c.present and len(c.missing) == 3


def test_missing_weights_one_error_before_build(offline_home, monkeypatch):
    import nriqa.quality.pyiqa_measures as pm

    def must_not_build(*a, **k):
        raise AssertionError("builder ran although weights are missing")

    monkeypatch.setattr(pm, "build_pyiqa", must_not_build)
    with pytest.raises(q.WeightsMissingError) as e:
        q.create("dbcnn")
    msg = str(e.value)
    for name in ("vgg16-397923af.pth", "DBCNN_scnn-7ea73d75.pth", "DBCNN_KonIQ10k-2de81c0a.pth"):
        assert name in msg
    assert str(offline_home / "torch/hub/pyiqa") in msg
    assert "python -m nriqa weights fetch dbcnn" in msg
    # partly present: only the missing file is named
    _save({}, q.card("dbcnn").weights[0].path)
    with pytest.raises(q.WeightsMissingError) as e:
        q.create("dbcnn")
    assert "vgg16-397923af.pth" not in str(e.value) and "DBCNN_scnn" in str(e.value)
    assert "dbcnn" not in q.offline_names()


def test_pyiqa_pieapp_loads_created_file_offline(offline_home):
    from pyiqa.archs.pieapp_arch import PieAPP

    torch.manual_seed(0)
    net = PieAPP(pretrained=False)
    sd = {k: torch.randn_like(v) * 0.05 if v.is_floating_point() else v for k, v in net.state_dict().items()}
    assert q.card("pieapp").missing
    _save(sd, q.card("pieapp").weights[0].path)
    assert q.card("pieapp").present and "pieapp" in q.offline_names()
    m = q.create("pieapp")
    got = m.net.net.state_dict()
    assert set(got) == set(sd) and all(torch.equal(got[k], sd[k]) for k in sd)
    assert not any(p.requires_grad for p in m.parameters()) and not m.training
    x = torch.rand(1, 3, 64, 64)
    s = m(x, x.flip(-1))
    assert s.shape == (1,) and torch.isfinite(s).all()


def test_pyiqa_timm_backbone_is_not_downloaded(offline_home):
    """HyperIQA: the timm ResNet-50 is built bare and fully overwritten by the created checkpoint."""
    from pyiqa.archs.hypernet_arch import HyperNet

    from nriqa.quality.pyiqa_measures import _offline_build

    torch.manual_seed(0)
    with _offline_build():
        net = HyperNet(pretrained=False)
    sd = {k: v + 0.01 if v.is_floating_point() else v for k, v in net.state_dict().items()}
    _save({"params": sd}, q.card("hyperiqa").weights[0].path)
    m = q.create("hyperiqa")
    got = m.net.net.state_dict()
    assert all(torch.equal(got[k], sd[k]) for k in sd)


def test_unlisted_download_is_refused(offline_home):
    """If pyiqa reaches for a file the card does not list, the build fails loudly, offline."""
    from nriqa.quality.pyiqa_measures import build_pyiqa

    with pytest.raises(q.WeightsMissingError, match="nothing is downloaded"):
        build_pyiqa("brisque")


# ---------------------------------------------------------------- MDTVSFA
def _mdtvsfa_files(seed=0):
    import torchvision

    from nriqa.quality.mdtvsfa import QualityHead

    torch.manual_seed(seed)
    head = QualityHead().state_dict()
    head = {k: torch.randn_like(v) * 0.1 for k, v in head.items()}
    _save(head, q.card("mdtvsfa").weights[0].path)
    _save(torchvision.models.resnet50(weights=None).state_dict(), q.card("mdtvsfa").weights[1].path)
    return head


def test_mdtvsfa_loads_created_files_and_scores_video(offline_home):
    with pytest.raises(q.WeightsMissingError, match="MDTVSFA.pt"):
        q.create("mdtvsfa")
    head = _mdtvsfa_files()
    m = q.create("mdtvsfa")
    got = m.net.head.state_dict()
    assert all(torch.equal(got[k], head[k]) for k in head)
    video = torch.rand(2, 3, 3, 64, 64)
    s = m(video)
    assert s.shape == (2,) and ((s > 0) & (s < 1)).all()
    with pytest.raises(ValueError, match="video measure"):
        m(video[0])
    with pytest.raises(ValueError, match="at least 64x64"):
        m(video[..., :32, :32])
    v = video.clone().requires_grad_(True)
    m(v).sum().backward()
    assert torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0


def test_temporal_pooling_matches_definition():
    from nriqa.quality.mdtvsfa import temporal_pooling

    torch.manual_seed(0)
    qs = torch.randn(2, 17)
    tau, beta = 12, 0.5
    want = []
    for row in qs:
        per_frame = []
        for t in range(len(row)):
            memory = row[max(0, t - tau + 1): t + 1].min()
            fut = row[t: t + tau]
            w = torch.exp(-fut)
            per_frame.append(beta * (fut * w).sum() / w.sum() + (1 - beta) * memory)
        want.append(torch.stack(per_frame).mean())
    assert torch.allclose(temporal_pooling(qs, tau, beta), torch.stack(want), atol=1e-6)
    # a single bad stretch pulls the clip score below the plain mean (recency/min effect)
    flat = torch.zeros(1, 30)
    dip = flat.clone()
    dip[0, 10:13] = -2.0
    assert temporal_pooling(dip) < dip.mean()


# ---------------------------------------------------------------- CLI
def test_weights_cli_lists_paths(offline_home, capsys):
    assert cli.weights_main(["maniqa", "psnr"]) == 0
    out = capsys.readouterr().out
    assert "maniqa: MISSING" in out and str(offline_home / "torch/hub/pyiqa/ckpt_koniq10k.pt") in out
    assert "psnr: no weight files needed" in out
    _save({}, q.card("maniqa").weights[0].path)
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
