"""pydicom-level helpers: tags and paths, dates, element encoding, VR validation, walking."""
