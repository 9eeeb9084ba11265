"""The categories ``check`` and ``scan`` report, in the order reports list them (a module of
its own so that the command line can offer them without importing the checks)."""

CHECK_CATEGORIES = ("element", "nested", "private", "file-meta", "file-name", "raw-bytes",
                    "original-date", "original-uid", "pixel-identifier", "pixel-text",
                    "integrity", "unreadable")
"""What ``check`` reports (``pixel-*``: with ``--ocr``)."""
SCAN_CATEGORIES = ("name", "date", "phone", "email", "id-number", "address",
                   "private-element", "identity-not-removed", "burned-in", "pixel-text",
                   "unreadable")
"""What ``scan`` reports (``pixel-text``: with ``--ocr``)."""
