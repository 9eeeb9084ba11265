"""One image's pixel stage: decide (on the original header), then blank (after the header).

:class:`PixelCleaner` is built once per run from the mode and the rule sets. For each file,
:meth:`PixelCleaner.plan` reads the *original* header — the rules' conditions, whether the
image is likely to carry text, the file's own identifiers for OCR's "identifiers only" — and
:meth:`PixelCleaner.apply` then blanks the de-identified dataset's pixels. An image no box
applies to keeps its PixelData bytes exactly.

Modes: ``off`` (nothing), ``rules`` (region rules only), ``flagged`` (rules, then OCR on images
likely to carry text), ``all`` (rules, then OCR on every image).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence

from dcmanon.dicom.walk import quiet_pydicom
from dcmanon.errors import MissingExtraError, PixelError
from dcmanon.io.rawwrite import ValuePatch, ValueSource
from dcmanon.io.streaming import deferred_element
from dcmanon.pixels.blank import black, image_geometry
from dcmanon.pixels.boxes import Box
from dcmanon.pixels.rules import DatasetHeader, Header, RuleSet, matched_boxes, parse_tag

_log = logging.getLogger(__name__)

PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
TEXT_MODALITIES = frozenset({"US", "SC", "OT", "XA", "ES", "DOC"})
"""Modalities whose images are likely to carry burned-in text (OCR'd in ``flagged`` mode)."""
TEXT_IMAGE_TYPES = ("SECONDARY", "SCREEN SAVE", "DERIVED")
RECONSTRUCTION_MODALITIES = frozenset({"CT", "MR", "PT", "NM"})
"""Modalities whose DERIVED images are mostly reconstructions from the scanner's own data
(MPR, MIP, subtractions, parametric maps) rather than captures: ImageType DERIVED alone does not
flag them (SECONDARY, SCREEN SAVE, BurnedInAnnotation YES and a secondary capture SOP class
still do)."""
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
"""Secondary capture SOP classes (single frame and the four multi-frame ones)."""
FLAG_TAGS = tuple(parse_tag(k) for k in ("BurnedInAnnotation", "Modality", "ImageType",
                                         "SOPClassUID"))
CLEAN_PIXEL_CODE = ("113101", "Clean Pixel Data Option")


class PixelMode(str, Enum):
    """How burned-in text is handled (``--pixels``)."""

    OFF = "off"
    RULES = "rules"
    FLAGGED = "flagged"
    ALL = "all"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class PixelPlan:
    """What to do to one image, decided on its original header."""

    boxes: tuple[Box, ...]
    """Boxes of the region rules that apply."""
    rules: tuple[str, ...]
    """Names of those rules."""
    ocr_reason: str | None
    """Why OCR runs on this image (None: it does not)."""
    identifiers: tuple[str, ...] | None = field(default=None, repr=False)
    """With "identifiers only": the file's own identifiers (OCR blanks only these)."""
    overlays: tuple[tuple[int, int, int, int, int, int], ...] = ()
    """(group, rows, columns, top, left, frames) of each overlay plane with OverlayData, read
    before the profile may remove its geometry."""


@dataclass(frozen=True)
class PixelOutcome:
    """What the pixel stage did to one image (never the text it read)."""

    rule_boxes: int = 0
    ocr_boxes: int = 0
    frames: tuple[int, ...] = ()
    """0-based frames that changed."""
    rules: tuple[str, ...] = ()
    ocr: bool = False
    """Whether OCR read the image."""
    transfer_syntax: str | None = None
    """The syntax written when the pixel data was re-encoded or written native."""
    overlays: int = 0
    """Overlay planes changed: blanked in the image's boxes, or where OCR read text in the
    plane itself."""
    icon_removed: bool = False
    patch: ValuePatch | None = field(default=None, repr=False, compare=False)
    """For native pixel data left on disk: the blanking, applied frame by frame while the
    writer copies it (the caller passes it to the writer)."""
    source: ValueSource | None = field(default=None, repr=False, compare=False)
    """For an encapsulated image written native a frame at a time: its pixel data, generated
    while the writer writes it (the caller passes it to the writer; the dataset's PixelData
    is empty until then)."""

    @property
    def cleaned(self) -> bool:
        return bool(self.frames)

    def record(self) -> dict[str, Any]:
        """A JSON-ready record for the run report."""
        out: dict[str, Any] = {"boxes": self.rule_boxes + self.ocr_boxes,
                               "by_rules": self.rule_boxes, "by_ocr": self.ocr_boxes,
                               "ocr": self.ocr, "frames": len(self.frames)}
        if self.rules:
            out["rules"] = list(self.rules)
        if self.transfer_syntax:
            out["transfer_syntax"] = self.transfer_syntax
        if self.overlays:
            out["overlays"] = self.overlays
        if self.icon_removed:
            out["icon_removed"] = True
        return out


class PixelCleaner:
    """Decide and blank burned-in text for one run.

    Parameters
    ----------
    mode : PixelMode
        ``off``, ``rules``, ``flagged`` or ``all``.
    rule_sets : sequence of RuleSet
        The configuration's rules, then the default library (unless turned off).
    identifiers_only : bool
        OCR blanks only text matching the file's own identifiers (names, IDs, dates).
    """

    def __init__(self, mode: PixelMode, rule_sets: Sequence[RuleSet] = (), *,
                 identifiers_only: bool = False) -> None:
        self.mode = mode
        self.rule_sets = tuple(rule_sets) if mode is not PixelMode.OFF else ()
        self.identifiers_only = identifiers_only
        tags: set[int] = set(FLAG_TAGS)
        for rule_set in self.rule_sets:
            tags.update(rule_set.tags)
        self.tags = frozenset(tags)
        """Every header element a decision reads (the key of :meth:`needs_work`'s cache)."""
        self._decisions: dict[tuple[object, ...], bool] = {}

    def ocr_reason(self, header: Header) -> str | None:
        """Why OCR reads this image in this mode (None: it does not)."""
        if self.mode is PixelMode.ALL:
            return "--pixels all"
        if self.mode is not PixelMode.FLAGGED:
            return None
        if (header.text(FLAG_TAGS[0]) or "").strip().upper() == "YES":
            return "BurnedInAnnotation is YES"
        modality = (header.text(FLAG_TAGS[1]) or "").strip().upper()
        if modality in TEXT_MODALITIES:
            return f"modality {modality}"
        image_type = {v.strip() for v in (header.text(FLAG_TAGS[2]) or "").upper().split("\\")}
        for kind in TEXT_IMAGE_TYPES:
            if kind == "DERIVED" and modality in RECONSTRUCTION_MODALITIES:
                continue  # a reconstruction (MPR, MIP...): flagged only by the other triggers
            if kind in image_type:
                return f"ImageType {kind}"
        if (header.text(FLAG_TAGS[3]) or "").startswith(SECONDARY_CAPTURE_PREFIX):
            return "a secondary capture"
        return None

    def cached_decision(self, key: tuple[object, ...]) -> bool | None:
        """:meth:`needs_work`'s answer for ``key`` when it is known."""
        return self._decisions.get(key)

    def needs_work(self, header: Header, key: tuple[object, ...] | None = None) -> bool:
        """Whether an image with this header (and pixel data) goes through the pixel stage:
        OCR is due, or some rule's condition holds. ``key`` (the raw values of :attr:`tags`)
        caches the answer: the files of a series share them."""
        if self.mode is PixelMode.OFF:
            return False
        if key is not None and key in self._decisions:
            return self._decisions[key]
        answer = self.ocr_reason(header) is not None or any(
            rule_set.matching(header) for rule_set in self.rule_sets)
        if key is not None:
            if len(self._decisions) > 4096:
                self._decisions.clear()
            self._decisions[key] = answer
        return answer

    def plan(self, ds: Dataset) -> PixelPlan | None:
        """Decide on the original header of ``ds`` (call before de-identifying it); None when
        the image is left as it is (no pixel data, no rule, no OCR)."""
        with quiet_pydicom():  # pydicom's warnings quote the values it finds odd
            return self._plan(ds)

    def _plan(self, ds: Dataset) -> PixelPlan | None:
        if self.mode is PixelMode.OFF or not any(t in ds for t in PIXEL_DATA_TAGS):
            return None
        header = DatasetHeader(ds)
        try:
            _, rows, columns, _ = image_geometry(ds)
        except PixelError:
            if self.needs_work(header):
                raise  # the image must be cleaned and cannot be: the file fails
            return None
        boxes, names = matched_boxes(self.rule_sets, header, columns, rows)
        reason = self.ocr_reason(header)
        if not boxes and reason is None:
            return None
        identifiers = None
        if reason is not None and self.identifiers_only:
            from dcmanon.phi.identifiers import collect_identifiers

            identifiers = tuple(collect_identifiers(ds).terms)
        return PixelPlan(tuple(dict.fromkeys(boxes)), tuple(names), reason, identifiers,
                         _overlay_planes(ds))

    def apply(self, plan: PixelPlan, ds: Dataset, *, stream: bool = False) -> PixelOutcome:
        """Blank the plan's boxes (and OCR's) in the de-identified ``ds``, in place.

        With ``stream``, native pixel data still on disk is left there and the outcome's
        ``patch`` blanks it while the writer copies it; a large encapsulated image written
        native is decoded a frame at a time and the outcome's ``source`` generates its native
        pixel data while the writer writes it (the caller must pass either on).

        Raises
        ------
        MissingExtraError
            If OCR is due and the OCR engine (or numpy and the codecs) is not installed.
        PixelError
            If the pixel data cannot be decoded or blanked.
        """
        with quiet_pydicom():
            before = _kept_overlays(ds, plan.overlays)
            outcome = self._apply(plan, ds, stream)
            if plan.ocr_reason is not None and before:
                _blank_overlay_text(ds, plan, _ocr_engine(plan))
            overlays = sum(_kept_overlays(ds, plan.overlays).get(g) != data
                           for g, data in before.items())
            return dataclasses.replace(outcome, overlays=overlays)

    def _apply(self, plan: PixelPlan, ds: Dataset, stream: bool) -> PixelOutcome:
        from dcmanon.pixels import codec, transcode
        from dcmanon.pixels.blank import blank_native

        codec.require_numpy()
        decoded = None
        if "PixelData" not in ds:
            return PixelOutcome()  # float / double float pixel data: not handled here
        engine = _ocr_engine(plan) if plan.ocr_reason is not None else None  # before decoding
        if stream and (plan.boxes or engine is not None) and _streamable(ds):
            return self._streamed(plan, ds, engine)
        if stream and (plan.boxes or engine is not None) and transcode.streamable(ds):
            transcoded = self._transcoded(plan, ds, engine)
            if transcoded is not None:
                return transcoded
        compressed = codec.syntax_of(ds).is_compressed
        ocr_boxes: list[Box] | None = None  # None: OCR not done yet (or not due)
        if compressed and engine is not None and codec.by_frame(ds):
            try:  # one frame decoded at a time
                ocr_boxes = list(engine.find_text_boxes(codec.decoded_frames(ds), ds,
                                                        identifiers=plan.identifiers))
            except (ValueError, RuntimeError, NotImplementedError):
                ocr_boxes = None  # a frame the plugins refuse alone: the whole image below
            if ocr_boxes is not None and not plan.boxes and not ocr_boxes:
                return PixelOutcome(ocr=True)  # no text: the pixel data as it was
        if compressed and (engine is None or ocr_boxes is not None) and (
                plan.boxes or ocr_boxes):
            boxes = list(plan.boxes) + (ocr_boxes or [])
            frames = codec.reencode_frames(ds, boxes, black(ds))
            if frames is not None:
                return self._finish(plan, ds, boxes, ocr_boxes or [], frames,
                                    codec.syntax_of(ds).name)
        if compressed:
            original = codec.snapshot(ds)
            decoded = codec.decode_in_place(ds)
        if engine is not None and ocr_boxes is None:
            ocr_boxes = list(engine.find_text_boxes(codec.stored_frames(ds), ds,
                                                    identifiers=plan.identifiers))
        boxes = list(plan.boxes) + (ocr_boxes or [])
        if not boxes:
            if decoded is not None:
                codec.restore(ds, original)  # no text: the original bytes, as they were
            return PixelOutcome(ocr=plan.ocr_reason is not None)
        data = bytearray(ds.PixelData)
        frames = blank_native(data, ds, boxes)
        ds.PixelData = bytes(data)
        syntax = codec.encode_back(ds, decoded) if decoded is not None else None
        return self._finish(plan, ds, boxes, ocr_boxes or [], frames, syntax)

    def _finish(self, plan: PixelPlan, ds: Dataset, boxes: list[Box], ocr_boxes: list[Box],
                frames: set[int], syntax: str | None,
                patch: ValuePatch | None = None,
                source: ValueSource | None = None) -> PixelOutcome:
        """Overlays, the icon and the record, once the pixels are blanked (or, with
        ``patch``, while the writer copies them)."""
        _blank_overlays(ds, boxes, plan.overlays)
        icon = "IconImageSequence" in ds
        if icon:
            del ds.IconImageSequence
        if frames:
            _record_clean(ds)
        return PixelOutcome(len(plan.boxes), len(ocr_boxes), tuple(sorted(frames)), plan.rules,
                            plan.ocr_reason is not None, syntax, 0, icon, patch, source)

    def _transcoded(self, plan: PixelPlan, ds: Dataset, engine: Any) -> PixelOutcome | None:
        """A large encapsulated image written native: OCR (when due) and the writer decode it
        a frame at a time (:mod:`dcmanon.pixels.transcode`); the header is changed as the
        whole-image path changes it. None when a frame will not decode that way (the
        whole-image path then tries every decoder)."""
        from dcmanon.pixels import codec, transcode

        try:
            survey = transcode.Survey(transcode.EncodedFrames(ds), ds)
            frames = survey.frames()
            ocr_boxes = [] if engine is None else list(engine.find_text_boxes(
                frames, survey.header, identifiers=plan.identifiers))
            for _ in frames:  # (OCR read them all; without OCR: every frame decodes)
                pass
        except transcode.DECODE_ERRORS:
            return None
        if not survey.consistent():
            return None
        boxes = list(plan.boxes) + ocr_boxes
        if not boxes:
            return PixelOutcome(ocr=plan.ocr_reason is not None)  # the pixel data as it was
        values = black(survey.header)
        syntax = codec.syntax_of(ds)
        transcode.native_header(ds, survey)
        touched = {f for f in range(survey.count) for b in boxes if b.area and b.applies_to(f)}
        return self._finish(plan, ds, boxes, ocr_boxes, touched, codec.mark_native(ds, syntax),
                            source=transcode.native_value(survey, boxes, values))

    def _streamed(self, plan: PixelPlan, ds: Dataset, engine: Any) -> PixelOutcome:
        """Native pixel data still on disk: OCR (``engine``, when due) reads it one frame at a
        time from the input, then the boxes are blanked frame by frame while the writer copies
        it. Memory stays at a frame or two whatever the number of frames."""
        from dcmanon.pixels import codec
        from dcmanon.pixels.blank import blank_native

        frames = image_geometry(ds)[0]
        header = Dataset()  # what blanking reads (Image Pixel, palettes), apart from ``ds``
        for tag in list(ds.keys()):
            if tag >> 16 == 0x0028:
                header[tag] = ds[tag]
        header.file_meta = FileMetaDataset()  # segmented palettes are read in its byte order
        header.file_meta.TransferSyntaxUID = codec.syntax_of(ds)
        values = black(header)  # now: an error is this file's before anything is written
        unit = frame_bytes(header)
        raw = deferred_element(ds, PIXEL_DATA_TAGS[0])
        if raw is None or raw.length < unit * frames:
            raise PixelError(f"(7FE0,0010) PixelData holds fewer bytes than the header "
                             f"describes ({unit * frames})")
        ocr_boxes: list[Box] = []
        if engine is not None:
            ocr_boxes = list(engine.find_text_boxes(
                _frames_on_disk(str(ds.filename), raw.value_tell, unit, frames, header),
                header, identifiers=plan.identifiers))
        boxes = list(plan.boxes) + ocr_boxes
        if not boxes:
            return PixelOutcome(ocr=True)  # the pixel data is copied as it is

        def apply(offset: int, block: memoryview) -> None:
            first, count = offset // unit, len(block) // unit
            count = min(count, frames - first)
            if count > 0:
                blank_native(block[:count * unit], header, boxes, range(first, first + count),
                             values)

        touched = {f for f in range(frames) for b in boxes if b.area and b.applies_to(f)}
        return self._finish(plan, ds, boxes, ocr_boxes, touched, None, ValuePatch(unit, apply))


def _frames_on_disk(path: str, offset: int, unit: int, frames: int,
                    header: Dataset) -> Iterator[Any]:
    """The stored values of each frame of native pixel data at ``offset`` in ``path``, read
    one frame at a time (``header`` describes a frame; see :func:`codec.values_of`)."""
    from dcmanon.pixels import codec

    with open(path, "rb") as source:
        source.seek(offset)
        for _ in range(frames):
            data = source.read(unit)
            if len(data) != unit:
                raise PixelError("(7FE0,0010) PixelData: the file ends inside it")
            yield codec.values_of(data, header, 1)[0]


def _streamable(ds: Dataset) -> bool:
    """Native, Little Endian pixel data of whole bytes, still on disk."""
    from dcmanon.pixels import codec
    from dcmanon.pixels.blank import little_endian

    raw = deferred_element(ds, PIXEL_DATA_TAGS[0])
    return (raw is not None and raw.length not in (0, 0xFFFFFFFF)
            and not codec.syntax_of(ds).is_compressed and little_endian(ds)
            and int(ds.get("BitsAllocated") or 0) in (8, 16, 32))


def frame_bytes(ds: Dataset) -> int:
    """Bytes of one frame of native pixel data."""
    _, rows, columns, samples = image_geometry(ds)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric in ("YBR_FULL_422", "YBR_PARTIAL_422"):
        samples = 2
    return rows * columns * samples * (int(ds.BitsAllocated) // 8)


def _ocr_engine(plan: PixelPlan) -> Any:
    """The OCR module (:mod:`dcmanon.pixels.ocr`), or a clear error saying what to do.

    Raises
    ------
    MissingExtraError
        If it (or rapidocr / onnxruntime) is not installed: the file must not pass silently.
    """
    try:
        from dcmanon.pixels import ocr  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        raise MissingExtraError(
            f"the image needs OCR ({plan.ocr_reason}) and the OCR engine is not installed: "
            "install dcmanon[ocr], or give --pixels rules to accept the risk of text "
            "left in the pixels") from None
    return ocr


def _overlay_planes(ds: Dataset) -> tuple[tuple[int, int, int, int, int, int], ...]:
    """Geometry of every overlay plane whose bits are in OverlayData (60xx,3000)."""
    planes = []
    for group in range(0x6000, 0x6020, 2):
        if (group << 16) | 0x3000 not in ds:
            continue
        rows = ds.get((group << 16) | 0x0010)
        columns = ds.get((group << 16) | 0x0011)
        if rows is None or columns is None or not rows.value or not columns.value:
            continue
        origin = ds.get((group << 16) | 0x0050)
        top, left = (int(origin.value[0]) - 1, int(origin.value[1]) - 1) if (
            origin is not None and origin.VM == 2) else (0, 0)
        count = ds.get((group << 16) | 0x0015)
        frames = int(count.value) if count is not None and count.value else 1
        planes.append((group, int(rows.value), int(columns.value), top, left, frames))
    return tuple(planes)


def _kept_overlays(ds: Dataset, planes: Sequence[tuple[int, int, int, int, int, int]]
                   ) -> dict[int, bytes]:
    """OverlayData of each plane the output keeps (the profile may have removed them)."""
    kept = {}
    for group, *_ in planes:
        element = ds.get((group << 16) | 0x3000)
        if element is not None and isinstance(element.value, bytes):
            kept[group] = element.value
    return kept


def _blank_overlays(ds: Dataset, boxes: Sequence[Box],
                    planes: Sequence[tuple[int, int, int, int, int, int]]) -> None:
    """Blank the image's boxes in every overlay plane the output keeps (60xx,3000)."""
    from dcmanon.pixels.blank import blank_overlay

    kept = _kept_overlays(ds, planes)
    for group, rows, columns, top, left, frames in planes:
        data = kept.get(group)
        if data is None:
            continue
        shifted = [Box(b.left - left, b.top - top, b.right - left, b.bottom - top, b.frames)
                   .clipped(columns, rows) for b in boxes]
        changed = bytearray(data)
        if blank_overlay(changed, rows, columns, frames, shifted):
            ds[(group << 16) | 0x3000].value = bytes(changed)


def _blank_overlay_text(ds: Dataset, plan: PixelPlan, engine: Any) -> None:
    """Blank the text OCR reads in each overlay plane the output keeps: a plane is drawn over
    the image by viewers, so text only in it is burned-in text too."""
    import numpy as np

    from dcmanon.pixels.blank import blank_overlay

    shown = Dataset()  # a plane as viewers draw it: white on black, 8-bit grey
    shown.PhotometricInterpretation, shown.SamplesPerPixel = "MONOCHROME2", 1
    shown.BitsAllocated = shown.BitsStored = 8
    shown.PixelRepresentation = 0
    kept = _kept_overlays(ds, plan.overlays)
    for group, rows, columns, _top, _left, frames in plan.overlays:
        data = kept.get(group)
        count = rows * columns * frames
        if data is None or len(data) * 8 < count:
            continue
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")[:count]
        planes = (bits.reshape(frames, rows, columns, 1) * 255).astype(np.uint8)
        boxes = engine.find_text_boxes(planes, shown, identifiers=plan.identifiers)
        changed = bytearray(data)
        if boxes and blank_overlay(changed, rows, columns, frames, boxes):
            ds[(group << 16) | 0x3000].value = bytes(changed)


def _record_clean(ds: Dataset) -> None:
    """BurnedInAnnotation NO and the Clean Pixel Data Option code: the image was cleaned."""
    ds.BurnedInAnnotation = "NO"
    if "PatientIdentityRemoved" not in ds:
        return  # no de-identification record to add to (no profile)
    items = list(ds.get("DeidentificationMethodCodeSequence") or [])
    if not any(item.get("CodeValue") == CLEAN_PIXEL_CODE[0] for item in items):
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator = CLEAN_PIXEL_CODE[0], "DCM"
        item.CodeMeaning = CLEAN_PIXEL_CODE[1]
        items.append(item)
        ds.DeidentificationMethodCodeSequence = DicomSequence(items)
