"""Reading and writing DICOM files: header-only reads, streamed values, atomic writes, and the
byte-level fast path that copies what the plan keeps and re-encodes only what changes."""
