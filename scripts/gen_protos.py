"""Regenerate the Python code for protos/fedge/v1 into shared/proto (never edit that by hand).

Run: ``.venv/bin/python scripts/gen_protos.py``. tests/shared/test_proto.py fails when the
committed code is stale. The proto folder is mounted at the virtual path fedge/shared/proto so
the generated modules import each other as ``fedge.shared.proto.*``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos" / "fedge" / "v1"
TARGET = ROOT / "shared" / "proto"
VIRTUAL = "fedge/shared/proto"
HEADER = '"""Generated from protos/fedge/v1 by scripts/gen_protos.py. Do not edit."""\n'


def generate(target: Path = TARGET) -> list[Path]:
    """Write the generated modules into ``target``; returns the files written."""
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        files = sorted(p.name for p in PROTOS.glob("*.proto"))
        args = [
            "protoc",
            f"-I{VIRTUAL}={PROTOS}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
        ]
        if protoc.main([*args, *(f"{VIRTUAL}/{name}" for name in files)]) != 0:
            raise RuntimeError("protoc failed; see the message above")
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*_pb2*"):
            old.unlink()
        written = []
        for path in sorted((Path(tmp) / VIRTUAL).iterdir()):
            written.append(Path(shutil.copy(path, target / path.name)))
        (target / "__init__.py").write_text(HEADER)
        written.append(target / "__init__.py")
        return written


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else TARGET):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
