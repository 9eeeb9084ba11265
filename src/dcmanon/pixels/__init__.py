"""Burned-in text in the pixels: region rules, OCR, blanking, re-encoding.

Sits between :mod:`dcmanon.io` and :mod:`dcmanon.anonymizer`: the anonymizer hands it a dataset
whose header is already de-identified and gets back the same dataset with text blanked.
"""

MODES = ("off", "rules", "flagged", "all")
"""The pixel modes (``--pixels``; :class:`dcmanon.pixels.clean.PixelMode`), importable without
pydicom (the command line's help, a routes file)."""
