"""`fedge tls create`: a self-signed pair an operator can serve at once, never written over by mistake."""

from __future__ import annotations

import stat
import subprocess
import sys

from fedge.shared.tls import ServerTls


def fedge(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "fedge", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=cwd, check=False)


def test_create_writes_a_pair_the_daemon_loads_and_refuses_to_overwrite_it(tmp_path):
    made = fedge("tls", "create", "--host", "fedge.lan", "--host", "10.0.0.5", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    cert, key = tmp_path / "fedge-tls.crt", tmp_path / "fedge-tls.key"
    loaded = ServerTls.load(cert, key)
    assert loaded.names == ("fedge.lan", "localhost", "10.0.0.5", "127.0.0.1")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "fedge client --tls-ca fedge-tls.crt" in made.stdout

    again = fedge("tls", "create", "--host", "other.lan", cwd=tmp_path)
    assert again.returncode == 2 and "fedge-tls.crt exists: pass --force" in again.stderr
    assert ServerTls.load(cert, key).names == loaded.names  # untouched
    forced = fedge("tls", "create", "--host", "other.lan", "--force", cwd=tmp_path)
    assert forced.returncode == 0 and ServerTls.load(cert, key).names[0] == "other.lan"


def test_create_refuses_a_host_no_certificate_can_name(tmp_path):
    result = fedge("tls", "create", "--host", "not a host", cwd=tmp_path)
    assert result.returncode == 2 and "expected a host name or an IP address" in result.stderr
    assert not (tmp_path / "fedge-tls.key").exists()
