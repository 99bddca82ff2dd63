"""Convert state_dicts between the authors' released layouts and nriqa's.

``convert_state_dict(name, ref_sd) -> our_sd`` accepts the key layout of

- basicvsrpp: BasicSR ``BasicVSRPlusPlus`` (mmagic's ``generator.``-prefixed keys and
  ``upsample1.upsample_conv`` / ``ConvModule`` ``.conv`` spellings too);
- iseebetter: RBPN-PyTorch / iSeeBetter ``rbpn.Net`` (``module.`` prefix from DataParallel
  allowed). It has no SpyNet (the original used pyflow offline), so the converted dict lacks
  ``spynet.*``: load it with ``strict=False`` or add SpyNet weights;
- vrt, vrt16: JingyunLiang/VRT ``network_vrt.VRT`` (``pa_frames=2``: the 6-frame REDS model;
  ``pa_frames=6``: the 16-frame one).

Non-parameter buffers of the references (SpyNet mean/std, VRT's relative position index
and sine position code) are dropped: nriqa recomputes them. Checkpoint wrappers
(``params``, ``params_ema``, ``state_dict``) are unwrapped. ``to_reference_state_dict``
is the inverse (parameters only), used by the tests and to export.
"""
from __future__ import annotations

import re
from typing import Callable

import torch
import torch.nn as nn

Rule = tuple[str, "str | Callable[[re.Match], str]"]

_SPYNET: list[Rule] = [
    (r"^spynet\.basic_module\.(\d+)\.basic_module\.(\d+)\.(?:conv\.)?", r"spynet.basic_module.\1.layers.\2."),
]
_SPYNET_INV: list[Rule] = [
    (r"^spynet\.basic_module\.(\d+)\.layers\.(\d+)\.", r"spynet.basic_module.\1.basic_module.\2."),
]

_BLOCKS = r"(feat_extract|reconstruction|backbone\.\w+)"
_RULES: dict[str, list[Rule]] = {
    "basicvsrpp": _SPYNET + [
        (rf"^{_BLOCKS}\.main\.0\.", r"\1.conv_in."),
        (rf"^{_BLOCKS}\.main\.2\.(\d+)\.", r"\1.blocks.\2."),
        (r"^upconv([12])\.", r"upsample\1.conv."),
        (r"^upsample([12])\.upsample_conv\.", r"upsample\1.conv."),
    ],
    "iseebetter": [
        (r"\.deconv\.", ".conv."),
        (r"^DBPN\.up(\d+)\.", lambda m: f"DBPN.ups.{int(m[1]) - 1}."),
        (r"^DBPN\.down(\d+)\.", lambda m: f"DBPN.downs.{int(m[1]) - 1}."),
    ],
    "vrt": _SPYNET + [
        (r"^stage([1-7])\.", lambda m: f"stages.{int(m[1]) - 1}."),
        (r"^(stages\.\d+)\.reshape\.1\.", r"\1.reshape.norm."),
        (r"^(stages\.\d+)\.reshape\.2\.", r"\1.reshape.linear."),
        (r"^stage8\.0\.1\.", "stage8_norm."),
        (r"^stage8\.0\.2\.", "stage8_linear."),
        (r"^stage8\.(\d+)\.", lambda m: f"stage8.{int(m[1]) - 1}."),
        (r"^conv_before_upsample\.0\.", "conv_before_upsample."),
        (r"^upsample\.0\.", "upsample.0."),
        (r"^upsample\.5\.", "upsample.1."),
        (r"^upsample\.10\.", "upsample_last."),
    ],
}
_INVERSE: dict[str, list[Rule]] = {
    "basicvsrpp": _SPYNET_INV + [
        (rf"^{_BLOCKS}\.conv_in\.", r"\1.main.0."),
        (rf"^{_BLOCKS}\.blocks\.(\d+)\.", r"\1.main.2.\2."),
        (r"^upsample([12])\.conv\.", r"upconv\1."),
    ],
    "iseebetter": [
        (r"^DBPN\.ups\.(\d+)\.", lambda m: f"DBPN.up{int(m[1]) + 1}."),
        (r"^DBPN\.downs\.(\d+)\.", lambda m: f"DBPN.down{int(m[1]) + 1}."),
    ],
    "vrt": _SPYNET_INV + [
        (r"^stages\.(\d+)\.", lambda m: f"stage{int(m[1]) + 1}."),
        (r"^(stage\d)\.reshape\.norm\.", r"\1.reshape.1."),
        (r"^(stage\d)\.reshape\.linear\.", r"\1.reshape.2."),
        (r"^stage8\.(\d+)\.", lambda m: f"stage8.{int(m[1]) + 1}."),
        (r"^stage8_norm\.", "stage8.0.1."),
        (r"^stage8_linear\.", "stage8.0.2."),
        (r"^conv_before_upsample\.", "conv_before_upsample.0."),
        (r"^upsample\.0\.", "upsample.0."),
        (r"^upsample\.1\.", "upsample.5."),
        (r"^upsample_last\.", "upsample.10."),
    ],
}
_RULES["vrt16"], _INVERSE["vrt16"] = _RULES["vrt"], _INVERSE["vrt"]
_DROP = {
    "basicvsrpp": r"^spynet\.(mean|std)$",
    "iseebetter": r"^$",
    "vrt": r"^spynet\.(mean|std)$|\.relative_position_index$|\.position_bias$",
}
_DROP["vrt16"] = _DROP["vrt"]
# VRT's (1,3,3) Conv3d layers are Conv2d here: weights (O,I,1,3,3) <-> (O,I,3,3)
_VRT_FRAME_CONVS = r"^(conv_first|conv_before_upsample|upsample\.\d+|upsample_last|conv_last)\.weight$"


def _apply(rules: list[Rule], key: str) -> str:
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


def _unwrap(sd: dict) -> dict:
    for wrapper in ("params_ema", "params", "state_dict"):
        if wrapper in sd and isinstance(sd[wrapper], dict):
            return sd[wrapper]
    return sd


def convert_state_dict(name: str, ref_sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a reference-layout state_dict of model ``name`` onto nriqa's key layout."""
    if name not in _RULES:
        raise ValueError(f"no converter for model {name!r}; expected one of {list(_RULES)}")
    if not isinstance(ref_sd, dict):
        raise TypeError(f"ref_sd must be a dict of tensors; got {type(ref_sd).__name__}")
    out: dict[str, torch.Tensor] = {}
    for key, value in _unwrap(ref_sd).items():
        key = re.sub(r"^(generator|module)\.", "", key)
        if re.search(_DROP[name], key):
            continue
        new = _apply(_RULES[name], key)
        if name in ("vrt", "vrt16") and re.match(_VRT_FRAME_CONVS, new) and value.dim() == 5:
            value = value.squeeze(2)
        out[new] = value
    return out


def to_reference_state_dict(name: str, model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters of our ``model`` under the reference key layout (buffers omitted)."""
    if name not in _INVERSE:
        raise ValueError(f"no converter for model {name!r}; expected one of {list(_INVERSE)}")
    transposed = {n for n, m in model.named_modules() if isinstance(m, nn.ConvTranspose2d)}
    buffers = {k for k, _ in model.named_buffers()}
    out: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        if key in buffers:
            continue
        if name == "iseebetter":
            if key.startswith("spynet."):
                continue  # the reference has no flow network
            module = key.rsplit(".", 1)[0]
            if module in transposed:
                key = key[: -len(".conv." + key.rsplit(".", 1)[1])] + ".deconv." + key.rsplit(".", 1)[1]
        if name in ("vrt", "vrt16") and re.match(_VRT_FRAME_CONVS, key):
            value = value.unsqueeze(2)
        out[_apply(_INVERSE[name], key)] = value
    return out


def convert_spynet_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SpyNet weights from BasicSR/mmagic/VRT key names (with or without a ``spynet.`` prefix)."""
    out = {}
    for key, value in _unwrap(sd).items():
        key = re.sub(r"^(generator\.|module\.)?(spynet\.)?", "", key)
        if key in ("mean", "std"):
            continue
        key = re.sub(r"^basic_module\.(\d+)\.basic_module\.(\d+)\.(?:conv\.)?", r"basic_module.\1.layers.\2.", key)
        out[key] = value
    return out
