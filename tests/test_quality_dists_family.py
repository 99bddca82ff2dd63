"""DISTS family: identical -> ~0, more distortion -> larger, finite gradients, offline behaviour."""
import numpy as np
import pytest
import torch
from skimage import data as skdata

from nriqa import quality
from nriqa.data.distortions import distort
from nriqa.quality import dists_family
from nriqa.quality.dists_family import DISTSFamily


def _crops(size=64):
    spec = [("astronaut", 100, 100), ("coffee", 300, 100)]
    out = [getattr(skdata, n)()[t:t + size, l:l + size] for n, t, l in spec]
    return torch.stack([torch.from_numpy(np.ascontiguousarray(o)).permute(2, 0, 1).float() / 255 for o in out])


@pytest.fixture(scope="module")
def randtrunk():
    return quality.create("dists-vgg-randtrunk")


def test_cards_registered():
    for name in ("dists-vgg", "dists-vgg-randtrunk", "dists-resnet50", "dists-vit"):
        c = quality.card(name)
        assert c.mode == "FR" and not c.higher_better and c.differentiable and c.score_range == (0.0, 1.0)
    assert quality.card("dists-vgg-randtrunk").weights == ()
    assert [w.filename for w in quality.card("dists-vgg").weights] == ["vgg16-397923af.pth"]
    assert [w.filename for w in quality.card("dists-resnet50").weights] == ["resnet50-0676ba61.pth"]
    assert [w.filename for w in quality.card("dists-vit").weights] == ["vit_b_16-c867db91.pth"]


def test_identical_zero_and_monotone_in_distortion(randtrunk):
    x = _crops()
    assert float(randtrunk(x, ref=x).abs().max()) < 1e-5
    for kind in ("gaussian_blur", "white_noise"):
        d = [randtrunk(torch.stack([distort(i, kind, lv) for i in x]), ref=x) for lv in (1, 3, 5)]
        assert bool((d[0] > 1e-4).all())
        assert bool((d[1] > d[0]).all() and (d[2] > d[1]).all()), (kind, d)
        assert bool((d[2] < 1).all())


def test_gradients_finite(randtrunk):
    ref = _crops()
    x = torch.stack([distort(i, "jpeg", 4) for i in ref]).requires_grad_(True)
    quality.to_loss(randtrunk(x, ref=ref), randtrunk.card).sum().backward()
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0
    # also at the identity point (c1, c2 keep the ratios finite)
    y = ref.clone().requires_grad_(True)
    randtrunk(y, ref=ref).sum().backward()
    assert torch.isfinite(y.grad).all()


def test_randtrunk_is_deterministic():
    a, b = DISTSFamily("vgg-randtrunk"), DISTSFamily("vgg-randtrunk")
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_pretrained_weights_missing_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(quality.WeightsMissingError, match="vgg16-397923af.pth"):
        quality.create("dists-vgg")
    with pytest.raises(FileNotFoundError, match="resnet50-0676ba61.pth"):
        DISTSFamily("resnet50")


def test_resnet_backbone_structure(monkeypatch):
    # random weights instead of the ImageNet file: checks the stage wiring, not the weights
    monkeypatch.setattr(dists_family, "_load_torchvision", lambda model, wf: model)
    net = DISTSFamily("resnet50").eval()
    x = _crops()
    with torch.no_grad():
        assert float(net(x, x).abs().max()) < 1e-5
        assert bool((net(torch.stack([distort(i, "gaussian_blur", 5) for i in x]), x) > 1e-4).all())
    assert [f.shape[1] for f in net.features(x)] == [3, 64, 256, 512, 1024, 2048]


def test_bad_input_shapes(randtrunk):
    x = _crops()
    with pytest.raises(ValueError):
        randtrunk(x, ref=x[:1])
    with pytest.raises(ValueError, match="full-reference"):
        randtrunk(x)


def test_pretrained_vgg_loads_from_a_file_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    trunk = DISTSFamily("vgg-randtrunk").backbone
    convs = [m for st in trunk.stages for m in st if isinstance(m, torch.nn.Conv2d)]
    state = {}
    torch.manual_seed(1)
    for idx, conv in zip([0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28], convs):   # torchvision key indices
        state[f"features.{idx}.weight"] = torch.randn_like(conv.weight) * 0.01
        state[f"features.{idx}.bias"] = torch.zeros_like(conv.bias)
    path = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    m = quality.create("dists-vgg")
    loaded = [mm for st in m.net.backbone.stages for mm in st if isinstance(mm, torch.nn.Conv2d)]
    assert torch.equal(loaded[0].weight, state["features.0.weight"])
    assert torch.equal(loaded[-1].weight, state["features.28.weight"])
    x = _crops()
    assert float(m(x, ref=x).abs().max()) < 1e-5
