"""The pixel decision on the fast path's parsed bytes, without building a dataset.

A CT or MR slice that no rule selects and that is not likely to carry text must keep the
fast path (:mod:`dcmanon.io.fastpath`). The decision reads only the elements the rules and
the flagging criteria name; it is cached on their raw bytes, which the files of a series
share, so a dataset is built once per distinct combination.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from dcmanon.dicom.walk import quiet_pydicom
from dcmanon.io.rawdataset import RawFile, value_of
from dcmanon.pixels.clean import PIXEL_DATA_TAGS, PixelCleaner, PixelMode
from dcmanon.pixels.rules import DatasetHeader

SPECIFIC_CHARACTER_SET = 0x00080005


def needs_pixel_work(cleaner: PixelCleaner, raw: RawFile) -> bool:
    """Whether the file parsed as ``raw`` goes through the pixel stage (then it takes
    pydicom's path, where the pixels are decoded)."""
    if cleaner.mode is PixelMode.OFF:
        return False
    wanted = cleaner.tags
    found = {}
    has_pixels = False
    for element in raw.elements:
        if element.tag in wanted or element.tag == SPECIFIC_CHARACTER_SET:
            found[element.tag] = element
        elif element.tag in PIXEL_DATA_TAGS:
            has_pixels = True
    if not has_pixels:
        return False
    key = (raw.implicit, *(
        (tag, value_of(raw, found[tag])) for tag in sorted(found) if not found[tag].items))
    cached = cleaner.cached_decision(key)
    if cached is not None:
        return cached
    ds = Dataset()
    for tag, element in found.items():
        ds._dict[BaseTag(tag)] = element.raw(raw.buffer, raw.implicit)
    ds.set_original_encoding(raw.implicit, True, ds._character_set)
    with quiet_pydicom():  # pydicom's warnings quote the values it finds odd
        return cleaner.needs_work(DatasetHeader(ds), key)
