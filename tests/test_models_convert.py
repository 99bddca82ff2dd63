"""Reference-layout state_dicts convert to ours; SpyNet weights load only from a local file."""
from __future__ import annotations

import pytest
import torch

from nriqa.models import build
from nriqa.models.convert import convert_state_dict, to_reference_state_dict

# key names of the released implementations (read from their code / checkpoints)
REFERENCE_KEYS = {
    "basicvsrpp": ["spynet.basic_module.5.basic_module.8.bias", "feat_extract.main.0.weight",
                   "feat_extract.main.2.4.conv2.weight", "backbone.forward_2.main.2.6.conv1.bias",
                   "deform_align.backward_2.conv_offset.6.weight", "reconstruction.main.0.weight",
                   "upconv1.weight", "upconv2.bias", "conv_hr.weight", "conv_last.bias"],
    "iseebetter": ["feat0.conv.weight", "feat1.act.weight", "DBPN.up3.up_conv3.deconv.weight",
                   "DBPN.down2.down_conv2.deconv.bias", "DBPN.output.conv.weight",
                   "res_feat1.5.deconv.weight", "res_feat3.4.conv2.weight", "res_feat3.5.conv.weight",
                   "output.conv.bias"],
    "vrt": ["conv_first.weight", "stage1.reshape.1.weight", "stage2.reshape.2.weight",
            "stage1.residual_group1.blocks.5.attn.qkv_mut.weight", "stage7.residual_group2.blocks.1.mlp.fc12.bias",
            "stage4.pa_deform.conv_offset.6.weight", "stage5.pa_fuse.fc2.weight", "stage8.0.2.weight",
            "stage8.6.residual_group.blocks.3.attn.relative_position_bias_table", "stage8.6.linear.bias",
            "conv_before_upsample.0.weight", "upsample.5.weight", "upsample.10.bias", "norm.weight",
            "conv_after_body.weight", "spynet.basic_module.0.basic_module.0.weight"],
}
REFERENCE_KEYS["vrt16"] = REFERENCE_KEYS["vrt"]


@pytest.mark.parametrize("name", list(REFERENCE_KEYS))
def test_paper_models_export_the_reference_key_names(name):
    ref = to_reference_state_dict(name, build(name, "paper"))
    missing = [k for k in REFERENCE_KEYS[name] if k not in ref]
    assert not missing
    if name.startswith("vrt"):  # (1,3,3) Conv3d in the reference
        assert ref["conv_first.weight"].shape == (120, 27, 1, 3, 3)
    if name == "vrt16":  # 6-frame parallel warping: 3 neighbours per side, 24 deformable groups
        assert ref["stage1.pa_deform.weight"].shape == (120, 120, 3, 3)
        assert ref["stage1.pa_deform.conv_offset.0.weight"].shape == (120, 4 * 120 + 6, 3, 3)
        assert ref["stage1.pa_deform.conv_offset.6.weight"].shape == (27 * 24, 120, 3, 3)


@pytest.mark.parametrize("name", list(REFERENCE_KEYS))
def test_reference_state_dict_converts_and_loads(name):
    torch.manual_seed(0)
    model = build(name, "tiny")
    ref = {k: torch.randn_like(v) for k, v in to_reference_state_dict(name, model).items()}
    # buffers the references carry and we recompute are dropped
    if name != "iseebetter":
        ref["spynet.mean"] = torch.zeros(1, 3, 1, 1)
    if name.startswith("vrt"):
        ref["stage1.residual_group1.blocks.0.attn.position_bias"] = torch.zeros(1, 4, 6)
    ours = convert_state_dict(name, {"params": {f"module.{k}": v for k, v in ref.items()}})
    missing, unexpected = model.load_state_dict(ours, strict=False)
    assert not unexpected
    assert all(k.startswith("spynet.") for k in missing)
    assert bool(missing) == (name == "iseebetter")  # RBPN's reference has no flow network
    again = to_reference_state_dict(name, model)
    assert again.keys() == {k for k in ref if not k.endswith(".position_bias") and k != "spynet.mean"}
    for k, v in again.items():
        assert torch.equal(v, ref[k]), k


def test_unknown_model_is_rejected():
    with pytest.raises(ValueError, match="no converter"):
        convert_state_dict("edvr", {})
