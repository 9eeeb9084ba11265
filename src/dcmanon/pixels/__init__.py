"""Burned-in text in the pixels: region rules, OCR, blanking, re-encoding.

Sits between :mod:`dcmanon.io` and :mod:`dcmanon.anonymizer`: the anonymizer hands it a dataset
whose header is already de-identified and gets back the same dataset with text blanked.
"""
