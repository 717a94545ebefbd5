"""The web client's built files, served from one folder (client/js/dist by default).

Only regular files inside the folder are served: ".." segments, dot-files, NUL bytes and
symbolic links that lead outside are all "not found", so no request reaches anything else.
Caching: a file whose name carries a content hash (esbuild's ``[name]-[hash]``, e.g.
``app-5QKJ3Z7A.js``) never changes and is cached for a year; anything else, index.html
first, is revalidated on every load with its ETag (a 304 costs no body).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from fedge.server.gateway.http import TEXT, HttpRequest, HttpResponse

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".wasm": "application/wasm",  # WebAssembly.instantiateStreaming refuses any other type
    ".json": "application/json",
    ".map": "application/json",
    ".onnx": "application/octet-stream",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": TEXT,
    ".webmanifest": "application/manifest+json",
}
HASHED = re.compile(r".+[.-](?=[A-Za-z0-9]*\d)[A-Za-z0-9]{8,}\.[a-z0-9]+")  # a digit: "-threaded" is no hash
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


class StaticFiles:
    """GET handler for the files under ``root``; runs in a worker thread (it reads files)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root.resolve() if root is not None else None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.root is None or not (self.root / "index.html").is_file():
            where = f"in {self.root}" if self.root else "configured (--static DIR)"
            return HttpResponse.text(404, f"no web client here: expected a built bundle {where}")
        path = self.resolve(request.path)
        if path is None:
            return HttpResponse.text(404, f"not found: expected a file of the web client, got {request.path}")
        stat = path.stat()
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        headers = {"ETag": etag, "Cache-Control": IMMUTABLE if HASHED.fullmatch(path.name) else REVALIDATE}
        if etag in request.headers.get("If-None-Match", ""):
            return HttpResponse(304, headers=headers)
        kind = TYPES.get(path.suffix.lower(), "application/octet-stream")
        return HttpResponse(200, path.read_bytes(), kind, headers)

    def resolve(self, url_path: str) -> Path | None:
        """The file a URL path names, or None when it names nothing servable."""
        assert self.root is not None
        relative = PurePosixPath(unquote(url_path).lstrip("/"))
        parts = relative.parts
        if "\0" in str(relative) or "\\" in str(relative) or any(p == ".." or p.startswith(".") for p in parts):
            return None
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root):
            return None
        if candidate.is_dir():
            candidate = candidate / "index.html"
        return candidate if candidate.is_file() else None
