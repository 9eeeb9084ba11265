"""Folder runs: discovery, workers, executors (processes, Dask), output layout, run report.

Examples
--------
>>> from dcmanon.batch import BatchOptions, Layout
>>> BatchOptions(jobs=2, layout=Layout.UID).jobs
2
"""

from dcmanon.batch.layout import Layout
from dcmanon.batch.run import BatchOptions, BatchResult, run_folder

__all__ = ["BatchOptions", "BatchResult", "Layout", "run_folder"]
