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


def test_a_standalone_gateway_serves_https_in_front_of_a_tls_daemon(tmp_path):
    import http.client
    import ssl
    import time

    from fedge.server.config import ServerSettings
    from fedge.server.daemon import start
    from fedge.simulation.loopback import free_port
    from tests.server.conftest import small_task

    assert fedge("tls", "create", "--host", "localhost", cwd=tmp_path).returncode == 0
    cert, key = tmp_path / "fedge-tls.crt", tmp_path / "fedge-tls.key"
    settings = ServerSettings(port=0, http_port=0, data_dir=tmp_path / "d", tls_cert=str(cert), tls_key=str(key))
    running, port = start(settings, [small_task()]), free_port()
    trust = ["--tls-ca", str(cert), "--tls-cert", str(cert), "--tls-key", str(key)]
    command = [sys.executable, "-m", "fedge", "gateway", "--coordinator", running.address, "--port", str(port)]
    gateway = subprocess.Popen([*command, *trust], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, answer = time.monotonic() + 30, None
        while answer is None and time.monotonic() < deadline:
            connection = http.client.HTTPSConnection(
                "localhost", port, timeout=5, context=ssl.create_default_context(cafile=cert)
            )
            try:
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                answer = (response.status, response.read())
            except OSError:
                time.sleep(0.2)  # not listening yet
            finally:
                connection.close()
    finally:
        gateway.terminate()
        gateway.wait(10)
        running.stop(grace=0.5)
    assert answer is not None and answer[0] == 200, gateway.stderr.read()  # it reached the daemon over TLS
    assert answer[1].endswith(b": SERVING\n")
