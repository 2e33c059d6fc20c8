"""Photos for emails: resized once, stored under a content hash, linked by absolute URL.

Mail clients download images from the web app's public /media/ URL; they are never
attached to messages. Each photo is re-encoded at twice its displayed width (sharp
on high-density screens, small in bytes) and named by the hash of its bytes, so a
changed photo gets a new URL and caches never serve a stale one.

Uploads from the web app (`prepare_upload`) are checked before their pixels are
decoded (size, pixel count, the type the file claims against what it is), turned
upright by their EXIF orientation, converted to sRGB and re-encoded from the pixels
alone: no metadata (EXIF with GPS positions and camera serials, XMP, ICC profiles,
comments) reaches subscribers.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from mailer import urls
from mailer.errors import UserInputError


class MediaError(UserInputError):
    """A photo is missing or is not an image we can read."""


class UploadError(MediaError):
    """An uploaded photo was refused: `filename` and what is wrong with it.

    `code` sorts the problems for an HTTP status: "too-large" (bytes or pixels),
    "type" (not a JPEG, PNG or WebP, or not what its name or content type says),
    "unreadable" (empty, damaged or incomplete).
    """

    def __init__(self, filename: str, problem: str, code: str) -> None:
        super().__init__(f"{filename}: {problem}")
        self.filename = filename
        self.problem = problem
        self.code = code


# What an upload may be: Pillow's format name -> (content type, file name endings).
ACCEPTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "JPEG": ("image/jpeg", (".jpg", ".jpeg")),
    "PNG": ("image/png", (".png",)),
    "WEBP": ("image/webp", (".webp",)),
}
LABELS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP"}
# Content types a browser or script sends when it does not know better: no claim made.
UNKNOWN_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
OTHER_NAMES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
# Uploads are kept at most this wide: the widest slot of an email (600 px) twice over.
# The renderer makes smaller copies from them for narrower slots (portraits).
UPLOAD_WIDTH = 1200


@dataclass(frozen=True)
class UploadLimits:
    """The most bytes and pixels (width x height) one upload may have."""

    max_bytes: int
    max_pixels: int


@dataclass(frozen=True)
class PreparedImage:
    """An upload made safe to publish: upright, sRGB, no metadata, at most UPLOAD_WIDTH."""

    data: bytes
    content_type: str  # image/jpeg, or image/png when it has transparency
    width: int
    height: int

    @property
    def hash(self) -> str:
        """The name's stem: the same bytes always get the same name."""
        return hashlib.sha256(self.data).hexdigest()[:20]

    @property
    def name(self) -> str:
        return self.hash + (".png" if self.content_type == "image/png" else ".jpg")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def prepare_upload(
    data: bytes, filename: str, content_type: str | None, limits: UploadLimits
) -> PreparedImage:
    """Check an uploaded photo and re-encode it from its pixels alone.

    Raises UploadError naming the file and the problem: empty, too many bytes, a
    name that is not .jpg/.jpeg/.png/.webp, content that is not what the name or the
    content type says, too many pixels (checked from the header, before decoding: a
    small file can claim a huge image), or a damaged image.
    """
    if not data:
        raise UploadError(filename, "the file is empty", "unreadable")
    if len(data) > limits.max_bytes:
        raise UploadError(
            filename,
            f"{_megabytes(len(data))} is more than the limit of {_megabytes(limits.max_bytes)}"
            " (MAILER_MEDIA_MAX_BYTES); make the photo smaller and try again",
            "too-large",
        )
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    claimed = next((fmt for fmt, (_, ends) in ACCEPTED.items() if suffix in ends), None)
    if claimed is None:
        shown = f"a {suffix} file" if suffix else "a file without .jpg, .png or .webp"
        raise UploadError(
            filename, f"only JPEG, PNG or WebP photos can be uploaded, not {shown}", "type"
        )
    sent = (content_type or "").split(";")[0].strip().lower()
    sent = OTHER_NAMES.get(sent, sent)
    if sent not in UNKNOWN_TYPES and sent != ACCEPTED[claimed][0]:
        raise UploadError(
            filename,
            f"the name says {LABELS[claimed]} but the upload was sent as {sent}",
            "type",
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            actual = str(image.format)
            if actual != claimed:
                what = f"a {LABELS.get(actual, actual)} image"
                raise UploadError(
                    filename,
                    f"the name says {LABELS[claimed]} but the file is {what}; save it"
                    f" again as {LABELS[claimed]} or give it the right ending",
                    "type",
                )
            if image.width * image.height > limits.max_pixels:
                raise UploadError(
                    filename,
                    f"{image.width} x {image.height} pixels is more than the limit of"
                    f" {limits.max_pixels:,} pixels (MAILER_MEDIA_MAX_PIXELS)",
                    "too-large",
                )
            return _clean(image)
    except UnidentifiedImageError:
        raise UploadError(
            filename,
            f"the content is not an image, although the name says {LABELS[claimed]}",
            "type",
        ) from None
    except Image.DecompressionBombError as exc:
        raise UploadError(filename, too_large(exc), "too-large") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadError(
            filename, f"the image is damaged or incomplete ({exc})", "unreadable"
        ) from None


def _clean(image: Image.Image) -> PreparedImage:
    """Upright, sRGB, at most UPLOAD_WIDTH wide, rebuilt from pixels (no info carried)."""
    if image.format == "JPEG":  # decode at a reduced scale when the photo is large
        image.draft(None, (min(image.width, UPLOAD_WIDTH), min(image.height, UPLOAD_WIDTH)))
    image.load()
    upright = _to_srgb(ImageOps.exif_transpose(image))
    rgba = upright.convert("RGBA")
    extrema = rgba.getchannel("A").getextrema()
    transparent = isinstance(extrema[0], int) and extrema[0] < 255
    mode = "RGBA" if transparent else "RGB"
    pixels = rgba if transparent else upright.convert("RGB")
    if pixels.width > UPLOAD_WIDTH:
        height = max(1, round(pixels.height * UPLOAD_WIDTH / pixels.width))
        pixels = pixels.resize((UPLOAD_WIDTH, height), Image.Resampling.LANCZOS)
    clean = Image.frombytes(mode, pixels.size, pixels.tobytes())  # pixels, nothing else
    out = io.BytesIO()
    if transparent:
        clean.save(out, "PNG", optimize=True)
        content_type = "image/png"
    else:
        clean.save(out, "JPEG", quality=85, optimize=True, progressive=True)
        content_type = "image/jpeg"
    return PreparedImage(out.getvalue(), content_type, clean.width, clean.height)


def _to_srgb(image: Image.Image) -> Image.Image:
    """Colours as the embedded ICC profile means them, in sRGB (what browsers and mail
    clients assume when there is no profile); unchanged when there is none or it is broken."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        converted = ImageCms.profileToProfile(
            image,
            ImageCms.ImageCmsProfile(io.BytesIO(icc)),
            ImageCms.createProfile("sRGB"),
            outputMode="RGBA" if image.mode == "RGBA" else "RGB",
        )
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
        return image
    return converted if converted is not None else image


@dataclass
class MediaStore:
    """Publishes local photos into `directory`, served at `<base_url>/media/`."""

    directory: Path
    base_url: str
    _done: dict[tuple[Path, int, int, int], str] = field(default_factory=dict, repr=False)

    def publish(self, path: Path, display_width: int) -> str:
        """Resize `path` for a slot `display_width` px wide; return its absolute URL."""
        try:
            stat = path.stat()
        except OSError:
            raise MediaError(f"{path}: photo not found") from None
        key = (path.resolve(), stat.st_mtime_ns, stat.st_size, display_width)
        if key not in self._done:
            data, suffix = self._encode(path, display_width * 2)
            name = f"{hashlib.sha256(data).hexdigest()[:20]}{suffix}"
            try:
                self._store(name, data)
            except OSError as exc:
                raise MediaError(
                    f"{self.directory}: cannot store photos: {exc.strerror} (MAILER_MEDIA_DIR)"
                ) from None
            self._done[key] = name
        return urls.media(self.base_url, self._done[key])

    def _store(self, name: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / name
        if not target.exists():
            partial = target.with_suffix(target.suffix + ".part")
            partial.write_bytes(data)
            partial.replace(target)

    def store(self, image: PreparedImage) -> str:
        """Keep a prepared upload; returns its file name (the same bytes: the same name)."""
        try:
            self._store(image.name, image.data)
        except OSError as exc:
            raise MediaError(
                f"{self.directory}: cannot store photos: {exc.strerror} (MAILER_MEDIA_DIR)"
            ) from None
        return image.name

    def remove(self, filename: str) -> None:
        """Delete a stored file (gone already is fine)."""
        path = self.path_of(filename)
        if path is not None:
            path.unlink(missing_ok=True)

    def url_of(self, filename: str) -> str:
        return urls.media(self.base_url, filename)

    def local_copy(self, url: str) -> Path | None:
        """The stored file behind one of our own /media/ URLs (an uploaded photo placed
        in an issue by its URL), so the renderer can resize it for its slot; else None."""
        prefix = urls.media(self.base_url, "")
        if not url.startswith(prefix):
            return None
        return self.path_of(url[len(prefix) :])

    def path_of(self, filename: str) -> Path | None:
        """The stored file for a /media/ request, or None (no path tricks)."""
        if "/" in filename or "\\" in filename or filename.startswith("."):
            return None
        candidate = self.directory / filename
        return candidate if candidate.is_file() else None

    @staticmethod
    def _encode(path: Path, width: int) -> tuple[bytes, str]:
        try:
            with Image.open(path) as original:
                image = ImageOps.exif_transpose(original)
                if image.width > width:
                    height = max(1, round(image.height * width / image.width))
                    image = image.resize((width, height), Image.Resampling.LANCZOS)
                out = io.BytesIO()
                has_alpha = image.mode in ("RGBA", "LA") or (
                    image.mode == "P" and "transparency" in image.info
                )
                if has_alpha:
                    image.save(out, "PNG", optimize=True)
                    return out.getvalue(), ".png"
                image.convert("RGB").save(out, "JPEG", quality=82, optimize=True, progressive=True)
                return out.getvalue(), ".jpg"
        except (UnidentifiedImageError, OSError) as exc:
            raise MediaError(f"{path}: not a readable image ({exc})") from None
        except Image.DecompressionBombError as exc:
            raise MediaError(f"{path}: {too_large(exc)}") from None


def too_large(exc: Image.DecompressionBombError) -> str:
    """Pillow refuses images with more pixels than it can decode safely: say how many."""
    return f"too large to read safely: {str(exc).split(',')[0]}"
