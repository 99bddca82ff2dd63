"""Every cache nriqa writes and reads back recovers from a corrupt file: a truncated file, garbage
bytes, an empty file or a file with the wrong keys is rebuilt with a warning naming it, and the
rebuilt result equals the original. A trained kit checkpoint cannot be rebuilt: loading a corrupt
one raises an error that names the file and how to recreate it."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nriqa import quality as q
from nriqa.quality import base, kit

CORRUPTIONS = ("truncated", "garbage", "empty")


def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif how == "empty":
        path.write_bytes(b"")
    else:
        raise AssertionError(how)


def no_warnings(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn()


# ----------------------------------------------------------------------------- niqe pristine fit
@pytest.fixture
def niqe_cache(tmp_path, monkeypatch):
    from skimage import data as skd

    from nriqa.quality import niqe as N

    img = torch.from_numpy(skd.astronaut()[:96, :96].copy()).permute(2, 0, 1)[None].float() / 255
    monkeypatch.setenv("NRIQA_CACHE", str(tmp_path))
    monkeypatch.setattr(N, "_pristine_source", lambda: (img, "astronaut 96"))
    first = N.kit_params()
    (path,) = (tmp_path / "niqe").glob("*.npz")
    return N, path, first


@pytest.mark.parametrize("how", CORRUPTIONS + ("wrong keys", "wrong shapes", "a bare .npy"))
def test_niqe_fit_is_refitted_from_a_corrupt_cache_file(niqe_cache, how):
    N, path, first = niqe_cache
    if how == "wrong keys":
        with open(path, "wb") as fh:
            np.savez(fh, foo=np.zeros(3))
    elif how == "wrong shapes":
        with open(path, "wb") as fh:
            np.savez(fh, mu=np.zeros(3), cov=np.eye(3), patches=4, source="x")
    elif how == "a bare .npy":
        with open(path, "wb") as fh:
            np.save(fh, np.zeros(3))
    else:
        corrupt(path, how)
    with pytest.warns(UserWarning, match=f"{path}.*unreadable.*refitting"):
        again = N.kit_params()
    assert np.array_equal(again["mu"], first["mu"]) and np.array_equal(again["cov"], first["cov"])
    assert again["patches"] == first["patches"]
    reread = no_warnings(N.kit_params)  # the file was replaced by a good one
    assert np.array_equal(reread["cov"], first["cov"])
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


# ----------------------------------------------------------------------------- built IQA sets
@pytest.fixture
def iqa_cache(tmp_path, monkeypatch):
    from nriqa.data import iqa_sets as S

    real_build = S.build_distortion_set
    monkeypatch.setenv("NRIQA_CACHE", str(tmp_path))
    monkeypatch.setattr(S, "_pristine_sources", lambda split, n: torch.rand(1, 3, 40, 40,
                                                                             generator=torch.Generator().manual_seed(1)))
    monkeypatch.setattr(S, "build_distortion_set",
                        lambda p, **kw: real_build(p, **{**kw, "kinds": ["gaussian_blur"], "crop": 32}))
    first = S.embedded_distortion_set("test", crop=32, progress=False)
    (path,) = (tmp_path / "iqa").glob("*.pt")
    return S, path, first


@pytest.mark.parametrize("how", CORRUPTIONS + ("wrong keys", "not a dict", "inconsistent lengths"))
def test_iqa_set_is_rebuilt_from_a_corrupt_cache_file(iqa_cache, how):
    S, path, first = iqa_cache
    if how == "wrong keys":
        torch.save({"foo": 1}, path)
    elif how == "not a dict":
        torch.save([1, 2, 3], path)
    elif how == "inconsistent lengths":
        d = dict(first.__dict__)
        d["scores"] = d["scores"][:-1]
        torch.save(d, path)
    else:
        corrupt(path, how)
    with pytest.warns(UserWarning, match=f"{path}.*unreadable.*rebuilding"):
        again = S.embedded_distortion_set("test", crop=32, progress=False)
    assert torch.equal(again.images, first.images) and np.array_equal(again.scores, first.scores)
    assert again.kinds == first.kinds and again.sources == first.sources
    no_warnings(lambda: S.embedded_distortion_set("test", crop=32, progress=False))


# ----------------------------------------------------------------------------- embedded frames
@pytest.fixture
def embedded_unit(tmp_path, monkeypatch):
    from nriqa.data import embedded as E

    monkeypatch.setenv("NRIQA_CACHE", str(tmp_path))
    unit = next(u for u in E.UNITS if u.name == "photo-chelsea")  # a photo pan: no video decoding

    def load():
        E._MEMO.pop(unit.name, None)
        return E._load_unit(unit)

    first = load()
    yield load, E._cache_file(unit), first
    E._MEMO.pop(unit.name, None)


@pytest.mark.parametrize("how", CORRUPTIONS + ("wrong keys", "a bare .npy", "one flipped byte"))
def test_embedded_frames_are_decoded_again_from_a_corrupt_cache_file(embedded_unit, how):
    load, path, first = embedded_unit
    if how == "wrong keys":
        with open(path, "wb") as fh:
            np.savez(fh, foo=np.zeros(3))
    elif how == "a bare .npy":
        with open(path, "wb") as fh:
            np.save(fh, np.zeros(3))
    elif how == "one flipped byte":  # inside the last clip's pixels: a CRC error
        data = bytearray(path.read_bytes())
        data[len(data) - 4096] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        corrupt(path, how)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)  # no file handle leaks on a bad zip
        with pytest.warns(UserWarning, match=f"{path}.*unreadable.*rebuilding"):
            again = load()
    assert list(again) == list(first) and all(np.array_equal(again[k], first[k]) for k in first)
    no_warnings(load)


# ----------------------------------------------------------------------------- kit checkpoints
@pytest.fixture
def kit_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path))
    saved = dict(base._REGISTRY)
    base.unregister_where(lambda card: card.backend == kit.__name__)   # kit measures of earlier tests' folders
    folder = tmp_path / "kit"
    folder.mkdir()
    yield folder
    base._REGISTRY.clear()
    base._REGISTRY.update(saved)


def _good_checkpoint() -> dict:
    from nriqa.models.iqa_nets import build_arch

    torch.manual_seed(0)
    return {"arch": "cnniqa", "state_dict": build_arch("cnniqa").state_dict(),
            "calibration": {"p5": -1.0, "p50": 0.0, "p95": 1.0}}


@pytest.mark.parametrize("how", CORRUPTIONS + ("missing key", "another arch's weights", "not a dict"))
def test_a_corrupt_kit_checkpoint_names_the_file_and_how_to_recreate_it(kit_folder, how):
    path = kit_folder / "cnniqa@embedded.pt"
    ckpt = _good_checkpoint()
    if how == "missing key":
        ckpt.pop("calibration")
    elif how == "another arch's weights":
        ckpt["arch"] = "wadiqam"
    elif how == "not a dict":
        ckpt = [1, 2]
    torch.save(ckpt, path)
    if how in CORRUPTIONS:
        corrupt(path, how)
    hint = r"python -m nriqa train-iqa cnniqa --profile demo"
    with pytest.raises(kit.KitCheckpointError, match=str(path).replace("@", ".") + ".*" + hint) as err:
        kit.load_kit_model(path)
    assert isinstance(err.value, ValueError) and "delete it" in str(err.value)
    if how != "another arch's weights":  # unreadable: the registry skips it with the same message ...
        with pytest.warns(UserWarning, match="cnniqa@embedded"):
            assert "cnniqa@embedded" not in kit.register_kit_models()
        # ... an evaluation whose panel names it stops with that error instead of skipping the measure
        from nriqa.analysis.evaluation import check_panel_names

        with pytest.raises(kit.KitCheckpointError, match="delete it"):
            check_panel_names(["psnr", "cnniqa@embedded"])
    # looking it up and building it raises it (not "unknown measure ... train it first")
    with pytest.raises(kit.KitCheckpointError, match=hint):
        q.create("cnniqa@embedded")
    # recreating the file (what train-iqa's install does) makes it load again
    torch.save(_good_checkpoint(), path)
    assert q.create("cnniqa@embedded")(torch.rand(1, 3, 48, 48)).shape == (1,)


def test_a_kit_checkpoint_of_another_dataset_gets_that_datasets_command(kit_folder):
    path = kit_folder / "wadiqam@koniq10k.pt"
    path.write_bytes(b"garbage")
    with pytest.raises(kit.KitCheckpointError, match="train-iqa wadiqam --profile demo --dataset koniq10k --root"):
        kit.load_kit_model(path)


# ----------------------------------------------------------------------------- evaluation caches
@pytest.fixture
def eval_cache(tmp_path):
    from nriqa.analysis import evaluate

    torch.manual_seed(0)
    hr = torch.rand(1, 3, 3, 32, 32)
    lr = F.interpolate(hr[0], scale_factor=0.25, mode="area")[None]
    test_set = [{"name": "a", "lr": lr, "hr": hr}, {"name": "b", "lr": lr, "hr": hr.flip(-1)}]
    outputs = {"a": (hr[0] + 0.05 * torch.randn_like(hr[0])).clamp(0, 1), "b": hr[0].flip(-1)}

    def run():
        return evaluate(outputs, test_set, ["psnr", "ssim"], run="r", model="m", dataset="d",
                        cache_dir=tmp_path, progress=False)

    first = run()
    (path,) = tmp_path.glob("*psnr*.csv")
    return run, path, first


@pytest.mark.parametrize("how", CORRUPTIONS + ("cut inside the last row", "last row missing", "wrong columns",
                                               "a non-numeric score", "another measure's rows", "utf-16"))
def test_evaluation_cache_is_scored_again_from_a_corrupt_file(eval_cache, how):
    run, path, first = eval_cache
    good = path.read_bytes()
    if how == "cut inside the last row":
        path.write_bytes(good[: good.rindex(b",")])
    elif how == "last row missing":
        path.write_bytes(good[: good.rindex(b"\n", 0, len(good) - 1) + 1])
    elif how == "wrong columns":
        path.write_bytes(b"a,b\n1,2\n")
    elif how == "a non-numeric score":
        path.write_bytes(good.replace(b"psnr,", b"psnr,x", 1))
    elif how == "another measure's rows":
        path.write_bytes(good.replace(b"psnr,", b"ssim,"))
    elif how == "utf-16":
        path.write_bytes(good.decode().encode("utf-16"))
    else:
        corrupt(path, how)
    with pytest.warns(UserWarning, match=f"{path.name}.*unreadable.*scoring 'psnr' again"):
        again = run()
    pd_equal = again.equals(first)
    assert pd_equal, (again, first)
    assert path.read_bytes() == good  # replaced by the same table
    no_warnings(run)
    assert sorted(os.listdir(path.parent)) == sorted(p.name for p in path.parent.glob("*.csv"))  # no temp files
