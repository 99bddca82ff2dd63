"""Assessment accuracy labels with known answers: the level order (primary), the FR pseudo-score
with the assessed measure left out, and the human-rated sets wired through asymmetry.iqa_sets."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from nriqa.analysis.asymmetry import assessment_accuracy, assessment_frame, level_order_srcc, pseudo_labels
from nriqa.data.iqa_sets import IQASet
from nriqa.errors import ConfigError
from nriqa.study import assess_vs_optimize as study


def _levels_set():
    """2 sources x 2 kinds x levels 0..3; pixel value encodes the level (image = level / 10)."""
    imgs, sources, kinds, levels = [], [], [], []
    for s in ("a", "b"):
        imgs.append(torch.zeros(3, 8, 8, dtype=torch.uint8))
        sources.append(s), kinds.append("pristine"), levels.append(0)
        for k in ("blur", "noise"):
            for lv in (1, 2, 3):
                imgs.append(torch.full((3, 8, 8), 20 * lv + (5 if k == "noise" else 0), dtype=torch.uint8))
                sources.append(s), kinds.append(k), levels.append(lv)
    n = len(imgs)
    return IQASet("t", torch.stack(imgs), np.zeros(n), sources, kinds, np.array(levels), "pseudo")


class Level(torch.nn.Module):
    """NR, lower is better: the mean pixel value (= the level, by construction)."""
    card = SimpleNamespace(name="level", mode="NR", higher_better=False)

    def forward(self, x):
        return x.mean((1, 2, 3))


def test_a_measure_equal_to_the_level_orders_perfectly():
    ds = _levels_set()
    scores = ds.levels.astype(float)
    assert level_order_srcc(scores, ds.sources, ds.kinds, ds.levels, higher_better=False)["srcc"] == 1.0
    assert level_order_srcc(scores, ds.sources, ds.kinds, ds.levels, higher_better=True)["srcc"] == -1.0
    flat = level_order_srcc(np.ones(len(scores)), ds.sources, ds.kinds, ds.levels)
    assert flat == {"srcc": 0.0, "krcc": 0.0, "groups": 4}
    pseudo = {"psnr": np.zeros(len(ds)), "ssim": np.zeros(len(ds)), "gmsd": np.zeros(len(ds))}
    darker = -ds.images.float().mean((1, 2, 3)).numpy()   # a pseudo-label that orders as the measure does
    acc = assessment_accuracy(Level(), ds, pseudo={**pseudo, "psnr": darker})
    assert (acc["label"], acc["mode"], acc["srcc"], acc["groups"]) == ("level order", "NR", 1.0, 4)
    assert acc["srcc_fr_pseudo"] == pytest.approx(1.0) and acc["fr_pseudo_terms"] == "psnr+ssim+gmsd"


def test_level_order_srcc_equals_scipy_per_group():
    """The array form gives scipy's Spearman rho and Kendall tau-b of every group, averaged: groups
    of several sizes, tied scores, a flat group (0), a group with one level >= 1 (left out)."""
    from scipy import stats as sps
    rng = np.random.default_rng(0)
    sources, kinds, levels, scores = [], [], [], []
    for g, n in enumerate([5, 5, 3, 4, 5, 2]):
        lv = rng.permutation(np.arange(1, n + 1))
        if g == 4:
            lv[:2] = lv[2]                                    # tied levels
        sc = rng.integers(0, 3, n).astype(float) if g != 3 else np.full(n, 0.7)   # ties; group 3 flat
        sources += [f"s{g}"] * (n + 1)
        kinds += ["blur"] * (n + 1)
        levels += [0, *lv]
        scores += [9.0, *sc]
    sources += ["lone", "lone"]
    kinds += ["noise", "noise"]
    levels += [0, 1]
    scores += [1.0, 2.0]
    s, lv = np.array(scores), np.array(levels)
    rhos, taus = [], []
    for g in sorted(set(sources) - {"lone"}):
        idx = [i for i, src in enumerate(sources) if src == g and levels[i] >= 1]
        x, y = s[idx], -lv[idx].astype(float)
        flat = np.ptp(x) == 0
        rhos.append(0.0 if flat else sps.spearmanr(x, y)[0])
        taus.append(0.0 if flat else sps.kendalltau(x, y)[0])
    got = level_order_srcc(s, sources, kinds, lv)
    assert got["groups"] == 6
    assert got["srcc"] == pytest.approx(np.mean(rhos), abs=1e-12) and got["krcc"] == pytest.approx(np.mean(taus), abs=1e-12)


def test_leave_one_out_pseudo_label_excludes_the_measure():
    terms = {"psnr": np.array([1.0, 0.0]), "ssim": np.array([0.0, 1.0]), "gmsd": np.array([0.5, 0.5])}
    labels, used = pseudo_labels(terms, leave_out="gmsd")
    assert used == ["psnr", "ssim"] and labels.tolist() == [0.5, 0.5]
    labels, used = pseudo_labels(terms, leave_out="psnr")
    assert used == ["ssim", "gmsd"] and labels.tolist() == [0.25, 0.75]
    assert pseudo_labels(terms, leave_out="niqe")[1] == ["psnr", "ssim", "gmsd"]

    class GMSD(Level):
        card = SimpleNamespace(name="gmsd", mode="NR", higher_better=False)

    acc = assessment_accuracy(GMSD(), _levels_set(), pseudo={k: np.arange(14.0) for k in terms})
    assert acc["fr_pseudo_terms"] == "psnr+ssim"


def test_frame_keeps_fr_and_nr_apart():
    assess = {"a": {"mode": "NR", "label": "level order", "srcc": 0.2}, "b": {"mode": "FR", "srcc": 0.1},
              "c": {"mode": "NR", "srcc": 0.9}}
    assert list(assessment_frame(assess).index) == ["b", "c", "a"]


def _img(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((40, 48, 3), value, np.uint8))


def _fake_tid(root):
    """TID2013 layout (mos_with_names.txt, distorted_images/, reference_images/): MOS falls with level."""
    lines = []
    for r in (1, 2):
        _img(root / "reference_images" / f"I{r:02d}.BMP", 100)
        for lv in (1, 2, 3):
            name = f"i{r:02d}_01_{lv}.bmp"
            _img(root / "distorted_images" / name, 100 + 30 * lv)
            lines.append(f"{6 - lv:.3f} {name}")
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")


def _fake_koniq(root):
    """KonIQ-10k layout: brighter image = higher MOS."""
    rows = []
    for i in range(5):
        _img(root / "1024x768" / f"{i}.jpg", 40 * i + 20)
        rows.append(f"{i}.jpg,1,{1 + i},0.5\n")
    (root / "koniq10k_scores_and_distributions.csv").write_text("image_name,c1,MOS,SD\n" + "".join(rows))


def test_profile_iqa_sets_assess_fr_on_fr_sets_and_nr_on_nr_sets(tmp_path, monkeypatch):
    _fake_tid(tmp_path / "tid")
    _fake_koniq(tmp_path / "koniq")
    cfg = {"asymmetry": {"measures": ["psnr", "brightness"],
                         "iqa_sets": {"fr": [{"name": "tid2013", "root": str(tmp_path / "tid")}],
                                      "nr": [{"name": "koniq10k", "root": str(tmp_path / "koniq")}]}}}
    sets = study.human_rated_sets(cfg)
    assert [d.name for d in sets["fr"]] == ["tid2013"] and [d.name for d in sets["nr"]] == ["koniq10k"]
    assert sets["fr"][0].refs is not None and sets["nr"][0].refs is None

    class Bright(torch.nn.Module):
        card = SimpleNamespace(name="brightness", mode="NR", higher_better=True)

        def forward(self, x):
            return x.mean((1, 2, 3))

    cards = {"psnr": SimpleNamespace(mode="FR", present=True), "brightness": SimpleNamespace(mode="NR", present=True)}
    monkeypatch.setattr(study.quality, "card", lambda n: cards[n])
    real_create = study.quality.create
    monkeypatch.setattr("nriqa.quality.create", lambda n, **k: Bright() if n == "brightness" else real_create(n, **k))
    acc = study.assessment_accuracies(cfg)
    assert acc["psnr"]["mode"] == "FR" and acc["psnr"]["label"] == "mos" and acc["psnr"]["n"] == 6
    assert acc["psnr"]["srcc"] == pytest.approx(1.0) and acc["psnr"]["srcc_tid2013"] == pytest.approx(1.0)
    assert acc["brightness"]["srcc_koniq10k"] == pytest.approx(1.0) and acc["brightness"]["n"] == 5
    with pytest.raises(ConfigError, match="unknown IQA dataset"):
        study.human_rated_sets({"asymmetry": {"iqa_sets": {"nr": [{"name": "nope", "root": "x"}]}}})
    assert study.human_rated_sets({"asymmetry": {"iqa_sets": None}}) == {}


def test_spaq_and_live_challenge_layouts_load(tmp_path):
    from scipy.io import savemat

    from nriqa.data.iqa_sets import load_iqa_dataset
    spaq = tmp_path / "spaq"
    for i in range(4):
        _img(spaq / "TestImage" / f"{i:05d}.jpg", 30 * i)
    (spaq / "Annotations").mkdir()
    (spaq / "Annotations" / "MOS and Image attribute scores.csv").write_text(
        "Image name,MOS,Brightness\n" + "".join(f"{i:05d}.jpg,{10 * i + 5},50\n" for i in range(4)))
    ds = load_iqa_dataset("spaq", spaq)
    assert (ds.name, ds.label, len(ds), ds.scores.tolist()) == ("spaq", "mos", 4, [5.0, 15.0, 25.0, 35.0])

    livec = tmp_path / "livec"
    names = ["t1.bmp", "10.bmp", "11.bmp"]
    _img(livec / "Images" / "trainingImages" / "t1.bmp", 10)
    _img(livec / "Images" / "10.bmp", 20)
    _img(livec / "Images" / "11.bmp", 30)
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
