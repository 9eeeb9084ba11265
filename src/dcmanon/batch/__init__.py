"""Folder runs: discovery, workers, executors (processes, Dask), output layout, run report.

The names below are imported on first use (importing :mod:`dcmanon.batch.layout` alone, as the
command line does for its options, loads no engine).

Examples
--------
>>> from dcmanon.batch import BatchOptions, Layout
>>> BatchOptions(jobs=2, layout=Layout.UID).jobs
2
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dcmanon._lazy import lazy_attributes

if TYPE_CHECKING:
    from dcmanon.batch.layout import Layout
    from dcmanon.batch.run import BatchOptions, BatchResult, run_folder

_LAZY = {"Layout": "dcmanon.batch.layout", "BatchOptions": "dcmanon.batch.run",
         "BatchResult": "dcmanon.batch.run", "run_folder": "dcmanon.batch.run"}

__all__ = ["BatchOptions", "BatchResult", "Layout", "run_folder"]

__getattr__ = lazy_attributes(__name__, _LAZY)
