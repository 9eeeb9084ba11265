"""Input and output folders given as URLs (``s3://``, ``gs://``, ``ftp://``...), through fsspec.

What cluster users expect: every worker reaches the same bucket or server, whatever machine it
runs on. A worker stages each input in a local temporary folder, anonymizes it with the ordinary
machinery, and publishes the output so that it appears under its name only when complete:
an object store's upload is atomic by itself; elsewhere the output is uploaded under a
temporary name, then renamed. A URL's password is never shown: messages and reports name
``user@host``.

fsspec knows ``ftp://``, ``http(s)://`` (read only), ``sftp://`` and more by itself; ``s3://``
needs ``s3fs``, ``gs://`` needs ``gcsfs``, ``az://`` needs ``adlfs`` (on every worker).
Credentials come from the URL or from each implementation's usual configuration.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import shutil
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

from dcmanon.errors import UsageError
from dcmanon.remote.urls import display, join

_MARKER_BYTES = 132
COPY_BLOCK = 1 << 20
MAKE_FOLDER_ATTEMPTS = 5
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"})
"""fsspec protocols of object stores, whose uploads are atomic by themselves."""


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of a URL and the path inside it (once per process: a forked
    worker opens its own connections).

    Raises
    ------
    UsageError
        If fsspec, or the implementation for the URL's scheme, is not installed.
    """
    return _filesystem(url, os.getpid())


def own_filesystem(url: str) -> tuple[Any, str]:
    """Like :func:`filesystem`, but an instance no other caller shares (its own connections:
    for a thread beside the workers)."""
    return _open(url, skip_instance_cache=True)


@lru_cache(maxsize=16)
def _filesystem(url: str, pid: int) -> tuple[Any, str]:
    del pid  # part of the cache key only
    return _open(url)


def _open(url: str, **options: Any) -> tuple[Any, str]:
    try:
        fsspec: Any = importlib.import_module("fsspec")
    except ImportError:
        raise UsageError("folders given as URLs need fsspec: pip install fsspec") from None
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as exc:
        scheme = url.split("://", 1)[0]
        raise UsageError(f"{display(url)}: no file system for {scheme}:// "
                         f"({type(exc).__name__}: install the fsspec implementation for it, "
                         "e.g. s3fs for s3://)") from None
    return fs, str(path).rstrip("/")


def list_inputs(url: str) -> list[str]:
    """The files under a URL, as sorted POSIX paths relative to it.

    Raises
    ------
    UsageError
        If the URL cannot be listed (the message names the URL without its password).
    """
    fs, root = filesystem(url)
    try:
        if not fs.isdir(root):
            raise UsageError(f"{display(url)}: input folder not found")
        found = fs.find(root)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001  (every implementation raises its own errors)
        raise UsageError(f"{display(url)}: cannot list the input folder "
                         f"({type(exc).__name__})") from None
    prefix = root + "/"
    return sorted(str(path)[len(prefix):] for path in found if str(path).startswith(prefix))



def stage_input(url: str, relative: str, target: Path) -> bool:
    """Download one input; False if it is not a DICOM file (no .dcm name, no DICM marker)."""
    fs, root = filesystem(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    with fs.open(join(root, relative), "rb") as remote, target.open("wb") as local:
        head = remote.read(_MARKER_BYTES)
        if not relative.lower().endswith(".dcm") and head[128:132] != b"DICM":
            return False
        local.write(head)
        shutil.copyfileobj(remote, local, COPY_BLOCK)
    return True


def upload(fs: Any, local: Path, remote: str) -> None:
    """Upload an output so that it appears under its name only when complete.

    An object store's upload is atomic by itself: the object is uploaded under its name.
    Elsewhere (FTP, SFTP...) it goes under a temporary name beside the target, then is renamed
    into place.
    """
    parent = remote.rsplit("/", 1)[0]
    direct = is_object_store(fs)
    temporary = remote if direct else f"{parent}/.dcmanon-{uuid.uuid4().hex}.part"
    try:
        _make_folders(fs, parent)
        fs.put_file(str(local), temporary)
        if not direct:
            fs.mv(temporary, remote)
    except Exception as exc:
        with contextlib.suppress(Exception):  # best effort: the upload itself failed
            fs.rm_file(temporary)
        if isinstance(exc, OSError):
            raise
        raise OSError(type(exc).__name__) from None


def is_object_store(fs: Any) -> bool:
    """Whether ``fs`` is an object store (S3, Google Cloud Storage, Azure Blob): an object
    appears only once its upload is complete, and a "rename" is a copy and a delete."""
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return not OBJECT_STORES.isdisjoint(protocols)


def _make_folders(fs: Any, folder: str) -> None:
    """Create a remote folder and its parents; another worker may be creating them too (a
    folder made meanwhile fails the creation: look again, with fresh listings)."""
    for attempt in range(MAKE_FOLDER_ATTEMPTS):
        try:
            fs.makedirs(folder, exist_ok=True)
            return
        except Exception:  # re-raised after the last attempt (FTP errors are not OSError)
            fs.invalidate_cache()
            if attempt == MAKE_FOLDER_ATTEMPTS - 1:
                raise


def exists(fs: Any, path: str) -> bool:
    """Whether a remote file exists now (not in a listing cached before another worker
    wrote it).

    Raises
    ------
    OSError
        If the file system cannot tell: the output must then not be written, since an
        existing one is replaced only with ``overwrite``.
    """
    try:
        fs.invalidate_cache(path.rsplit("/", 1)[0])
        return bool(fs.exists(path))
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001  (every implementation raises its own errors)
        raise OSError(errno.EIO, f"cannot tell whether it exists ({type(exc).__name__})"
                      ) from None


