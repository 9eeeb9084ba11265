"""Inflating a deflated dataset in bounded steps, with a limit on its inflated size.

A Deflated Explicit VR Little Endian file (1.2.840.10008.1.2.1.99) holds its dataset deflated:
a megabyte of zeros deflated inflates a thousandfold, so a small file can claim gigabytes
(a deflate bomb). pydicom inflates the whole file at once; here the stream is inflated a
mebibyte at a time and counted, and a file whose dataset inflates past the limit is refused
before more than :data:`KEPT_BYTES` of it is held.

The limit is on the inflated size, not on a ratio to the compressed size: a deflated image
of mostly empty background compresses a thousandfold too, and is no attack.
"""

from __future__ import annotations

import zlib
from typing import BinaryIO

from dcmanon.errors import InputError

MAX_INFLATED_SIZE = 256 << 20
"""Default limit on a deflated dataset's inflated size (256 MiB). A deflated file is read in
full, so the limit is what one file may cost in memory (about twice to three times this:
inflated bytes, values, and the output deflated again; a 1 GiB dataset took 2.2 GB). Deflate
is used for structured reports, waveforms and small images; 256 MiB admits any of those and
a sizeable uncompressed multi-frame image, and refuses a bomb (a 1 MB file claiming 1 GB)
after under a second of inflating, with ~110 MB peak memory. Larger deflated files need
``--max-inflated-size``."""
CHUNK = 1 << 20
"""Bytes inflated at most per step."""
READ = 64 << 10
"""Compressed bytes read per step (small: what is left of them is copied at every step)."""
KEPT_BYTES = 64 << 20
"""A dataset inflating to at most this is kept from the first pass. A larger one is counted to
its end first (nothing kept), then inflated again if it is within the limit."""
_TRUNCATED = "truncated (the file ends inside an element)"


def describe_size(size: int) -> str:
    """``8 MiB``, ``1 GiB``, ``1000 bytes``: a size as messages write it."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} bytes"


def check_size_limit(limit: int) -> int:
    """Return ``limit`` if it is a usable inflated-size limit.

    Raises
    ------
    ValueError
        If it is not a positive whole number of bytes.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError("max_inflated_size must be a positive whole number of bytes")
    return limit


def inflate_bounded(handle: BinaryIO, name: str, limit: int = MAX_INFLATED_SIZE) -> bytes:
    """Inflate the raw deflate stream from ``handle``'s position to its end.

    Parameters
    ----------
    handle : binary file
        Positioned at the start of the deflated data; it must be seekable.
    name : str
        The file's name, for messages.
    limit : int
        Refuse a stream inflating to more than this many bytes.

    Raises
    ------
    InputError
        If the stream inflates past ``limit``, is corrupt, or ends early. The message names
        the file and the limit, never a value.
    """
    start = handle.tell()
    data = _inflate(handle, name, limit, KEPT_BYTES)
    if data is None:  # within the limit, but too large to have been kept on the way
        handle.seek(start)
        data = _inflate(handle, name, limit, limit)
        assert data is not None
    return data


def _inflate(handle: BinaryIO, name: str, limit: int, keep: int) -> bytes | None:
    """The inflated bytes, or None when there were more than ``keep`` (counted, not kept)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    parts: list[bytes] | None = []
    total = 0
    try:
        while not inflater.eof:
            data = inflater.unconsumed_tail or handle.read(READ)
            out = inflater.decompress(data, CHUNK)
            if not data and not out:
                raise InputError(f"{name}: {_TRUNCATED} (the deflated data ends early)")
            total += len(out)
            if total > limit:
                raise InputError(f"{name}: the deflated dataset inflates to more than "
                                 f"{describe_size(limit)} (the limit; see "
                                 "--max-inflated-size)")
            if parts is not None:
                if total <= keep:
                    parts.append(out)
                else:
                    parts = None
    except zlib.error:
        raise InputError(f"{name}: not a readable DICOM file, corrupt deflated data") from None
    return b"".join(parts) if parts is not None else None
