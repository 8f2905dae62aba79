"""Read articles from files, folders, URLs and pasted text into raw text plus metadata.

Each loader raises ``LoadError`` with a message a user can act on (empty, binary, a PDF
without text, an unsupported type); the pipeline reports it for that item and carries on.
Metadata comes from the format where it has some (HTML meta tags, PDF info, Markdown
front matter) and from a ``manifest.json`` beside the files, a list of objects with a
``file`` key and any of ``title``, ``author``, ``date``, ``url``, ``publisher``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from assistant.core.settings import Settings
from ingest.fetch import FetchError, fetch_url

TEXT_SUFFIXES = {".txt", ".text"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES
MANIFEST_NAME = "manifest.json"
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


class LoadError(RuntimeError):
    """An item could not be read as an article; the message says why."""


@dataclass
class RawDocument:
    """An article as read, before cleaning."""

    text: str
    source: str
    kind: str
    metadata: dict[str, str] = field(default_factory=dict)


def iter_files(root: Path) -> Iterator[Path]:
    """Every file below ``root`` (or ``root`` itself), sorted, hidden files and manifests skipped."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts):
            if path.name != MANIFEST_NAME:
                yield path


def decode_text(data: bytes, name: str) -> str:
    """Bytes to str: UTF-8 first, then a detected encoding; binary data is refused."""
    if not data.strip():
        raise LoadError(f"{name} is empty")
    if b"\x00" in data[:8192]:
        raise LoadError(f"{name} looks binary (contains NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoadError(f"{name} is not readable text in any known encoding")
    return str(best)


@lru_cache(maxsize=256)
def _manifest(folder: Path) -> dict[str, dict[str, str]]:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(entries, list):
        return {}
    return {
        str(e["file"]): {k: str(v) for k, v in e.items() if k != "file" and v is not None}
        for e in entries
        if isinstance(e, dict) and "file" in e
    }


def _from_markdown(text: str) -> tuple[str, dict[str, str]]:
    metadata: dict[str, str] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            front = yaml.safe_load(match.group(1))
        except yaml.YAMLError:
            front = None
        if isinstance(front, dict):
            metadata = {str(k): str(v) for k, v in front.items() if v is not None}
            text = text[match.end() :]
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)  # images
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links keep their words
    text = re.sub(r"^#{1,6}\s+", "", text, flags=re.MULTILINE)
    return text, metadata


def _from_html(html: str, url: str | None = None) -> tuple[str, dict[str, str]]:
    import trafilatura

    text = trafilatura.extract(html, url=url, include_comments=False, include_tables=True, deduplicate=True)
    if not text:
        text = trafilatura.extract(html, url=url, include_comments=False, favor_recall=True)
    if not text:
        raise LoadError("no article text found in the HTML page")
    metadata: dict[str, str] = {}
    meta = trafilatura.extract_metadata(html, default_url=url)
    if meta is not None:
        for key in ("title", "author", "date", "url", "sitename"):
            value = getattr(meta, key, None)
            if value:
                metadata["publisher" if key == "sitename" else key] = str(value)
    # trafilatura leaves the headline out of the body; put it back so it is searchable.
    title = metadata.get("title")
    if title and not text.lstrip().startswith(title):
        text = f"{title}\n\n{text}"
    return text, metadata


# Decompressed bytes one PDF stream may expand to. An article page's content stream is a few
# hundred kB; a "FlateDecode bomb" (a few hundred kB that inflate to gigabytes) stops here,
# after at most this much memory, instead of at pypdf's 75 MB default.
PDF_MAX_STREAM_BYTES = 16 * 1024 * 1024


def _from_pdf(data: bytes, name: str, settings: Settings) -> tuple[str, dict[str, str]]:
    """Text of every page, refusing PDFs over the page, stream-size or text-length limits."""
    import io

    import pypdf
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PdfReadError, PyPdfError

    limits: dict[str, Any] = {field: PDF_MAX_STREAM_BYTES for field in (
        "zlib_maximum_output_length", "lzw_maximum_output_length", "run_length_maximum_output_length",
        "brotli_maximum_output_length", "array_based_stream_maximum_output_length", "image_maximum_buffer_size",
    ) if hasattr(pypdf.Configuration, field)}  # fmt: skip
    pages: list[str] = []
    try:
        with pypdf.apply_configuration(**limits):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                raise LoadError(f"{name} is an encrypted PDF; decrypt it first")
            n_pages = len(reader.pages)
            if n_pages > settings.max_pdf_pages:
                raise LoadError(
                    f"{name} has {n_pages} pages, over the {settings.max_pdf_pages}-page limit; "
                    "split it, or raise DA_MAX_PDF_PAGES"
                )
            extracted = 0
            for page in reader.pages:
                pages.append(page.extract_text() or "")
                extracted += len(pages[-1])
                if extracted > settings.max_text_chars:
                    raise LoadError(_too_long(name, settings))
            metadata: dict[str, str] = {}
            info: dict[Any, Any] = reader.metadata or {}
            for key, pdf_key in (("title", "/Title"), ("author", "/Author")):
                value = info.get(pdf_key)
                if value and str(value).strip():
                    metadata[key] = str(value).strip()
    except LimitReachedError as exc:
        raise LoadError(
            f"{name}: a compressed stream in the PDF expands past the {PDF_MAX_STREAM_BYTES // 2**20} MB safety "
            f"limit (a decompression bomb?); refused ({exc})"
        ) from exc
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise LoadError(f"{name} is not a readable PDF: {exc}") from exc
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text.strip():
        raise LoadError(f"{name} has no extractable text (a scanned PDF?); run OCR on it first")
    return text, metadata


def _too_long(name: str, settings: Settings) -> str:
    return (
        f"{name} has more than {settings.max_text_chars:,} characters of text, over the limit for one document; "
        "split it, or raise DA_MAX_TEXT_CHARS"
    )


def _check_length(text: str, name: str, settings: Settings) -> str:
    if len(text) > settings.max_text_chars:
        raise LoadError(_too_long(name, settings))
    return text


def _require_regular_file(path: Path) -> os.stat_result:
    """The file's stat, read without opening it; a device, pipe or socket is refused first, since
    /dev/zero never ends and opening a FIFO waits for a writer that may never come."""
    try:
        info = path.stat()
    except OSError as exc:
        raise LoadError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise LoadError(f"{path}: not a regular file (a device, pipe or socket); give an article file")
    return info


def load_file(path: Path, settings: Settings) -> RawDocument:
    """Read one file; raises LoadError for anything that is not a readable article."""
    info = _require_regular_file(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(f"{path.name}: unsupported file type {suffix or '(none)'}; use .txt, .md, .html or .pdf")
    if info.st_size > settings.max_file_bytes:
        raise LoadError(f"{path.name} is {info.st_size} bytes, over the {settings.max_file_bytes}-byte limit")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not data.strip():
        raise LoadError(f"{path.name} is empty")

    if suffix in PDF_SUFFIXES:
        text, metadata = _from_pdf(data, path.name, settings)
        kind = "pdf"
    else:
        decoded = decode_text(data, path.name)
        if suffix in HTML_SUFFIXES:
            text, metadata = _from_html(decoded)
            kind = "html"
        elif suffix in MARKDOWN_SUFFIXES:
            text, metadata = _from_markdown(decoded)
            kind = "markdown"
        else:
            text, metadata = decoded, {}
            kind = "text"
    metadata = {**metadata, **_manifest(path.parent.resolve()).get(path.name, {})}
    text = _check_length(text, path.name, settings)
    return RawDocument(text=text, source=str(path.resolve()), kind=kind, metadata=metadata)


def load_url(url: str, settings: Settings) -> RawDocument:
    """Fetch and extract an article from a URL (HTML, plain text or PDF)."""
    try:
        page = fetch_url(
            url,
            allow_private=settings.allow_private_urls,
            timeout_s=settings.url_timeout_s,
            max_bytes=settings.url_max_bytes,
            allowed_hosts=settings.url_allowed_hosts,
            dns_timeout_s=settings.dns_timeout_s,
        )
    except FetchError as exc:
        raise LoadError(str(exc)) from exc
    content_type = page.content_type.split(";")[0].strip().lower()
    if content_type == "application/pdf" or page.content[:5] == b"%PDF-":
        text, metadata = _from_pdf(page.content, url, settings)
        kind = "pdf"
    elif content_type in ("text/plain", "text/markdown"):
        text, metadata = decode_text(page.content, url), {}
        kind = "text"
    elif content_type in ("text/html", "application/xhtml+xml", ""):
        text, metadata = _from_html(decode_text(page.content, url), url=page.url)
        kind = "html"
    else:
        raise LoadError(f"{url} returned {content_type}, which is not an article format")
    metadata.setdefault("url", page.url)
    text = _check_length(text, url, settings)
    return RawDocument(text=text, source=url, kind=kind, metadata=metadata)


def load_pasted(text: str, title: str | None = None, source: str | None = None) -> RawDocument:
    """Pasted text; its source is a stable name derived from the content unless one is given."""
    if not text or not text.strip():
        raise LoadError("pasted text is empty")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    metadata = {"title": title} if title else {}
    return RawDocument(text=text, source=source or f"pasted:{digest}", kind="pasted", metadata=metadata)
