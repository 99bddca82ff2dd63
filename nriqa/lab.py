"""JupyterLab for the kit's paired notebooks: jupytext's contents manager, where the newer file wins.

Each ``notebooks/NN_*.ipynb`` is paired with its jupytext source ``notebooks/src/NN_*.py``
(``formats: ipynb,src//py:percent``). jupytext's contents manager reads a paired notebook's cells
from the text file and only its outputs from the ``.ipynb``; when the ``.ipynb`` is newer than the
text file (by more than ``outdated_text_notebook_margin``, 1 s) and their cells differ, as after
an edit of the ``.ipynb`` outside JupyterLab, it refuses to open the notebook ("File Load Error",
a jupytext diff) until one of the files is restored.

:class:`PairedNotebooksContentsManager` opens it: the newer ``.ipynb`` wins, as with
``jupytext --sync``; its paired text file is rewritten from it before jupytext reads the pair
(:func:`sync_text_from_newer_notebook`, logged as a warning). A text file newer than its
``.ipynb`` still wins, as in jupytext. ``make lab`` (and tests/test_browser.py) start JupyterLab
with it::

    jupyter lab --ServerApp.contents_manager_class=nriqa.lab.PairedNotebooksContentsManager

jupytext and jupyter_server (the ``dev`` and ``notebooks`` extras) are imported when the class is
first asked for, never on ``import nriqa``.
"""
from __future__ import annotations

from pathlib import Path

#: ``--ServerApp.contents_manager_class`` value for JupyterLab
CONTENTS_MANAGER = "nriqa.lab.PairedNotebooksContentsManager"
#: jupytext's default ``outdated_text_notebook_margin`` (seconds)
MARGIN_S = 1.0


def _paired_text_files(ipynb: Path, nb) -> list[tuple[Path, dict]]:
    """The existing text files paired with ``ipynb`` by its ``jupytext.formats`` metadata, with
    their formats; none when it names no pairing or ``ipynb`` does not fit it."""
    from jupytext.paired_paths import InconsistentPath, paired_paths

    formats = nb.metadata.get("jupytext", {}).get("formats")
    if not formats:
        return []
    try:
        pairs = paired_paths(str(ipynb), "ipynb", formats)
    except InconsistentPath:
        return []
    return [(Path(p), fmt) for p, fmt in pairs if fmt["extension"] != ".ipynb" and Path(p).is_file()]


def sync_text_from_newer_notebook(ipynb: Path, margin_s: float = MARGIN_S) -> list[Path]:
    """Rewrite the text files paired with ``ipynb`` from it where ``ipynb`` is newer by more than
    ``margin_s`` and their cells differ (in jupytext's comparison: the text each would write);
    returns the rewritten files."""
    import jupytext
    import nbformat

    ipynb = Path(ipynb)
    try:
        nb = nbformat.read(ipynb, as_version=4)
    except (OSError, ValueError):  # unreadable or not a notebook: jupytext reports it
        return []
    rewritten = []
    for text_file, fmt in _paired_text_files(ipynb, nb):
        if ipynb.stat().st_mtime <= text_file.stat().st_mtime + margin_s:
            continue
        text = jupytext.writes(nb, fmt)
        if jupytext.writes(jupytext.read(text_file, fmt=fmt), fmt) == text:
            continue
        text_file.write_text(text)
        rewritten.append(text_file)
    return rewritten


def _build_contents_manager():
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
    from jupytext.async_contentsmanager import build_async_jupytext_contents_manager_class

    base = build_async_jupytext_contents_manager_class(AsyncLargeFileManager)

    class PairedNotebooksContentsManager(base):
        """jupytext's contents manager; a paired ``.ipynb`` newer than its text file opens, and the
        text file is rewritten from it (:func:`sync_text_from_newer_notebook`)."""

        async def get(self, path, content=True, type=None, format=None, **kwargs):
            if content and type in (None, "notebook") and path.endswith(".ipynb"):
                os_path = Path(self._get_os_path(path.strip("/")))
                if os_path.is_file():
                    config = await self.get_config(path)
                    margin = getattr(config, "outdated_text_notebook_margin", MARGIN_S)
                    for text_file in sync_text_from_newer_notebook(os_path, margin):
                        self.log.warning("[nriqa] %s is newer than its paired %s and differs: "
                                         "rewrote %s from it", path, text_file.name, text_file)
            return await super().get(path, content=content, type=type, format=format, **kwargs)

    PairedNotebooksContentsManager.__module__ = __name__
    PairedNotebooksContentsManager.__qualname__ = "PairedNotebooksContentsManager"
    return PairedNotebooksContentsManager


def __getattr__(name: str):
    """``PairedNotebooksContentsManager``, built on first use (jupytext and jupyter_server are
    optional: imported then, not with nriqa)."""
    if name == "PairedNotebooksContentsManager":
        cls = _build_contents_manager()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
