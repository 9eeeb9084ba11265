"""The command line: the only place that prints, exits or sets up logging.

One module per command (:mod:`~dcmanon.cli.main`, :mod:`~dcmanon.cli.check`,
:mod:`~dcmanon.cli.scan`, :mod:`~dcmanon.cli.explain`, :mod:`~dcmanon.cli.decrypt`), what they
share in :mod:`~dcmanon.cli.options`.
"""

from dcmanon.cli.main import main

__all__ = ["main"]
