"""Folders given as URLs (fsspec): naming them without passwords, staging inputs, publishing
outputs."""
