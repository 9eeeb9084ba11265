"""The package version: one place, read by the package, its outputs and its build."""

__version__ = "0.1.0"
