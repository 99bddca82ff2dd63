"""nriqa.models.spynet: SpyNet weights load only from a local file."""
from __future__ import annotations

import pytest
import torch

from nriqa.models import build, load_spynet_weights
from nriqa.models.spynet import SpyNet


def test_spynet_weights_load_from_a_local_file_only(tmp_path):
    missing = tmp_path / "nope" / "spynet.pth"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        build("basicvsrpp", "tiny", spynet_path=str(missing))
    source = SpyNet(levels=4, widths=(16, 16, 8, 8), kernel=3)
    sd = {f"spynet.basic_module.{k.split('.')[1]}.basic_module.{'.'.join(k.split('.')[3:])}": v
          for k, v in source.state_dict().items()}  # BasicSR spelling
    path = tmp_path / "spynet.pth"
    torch.save({"params": sd}, path)
    model = build("basicvsrpp", "tiny", spynet_path=str(path))
    for a, b in zip(model.spynet.parameters(), source.parameters()):
        assert torch.equal(a, b)
    target = SpyNet(levels=4, widths=(16, 16, 8, 8), kernel=3)
    load_spynet_weights(target, path)
    assert torch.equal(target.basic_module[3].layers[0].weight, source.basic_module[3].layers[0].weight)
