"""PNG, JPEG and TIFF images (scans, photos of a protocol) read with OCR; one page per TIFF frame."""

from __future__ import annotations

from io import BytesIO
from pathlib import PurePath

from ingest.errors import LoadError
from ingest.loaders.limits import LoaderLimits
from ingest.ocr import Ocr, PageError
from vraagbaak_core.types import Block, ParsedDocument


class ImageLoader:
    formats: tuple[str, ...] = ("image",)

    def __init__(self, limits: LoaderLimits | None = None, ocr: Ocr | None = None) -> None:
        self.limits = limits or LoaderLimits()
        self.ocr = ocr

    def load(self, data: bytes, name: str) -> ParsedDocument:
        if self.ocr is None or not self.ocr.available:
            why = self.ocr.reason if self.ocr is not None else "OCR is off"
            raise LoadError(f"an image has text only through OCR, and {why}")
        from PIL import Image, ImageSequence, UnidentifiedImageError

        blocks: list[Block] = []
        failed: list[str] = []
        try:
            with Image.open(BytesIO(data)) as img:
                n = getattr(img, "n_frames", 1)
                if n > self.limits.max_pages:
                    raise LoadError(f"too many pages: {n} (limit {self.limits.max_pages}, ingest.max_pages)")
                for i, frame in enumerate(ImageSequence.Iterator(img)):
                    frame.load()
                    page = frame.convert("L") if frame.mode not in ("1", "L", "RGB") else frame
                    try:
                        text = self.ocr.image_text(page)
                    except PageError as err:
                        failed.append(f"page {i + 1}: {err}")
                        continue
                    if text:
                        blocks.append(Block(text=text, page=i + 1 if n > 1 else None))
        except Image.DecompressionBombError as err:
            raise LoadError(f"decompression bomb: {str(err)[:160]}") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as err:
            raise LoadError(f"corrupt or unreadable image: {str(err)[:160] or type(err).__name__}") from None
        if not blocks:
            detail = f": {'; '.join(failed)[:300]}" if failed else ""
            raise LoadError(f"OCR found no text in the image{detail}")
        notes = [f"OCR ({self.ocr.config.languages}) on {n - len(failed)} of {n} page(s)"]
        notes.extend(f"OCR failed on {f}" for f in failed)
        return ParsedDocument(
            title=PurePath(name).stem, format="image", blocks=blocks, ocr_pages=n - len(failed), notes=notes,
        )
