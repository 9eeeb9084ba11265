"""Folders given as URLs: how they are recognised and shown (never with a password)."""

from __future__ import annotations

import os
import re

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_PASSWORD = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/@:]*):[^/@]*@")


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether a folder is given as a URL other than ``file://`` (a local path)."""
    text = os.fspath(location)
    return bool(_SCHEME.match(text)) and not text.startswith("file://")


def local_path(location: str) -> str:
    """A ``file://`` URL as a local path; anything else as it is."""
    return location[len("file://"):] if location.startswith("file://") else location


def display(url: str) -> str:
    """The URL without its password (for messages and reports).

    Examples
    --------
    >>> display("ftp://anna:secret@pacs.example.org/in")
    'ftp://anna@pacs.example.org/in'
    """
    return _PASSWORD.sub(r"\1@", url)


def join(url: str, relative: str) -> str:
    """``url/relative`` (``relative`` is a POSIX path)."""
    return url.rstrip("/") + "/" + relative
