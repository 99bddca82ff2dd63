"""nriqa.quality.published: the published-SRCC table (data with a citation) and its look-ups."""
from __future__ import annotations

import csv

import pytest

from nriqa import quality
from nriqa.quality import published
from nriqa.quality.published import (
    COLUMNS,
    COMMON_AXIS,
    CSV_PATH,
    common_datasets,
    measures_with,
    published_source,
    published_srcc,
    published_table,
)


def _raw_rows() -> list[dict]:
    with open(CSV_PATH, newline="") as fh:
        return list(csv.DictReader(fh))


def test_csv_parses_with_the_documented_columns():
    df = published_table()
    assert tuple(df.columns) == COLUMNS
    assert len(df) == len(_raw_rows()) > 0
    assert not df.duplicated(["measure", "dataset"]).any()


def test_every_measure_is_a_registry_name():
    known = set(quality.names())
    unknown = sorted(set(published_table()["measure"]) - known)
    assert unknown == [], f"not registry names: {unknown}"


def test_correlations_are_in_range_and_sources_are_given():
    df = published_table()
    assert df["srcc"].between(-1, 1).all()
    plcc = df["plcc"].dropna()
    assert plcc.between(-1, 1).all()
    for col in ("source", "implementation", "dataset"):
        assert (df[col].str.strip() != "").all(), col


def test_published_srcc_is_the_mean_of_the_rows_read_from_the_file():
    rows = [r for r in _raw_rows() if r["measure"] == "ssim" and r["dataset"] in ("live", "tid2013")]
    assert len(rows) == 2
    expected = (float(rows[0]["srcc"]) + float(rows[1]["srcc"])) / 2
    assert published_srcc("ssim", ["live", "tid2013"]) == pytest.approx(expected, abs=1e-12)
    single = next(r for r in _raw_rows() if r["measure"] == "niqe" and r["dataset"] == "tid2013")
    assert published_srcc("NIQE", "tid2013") == pytest.approx(float(single["srcc"]), abs=1e-12)


def test_a_missing_dataset_or_measure_gives_none():
    assert published_srcc("ssim", ["live", "no-such-set"]) is None
    assert published_srcc("niqe", ["live"]) is None          # an NR measure has no FR-set row
    assert published_srcc("no-such-measure", ["tid2013"]) is None
    with pytest.raises(ValueError):
        published_srcc("ssim", [])


def test_common_datasets_and_measures_with_agree():
    assert "tid2013" in common_datasets(["ssim", "niqe"])
    assert "live" not in common_datasets(["ssim", "niqe"])
    assert common_datasets([]) == []
    covered = measures_with(COMMON_AXIS)
    assert {"psnr", "ssim", "niqe", "brisque"} <= set(covered)
    for m in covered:
        assert set(COMMON_AXIS) <= set(common_datasets([m]))
    assert "nlpd" not in covered


def test_source_and_card_cite_the_rows():
    src = published_source("ssim", ["tid2013"])
    assert "IQA-PyTorch" in src and "tid2013" in src and "live" not in src
    assert published_source("no-such-measure") == ""
    assert quality.card("ssim").accuracy_source == published_source("ssim")
    assert "no published SRCC" in quality.card("nlpd").accuracy_source


def test_a_malformed_table_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "t.csv"
    bad.write_text("measure,dataset,srcc,plcc,implementation,source,note\n"
                   "ssim,live,0.9,,x,y,\nssim,live,0.8,,x,y,\n")
    monkeypatch.setattr(published, "CSV_PATH", bad)
    published._table.cache_clear()
    try:
        with pytest.raises(ValueError, match="given twice"):
            published_table()
    finally:
        monkeypatch.undo()
        published._table.cache_clear()
