"""`python -m nriqa eval` on run folders, with the generator and test set stubbed (no training)."""
import pandas as pd
import skimage.data
import torch
import torch.nn.functional as F

import nriqa.data
from nriqa.analysis import cli
from nriqa.analysis import evaluation as evaluate_mod


class Bicubic(torch.nn.Module):
    def __init__(self, gain=1.0):
        super().__init__()
        self.gain = gain

    def forward(self, lr):
        b, t = lr.shape[:2]
        up = F.interpolate(lr.flatten(0, 1), scale_factor=4, mode="bicubic").clamp(0, 1)
        hr = up.view(b, t, *up.shape[1:])
        return (0.5 + self.gain * (hr - 0.5)).clamp(0, 1)


def make_clip(name):
    a = torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1).float() / 255
    hr = F.interpolate(a[None], size=(48, 48), mode="area").expand(2, -1, -1, -1)[None].contiguous()
    return {"name": name, "lr": F.interpolate(hr[0], scale_factor=0.25, mode="area")[None], "hr": hr}


def run_folder(root, name):
    d = root / name
    (d / "checkpoints").mkdir(parents=True)
    (d / "config.yaml").write_text("model: bicubic\n")
    (d / "checkpoints" / "latest.pt").write_bytes(name.encode())
    return d


def test_eval_cli_prints_summary_and_writes_csv(tmp_path, monkeypatch, capsys):
    gens = {"base": Bicubic(1.0), "flat": Bicubic(0.5)}
    monkeypatch.setattr(evaluate_mod._Outputs, "_load_generator", lambda self: gens[self._run_dir.name])
    monkeypatch.setattr(nriqa.data, "build_test_set", lambda cfg: [make_clip("astronaut"), make_clip("coffee")],
                        raising=False)
    base, flat = run_folder(tmp_path, "base"), run_folder(tmp_path, "flat")
    out_csv = tmp_path / "out.csv"
    rc = cli.main([str(flat), "--baseline", str(base), "--panel", "psnr,ssim", "--profile", "smoke",
                   "--csv", str(out_csv), "--device", "cpu", "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "mean scores" in text and "relative gain over base" in text
    df = pd.read_csv(out_csv)
    assert set(df["run"]) == {"base", "flat"} and set(df["measure"]) == {"psnr", "ssim"}
    assert len(df) == 2 * 2 * 2 * 2
    # lower contrast is worse in PSNR than plain bicubic
    m = df.groupby(["run", "measure"])["score"].mean()
    assert m["flat", "psnr"] < m["base", "psnr"]
    assert len(list((base / "eval").glob("*.csv"))) == 2  # cached next to the run


def test_eval_cli_rejects_non_run_folders(tmp_path, capsys):
    assert cli.main([str(tmp_path)]) == 2
    assert "not run folders" in capsys.readouterr().err


def test_a_named_measure_without_weights_is_an_error_not_a_skip(tmp_path, monkeypatch, capsys):
    """--panel psnr,musiq,cnniqa@embedded: musiq's weights and the kit model are not on disk, so the
    command fails before any work, naming both (a profile's panel may skip them instead)."""
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path / "no-weights"))
    monkeypatch.setattr(nriqa.data, "build_test_set", lambda cfg: 1 / 0, raising=False)   # never reached
    run = run_folder(tmp_path, "base")
    rc = cli.main([str(run), "--panel", "psnr,musiq,cnniqa@embedded", "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "musiq, cnniqa@embedded cannot run" in err and "psnr" not in err.split("cannot run")[0]
