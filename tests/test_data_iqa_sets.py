"""IQA datasets: fake copies of the published layouts, and the embedded distortion set."""

import cv2
import numpy as np
import pytest
import torch
from doubles import flat_image
from scipy.io import savemat

from nriqa.data import iqa_sets
from nriqa.data.distortions import DISTORTIONS
from nriqa.data.iqa_sets import build_distortion_set, load_iqa_dataset, pseudo_score


@pytest.fixture(autouse=True)
def small_live(monkeypatch):
    """A 12-image LIVE layout instead of 982 (same folders, same loader code)."""
    monkeypatch.setattr(iqa_sets, "LIVE_FOLDERS", (("jp2k", 3), ("jpeg", 3), ("wn", 2), ("gblur", 2),
                                                   ("fastfading", 2)))


def _img(path, seed=0, size=40):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8))


def _fake_koniq(root):
    names = [f"{i}.jpg" for i in range(10)]
    for i, n in enumerate(names):
        _img(root / "1024x768" / n, i)
    (root / "koniq10k_scores_and_distributions.csv").write_text(
        "image_name,c1,MOS,SD\n" + "".join(f"{n},1,{1 + 0.3 * i},0.5\n" for i, n in enumerate(names)))
    return 10


def _fake_kadid(root):
    rows = []
    for r in range(1, 6):
        for t in (1, 2):
            for lv in (1, 2):
                n = f"I{r:02d}_{t:02d}_{lv:02d}.png"
                _img(root / "images" / n, r * 10 + t + lv)
                rows.append(f"{n},I{r:02d}.png,{5 - lv - 0.1 * t},0.1\n")
    (root / "dmos.csv").write_text("dist_img,ref_img,dmos,var\n" + "".join(rows))
    return len(rows)


def _fake_live(root):
    n = sum(k for _, k in iqa_sets.LIVE_FOLDERS)
    for folder, k in iqa_sets.LIVE_FOLDERS:
        for i in range(1, k + 1):
            _img(root / folder / f"img{i}.bmp", i, size=8)
    orgs = np.zeros(n)
    orgs[:2] = 1
    savemat(root / "dmos.mat", {"dmos": np.linspace(0, 90, n)[None], "orgs": orgs[None]})
    refs = np.empty((1, n), dtype=object)
    for i in range(n):
        refs[0, i] = f"ref{i % 6}.bmp"
    savemat(root / "refnames_all.mat", {"refnames_all": refs})
    return n - 2


def _fake_csiq(root):
    rows = []
    for img in ("1600", "bridge", "cactus", "child", "fisher"):
        for typ, tag in (("awgn", "AWGN"), ("jpeg", "JPEG")):
            for lv in (1, 2):
                _img(root / "dst_imgs" / typ / f"{img}.{tag}.{lv}.png", lv)
                rows.append(f"{img},{typ},{lv},{0.1 * lv}\n")
    (root / "csiq_dmos.csv").write_text("image,dst_type,dst_lev,dmos\n" + "".join(rows))
    return len(rows)


def _fake_tid(root):
    lines = []
    for r in range(1, 6):
        for lv in (1, 2):
            n = f"i{r:02d}_01_{lv}.bmp"
            _img(root / "distorted_images" / n, r + lv)
            lines.append(f"{6 - lv:.4f} {n}")
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    return len(lines)


def _fake_pipal(root):
    count = 0
    for r in range(1, 6):
        lines = []
        for d in range(3):
            n = f"A{r:04d}_{d:02d}_00.bmp"
            _img(root / "Train_Dist" / n, r + d)
            lines.append(f"{n},{1400 + 10 * d}")
            count += 1
        (root / "Train_Label").mkdir(parents=True, exist_ok=True)
        (root / "Train_Label" / f"A{r:04d}.txt").write_text("\n".join(lines) + "\n")
    return count


FAKES = {"koniq10k": (_fake_koniq, "koniq10k_scores_and_distributions.csv", True),
         "kadid10k": (_fake_kadid, "dmos.csv", True),
         "live": (_fake_live, "dmos.mat", False),
         "csiq": (_fake_csiq, "csiq_dmos.csv", False),
         "tid2013": (_fake_tid, "mos_with_names.txt", True),
         "pipal": (_fake_pipal, "Train_Label", True)}


@pytest.mark.parametrize("name", list(FAKES))
def test_fake_folder_loads_and_splits_by_content(name, tmp_path):
    make, _, higher = FAKES[name]
    n = make(tmp_path)
    ds = load_iqa_dataset(name, tmp_path)
    assert len(ds) == n and len(ds.sources) == n and ds.label in ("mos", "dmos")
    assert ds.higher_better is higher
    img = ds.image(0)
    assert img.shape[0] == 3 and 0 <= float(img.min()) and float(img.max()) <= 1
    tr, te = ds.split("train"), ds.split("test")
    assert len(tr) + len(te) == n
    assert not set(tr.sources) & set(te.sources)


@pytest.mark.parametrize("name", list(FAKES))
def test_wrong_layout_names_missing_file(name, tmp_path):
    make, key_file, _ = FAKES[name]
    make(tmp_path)
    target = tmp_path / key_file
    if target.is_dir():
        import shutil
        shutil.rmtree(target)
    else:
        target.unlink()
    with pytest.raises(FileNotFoundError, match=key_file.replace(".", r"\.")) as err:
        load_iqa_dataset(name, tmp_path)
    assert "Expected layout" in str(err.value)


def test_missing_image_is_named(tmp_path):
    _fake_tid(tmp_path)
    (tmp_path / "distorted_images" / "i03_01_2.bmp").unlink()
    with pytest.raises(FileNotFoundError, match="i03_01_2.bmp"):
        load_iqa_dataset("tid2013", tmp_path)


def test_unknown_dataset_and_missing_root(tmp_path):
    with pytest.raises(ValueError, match="unknown IQA dataset"):
        load_iqa_dataset("imagenet", tmp_path)
    with pytest.raises(ValueError, match="root"):
        load_iqa_dataset("koniq10k")


def _pristine(n=2, size=72, seed=0):
    from skimage import data as skdata

    imgs = [skdata.astronaut()[50:50 + size, 150:150 + size], skdata.coffee()[100:100 + size, 200:200 + size],
            skdata.chelsea()[60:60 + size, 120:120 + size]]
    return torch.stack([torch.from_numpy(np.ascontiguousarray(i)).permute(2, 0, 1).float() / 255 for i in imgs[:n]])


def test_build_distortion_set_labels():
    ds = build_distortion_set(_pristine(2), crop=64)
    assert len(ds) == 2 * (1 + 5 * len(DISTORTIONS))
    assert ds.images.dtype == torch.uint8 and tuple(ds.images.shape[1:]) == (3, 64, 64)
    assert ds.label == "pseudo"
    pristine = [i for i, k in enumerate(ds.kinds) if k == "pristine"]
    assert np.allclose(ds.scores[pristine], 1.0)
    for src in set(ds.sources):
        for kind in DISTORTIONS:
            idx = [i for i, (s, k) in enumerate(zip(ds.sources, ds.kinds)) if s == src and k == kind]
            order = np.argsort(ds.levels[idx])
            assert list(ds.levels[idx][order]) == [1, 2, 3, 4, 5]
            assert ds.scores[idx].max() < 1.0
    # mean pseudo-score falls with the level
    means = [ds.scores[ds.levels == lv].mean() for lv in range(1, 6)]
    assert all(np.diff(means) < 0)
    again = build_distortion_set(_pristine(2), crop=64)
    assert torch.equal(ds.images, again.images) and np.array_equal(ds.scores, again.scores)


def test_pseudo_score_range():
    x = _pristine(1)[0]
    assert pseudo_score(x, x) == pytest.approx(1.0)
    assert 0.0 <= pseudo_score(torch.rand_like(x), x) < 0.5


def test_embedded_set_splits_are_content_disjoint_and_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(iqa_sets, "cache_dir", lambda: tmp_path)
    tr = iqa_sets.embedded_distortion_set("train", crop=64, max_sources=3, progress=False)
    te = iqa_sets.embedded_distortion_set("test", crop=64, max_sources=3, progress=False)
    assert len(tr) == len(te) == 3 * (1 + 5 * len(DISTORTIONS))
    assert not set(tr.sources) & set(te.sources)
    def hashes(ds):
        return {ds.images[i].numpy().tobytes() for i, k in enumerate(ds.kinds) if k == "pristine"}

    assert not hashes(tr) & hashes(te)
    cached = list((tmp_path / "iqa").glob("embedded-train-*.pt"))
    assert len(cached) == 1
    again = iqa_sets.embedded_distortion_set("train", crop=64, max_sources=3, progress=False)
    assert torch.equal(again.images, tr.images)
    with pytest.raises(ValueError, match="split"):
        iqa_sets.embedded_distortion_set("val")


def test_spaq_and_live_challenge_layouts_load(tmp_path):
    from scipy.io import savemat

    from nriqa.data.iqa_sets import load_iqa_dataset
    spaq = tmp_path / "spaq"
    for i in range(4):
        flat_image(spaq / "TestImage" / f"{i:05d}.jpg", 30 * i)
    (spaq / "Annotations").mkdir()
    (spaq / "Annotations" / "MOS and Image attribute scores.csv").write_text(
        "Image name,MOS,Brightness\n" + "".join(f"{i:05d}.jpg,{10 * i + 5},50\n" for i in range(4)))
    ds = load_iqa_dataset("spaq", spaq)
    assert (ds.name, ds.label, len(ds), ds.scores.tolist()) == ("spaq", "mos", 4, [5.0, 15.0, 25.0, 35.0])

    livec = tmp_path / "livec"
    names = ["t1.bmp", "10.bmp", "11.bmp"]
    flat_image(livec / "Images" / "trainingImages" / "t1.bmp", 10)
    flat_image(livec / "Images" / "10.bmp", 20)
    flat_image(livec / "Images" / "11.bmp", 30)
    (livec / "Data").mkdir()
    cell = np.empty((3, 1), dtype=object)
    for i, n in enumerate(names):
        cell[i, 0] = n
    savemat(livec / "Data" / "AllImages_release.mat", {"AllImages_release": cell})
    savemat(livec / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.array([[50.0, 60.0, 70.0]])})
    ds = load_iqa_dataset("live-challenge", livec)
    assert ds.sources == names and ds.scores.tolist() == [50.0, 60.0, 70.0]
    assert ds.images[0].parent.name == "trainingImages" and float(ds.image(2).mean()) == pytest.approx(30 / 255)
    (livec / "Images" / "11.bmp").unlink()
    with pytest.raises(FileNotFoundError, match="11.bmp"):
        load_iqa_dataset("live-challenge", livec)
