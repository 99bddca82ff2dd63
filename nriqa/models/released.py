"""Where the authors publish their trained weights: the files ``import-checkpoint`` turns into
baseline runs and ``python -m nriqa weights fetch NAME`` downloads (nothing else downloads them).

Each :class:`Released` is data: the file name, its address, and (where the publisher's file name
carries it) the first digits of its sha256. Files live in ``<NRIQA_WEIGHTS>/models/``
(:func:`released_path`). ``model`` is the generator the weights fit (:func:`nriqa.models.build`
name, at the ``paper`` size), or ``"spynet"`` for a flow network alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nriqa.paths import weights_dir

SUBDIR = "models"


@dataclass(frozen=True)
class Released:
    """One published checkpoint."""

    name: str
    model: str
    filename: str
    url: str
    sha256: str | None
    description: str


RELEASED: dict[str, Released] = {r.name: r for r in (
    Released("basicvsrpp", "basicvsrpp", "basicvsr_plusplus_c64n7_8x1_600k_reds4_20210217-db622b2f.pth",
             "https://download.openmmlab.com/mmediting/restorers/basicvsr_plusplus/"
             "basicvsr_plusplus_c64n7_8x1_600k_reds4_20210217-db622b2f.pth", "db622b2f",
             "BasicVSR++ (Chan et al., CVPR 2022), REDS BI x4, Charbonnier, 600k iterations (MMEditing)"),
    Released("vrt", "vrt", "001_VRT_videosr_bi_REDS_6frames.pth",
             "https://github.com/JingyunLiang/VRT/releases/download/v0.0/001_VRT_videosr_bi_REDS_6frames.pth", None,
             "VRT (Liang et al., 2022), REDS BI x4, 6-frame model, Charbonnier"),
    Released("vrt16", "vrt16", "002_VRT_videosr_bi_REDS_16frames.pth",
             "https://github.com/JingyunLiang/VRT/releases/download/v0.0/002_VRT_videosr_bi_REDS_16frames.pth", None,
             "VRT (Liang et al., 2022), REDS BI x4, 16-frame model (the paper's 35.6M), Charbonnier"),
    Released("iseebetter", "iseebetter", "netG_epoch_4_1.pth",
             "https://github.com/amanchadha/iSeeBetter/raw/master/weights/netG_epoch_4_1.pth", None,
             "iSeeBetter RBPN generator (Chadha et al., CVM 2020), Vimeo-90K BI x4, 4 epochs of its GAN + MSE + "
             "perceptual + TV loss (not a pixel-loss baseline); no flow network (it used pyflow): SpyNet comes "
             "from the profile's spynet_weights"),
    Released("spynet", "spynet", "spynet_20210409-c6c1bd09.pth",
             "https://download.openmmlab.com/mmediting/restorers/basicvsr/spynet_20210409-c6c1bd09.pth", "c6c1bd09",
             "SpyNet (Ranjan & Black, CVPR 2017) as BasicVSR/BasicVSR++ start from it (MMEditing)"),
)}


def released(name: str) -> Released:
    """The published checkpoint ``name``; ``KeyError`` listing the known ones."""
    if name not in RELEASED:
        raise KeyError(f"no published checkpoint {name!r}; known: {', '.join(RELEASED)}")
    return RELEASED[name]


def released_path(name: str) -> Path:
    """Where the file of published checkpoint ``name`` is expected (it may be absent)."""
    return weights_dir() / SUBDIR / released(name).filename


#: the kit's own baselines, trained by ``python -m nriqa release MODEL`` and shipped inside the package:
#: ``<model>-<size>.pt`` (a state_dict in nriqa's key layout) beside ``<model>-<size>.json`` (its provenance)
KIT_RELEASE_DIR = Path(__file__).with_name("kit_releases")


def kit_release_file(model: str, size: str = "tiny") -> Path:
    """The shipped weights of the kit baseline ``model`` at ``size`` (the file may be absent)."""
    return KIT_RELEASE_DIR / f"{model}-{size}.pt"


def kit_release_info(model: str, size: str = "tiny") -> dict:
    """The provenance of a shipped kit baseline (command, commit, config hash, sha256, training curve,
    gain over bicubic); FileNotFoundError naming the command that makes it when it is absent."""
    import json

    path = kit_release_file(model, size).with_suffix(".json")
    if not path.is_file() or not kit_release_file(model, size).is_file():
        raise FileNotFoundError(f"no kit release of {model} ({size}) in {KIT_RELEASE_DIR}; make it with "
                                f"`python -m nriqa release {model} --profile demo`")
    return json.loads(path.read_text())


def spynet_file(value: str | None) -> Path | None:
    """A profile's ``spynet_weights``: a :data:`RELEASED` name (its file under the weights folder)
    or a path; ``None``/empty: no pretrained SpyNet."""
    if not value:
        return None
    return released_path(value) if value in RELEASED else Path(value).expanduser()
