"""Published accuracy of the quality measures on human-rated sets: data with a citation.

``published_srcc.csv`` (package data, next to this module) holds one row per (measure, dataset):

- ``measure``: the nriqa registry name; ``dataset``: lower-case set name (``live``, ``csiq``,
  ``tid2008``, ``tid2013``, ``kadid10k``, ``pipal``: synthetic or restoration distortions with a
  reference; ``livec``, ``koniq10k``, ``flive``, ``spaq``, ``koniq10k-1024``: authentic distortions,
  no reference; ``msu-srqa``: video super-resolution outputs);
- ``srcc`` in [-1, 1], ``plcc`` (empty where the source gives none), both as published, with the
  sign of agreement with the opinion scores (a lower-is-better measure that ranks well is positive);
- ``implementation``: whose code produced the number; ``source``: repository + path + commit (or
  paper + table); ``note``: how that code relates to the code nriqa runs for the measure.

Sources: pyiqa's benchmark tables (IQA-PyTorch ``tests/FR_benchmark_results.csv`` and
``tests/NR_benchmark_results.csv``, the pyiqa code nriqa calls, default options; PLCC without a
logistic fit) for every measure pyiqa lists; piq's README benchmark (2 decimals, piq's own code)
for GMSD and VSI, which pyiqa's tables lack; the MSU SR-QA leaderboard for ST-LPIPS (VGG), whose
paper reports BAPPS 2AFC only. ``niqe`` and ``brisque`` are not pyiqa code in nriqa: pyiqa's NIQE
uses the same published pristine model (a fair stand-in), pyiqa's BRISQUE another SVR fit trained
on the same LIVE scores (an approximate stand-in); the ``note`` column says so per row. No
published SRCC of ``nlpd`` on these sets was found, so it has no row.

Common x-axis: :data:`COMMON_AXIS` = ``("tid2013",)``, the only human-rated set in both pyiqa
tables, so FR and NR measures are ranked on the same 3000 images (24 synthetic distortion kinds,
blur, noise and compression among them): FR measures against the reference, NR ones on the
distorted image alone; no measure here was trained on it. LIVE / CSIQ / TID2008 carry FR rows
only, the authentic-distortion sets NR rows only. ``measures_with(COMMON_AXIS)`` lists the
measures the axis covers. Different implementations of one measure publish visibly different
numbers on the same set (SSIM on TID2013 in piq's README and in pyiqa's table), so a row's
``implementation`` matters; each (measure, dataset) has one row, pyiqa's where pyiqa has one.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import pandas as pd

CSV_PATH = Path(__file__).with_name("published_srcc.csv")
COLUMNS = ("measure", "dataset", "srcc", "plcc", "implementation", "source", "note")
COMMON_AXIS: tuple[str, ...] = ("tid2013",)

__all__ = ["COMMON_AXIS", "CSV_PATH", "common_datasets", "measures_with", "published_source",
           "published_srcc", "published_table"]


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    df = pd.read_csv(CSV_PATH, dtype={"measure": str, "dataset": str, "implementation": str,
                                      "source": str, "note": str}, keep_default_na=False)
    if tuple(df.columns) != COLUMNS:
        raise ValueError(f"{CSV_PATH}: columns {list(df.columns)}, expected {list(COLUMNS)}")
    df["srcc"] = pd.to_numeric(df["srcc"], errors="raise").astype(float)
    df["plcc"] = pd.to_numeric(df["plcc"].replace("", float("nan")), errors="raise").astype(float)
    dup = df[df.duplicated(["measure", "dataset"], keep=False)]
    if not dup.empty:
        raise ValueError(f"{CSV_PATH}: (measure, dataset) given twice: {dup[['measure', 'dataset']].values.tolist()}")
    return df


def published_table() -> pd.DataFrame:
    """All rows (a copy): columns :data:`COLUMNS`; ``srcc``, ``plcc`` float (``plcc`` NaN when unpublished)."""
    return _table().copy()


def _rows(measure: str) -> pd.DataFrame:
    df = _table()
    return df[df["measure"] == measure.strip().lower()]


def published_srcc(measure: str, datasets: Sequence[str]) -> float | None:
    """Mean published SRCC of ``measure`` over ``datasets``; None when any of them has no row.

    ``datasets``: a non-empty sequence of dataset names (a single string is one name). Range [-1, 1].
    """
    names = [datasets] if isinstance(datasets, str) else list(datasets)
    if not names:
        raise ValueError("published_srcc: datasets must name at least one dataset")
    rows = _rows(measure).set_index("dataset")["srcc"]
    if any(d.strip().lower() not in rows.index for d in names):
        return None
    return float(sum(rows[d.strip().lower()] for d in names) / len(names))


def published_source(measure: str, datasets: Sequence[str] | None = None) -> str:
    """Citation of the published numbers of ``measure`` (those of ``datasets`` when given):
    one ``"<implementation>: <source> [<datasets>]"`` part per source, joined by ``"; "``; ``""``
    when the table has none."""
    rows = _rows(measure)
    if datasets is not None:
        wanted = {d.strip().lower() for d in ([datasets] if isinstance(datasets, str) else datasets)}
        rows = rows[rows["dataset"].isin(wanted)]
    parts = []
    for (impl, src), group in rows.groupby(["implementation", "source"], sort=False):
        parts.append(f"{impl}: {src} [{', '.join(group['dataset'])}]")
    return "; ".join(parts)


def common_datasets(measures: Iterable[str]) -> list[str]:
    """Datasets (sorted) on which every one of ``measures`` has a published SRCC; [] if none."""
    names = [m.strip().lower() for m in measures]
    if not names:
        return []
    df = _table()
    sets = None
    for m in names:
        have = set(df.loc[df["measure"] == m, "dataset"])
        sets = have if sets is None else sets & have
    return sorted(sets)


def measures_with(datasets: Sequence[str] = COMMON_AXIS) -> list[str]:
    """Measures (sorted) with a published SRCC on every one of ``datasets``."""
    names = [datasets] if isinstance(datasets, str) else list(datasets)
    df = _table()
    return sorted(m for m in df["measure"].unique() if published_srcc(m, names) is not None)
