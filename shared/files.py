"""Writing a file that a reader never sees half of: a hidden temporary file beside it, renamed
into place. A crash while writing leaves the old file as it was.

``private`` creates it readable by this user only, from the first byte (keys, credentials);
``durable`` syncs it to disk before the rename, for what must outlive a power cut (a credential
whose token is spent).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(
    path: Path, content: bytes | Callable[[BinaryIO], object], *, private: bool = False, durable: bool = False
) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # hidden: sample-file listings skip it
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if callable(content):
                content(handle)
            else:
                handle.write(content)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)  # the new file keeps the temporary's mode
    finally:
        temporary.unlink(missing_ok=True)
