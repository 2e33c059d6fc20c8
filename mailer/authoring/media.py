"""Photos for emails: resized once, stored under a content hash, linked by absolute URL.

Mail clients download images from the web app's public /media/ URL; they are never
attached to messages. Each photo is re-encoded at twice its displayed width (sharp
on high-density screens, small in bytes) and named by the hash of its bytes, so a
changed photo gets a new URL and caches never serve a stale one.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from mailer import urls
from mailer.errors import UserInputError


class MediaError(UserInputError):
    """A photo is missing or is not an image we can read."""


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
