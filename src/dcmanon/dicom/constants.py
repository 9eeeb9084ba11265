"""Numbers of the DICOM encoding (PS3.5) that several modules need."""

UNDEFINED_LENGTH = 0xFFFFFFFF
"""The value length of a sequence, item or encapsulated pixel data whose end is delimited."""
ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQUENCE_END = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
SPECIFIC_CHARACTER_SET = 0x00080005
BULK_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
"""VRs whose values may be large binary data (left on disk, copied byte for byte)."""
MAX_NESTING = 64
"""Default: sequences nested more than this many levels deep are refused (a top-level
sequence is level 1). Six times what real files use, far below what Python's stack takes."""
MAX_NESTING_ALLOWED = 128
"""The highest limit that may be set: pydicom's reader, which recurses about four calls per
level, reaches Python's recursion limit (1000) not far above it."""
