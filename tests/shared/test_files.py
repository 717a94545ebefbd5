"""Atomic writes: the old file stays whole until the new one is, with the mode asked for."""

from __future__ import annotations

import os

import pytest

from fedge.shared.files import write_atomically


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "state.json"
    write_atomically(path, b"old")

    def fails(handle):
        handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, fails)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_private_file_replaces_a_readable_one_and_is_this_users_only(tmp_path):
    path = tmp_path / "key.pem"
    previous = os.umask(0o022)
    try:
        write_atomically(path, b"public")
        assert path.stat().st_mode & 0o777 == 0o644
        write_atomically(path, lambda handle: handle.write(b"secret"), private=True, durable=True)
    finally:
        os.umask(previous)
    assert path.read_bytes() == b"secret" and path.stat().st_mode & 0o777 == 0o600
