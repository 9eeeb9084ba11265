"""The DICOM node: a Storage SCP that spools what it receives, de-identifies it and forwards it.

Sits beside :mod:`dcmanon.batch`, above :mod:`dcmanon.anonymizer`; pynetdicom is an optional
dependency (the ``net`` extra), imported only here.
"""
