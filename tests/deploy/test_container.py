"""deploy/container and deploy/compose.yaml: the coordinator's image, built and run for real.

No Docker engine runs on this machine, so buildah builds the Dockerfile ("chroot" isolation, on
the host's network) from a Debian bookworm base made here with debootstrap; the Dockerfile's
default base is the registry's debian:bookworm-slim, the same release. The build reads Python and
npm packages from this machine's package sources (its pip and npm configuration, mounted
read-only into the build's steps), as scripts/setup.sh does. Then the image's own command runs
as the image's user, configured the way compose.yaml configures it (its data volume, its
fedge.toml mount, the image's environment): a host agent enrols with a token made by `fedge
token create` inside the container and trains a round, compose's healthcheck passes inside the
container, and SIGTERM (what `docker stop` sends) stops the daemon with status 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fedge.server.config import ServerSettings
from fedge.simulation.loopback import free_port
from tests import processes
from tests.cli.test_service_commands import fedge, one_client_config

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "container" / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
MIRROR = "http://deb.debian.org/debian"
# ca-certificates set up now: the build's steps see this machine's bundle, read-only, in its place
DEBOOTSTRAP = ("debootstrap", "--variant=minbase", "--include=ca-certificates", "bookworm")
# kept between runs (debootstrap takes a minute), named after its recipe so that a new one is made afresh
BASE = f"localhost/fedge-test-base:bookworm-{hashlib.sha256(' '.join(DEBOOTSTRAP).encode()).hexdigest()[:12]}"
IMAGE = "localhost/fedge:test"
# What setup.sh's pip and npm read here: the package sources (and the certificate they are reached with)
PACKAGE_SOURCES = ("/etc/pip.conf", "/etc/xdg/pip", "/opt/pypi", "/opt/pypi-more", "/opt/wheels", "/etc/npmrc")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def buildah(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"buildah {' '.join(args)}: {done.stderr[-3000:]}"
    return done.stdout.strip()


def buildah_or_skip() -> None:
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing or os.geteuid() != 0:
        reason = f"building images needs root and {', '.join(missing) or 'buildah'} (scripts/setup.sh installs them)"
        if os.environ.get("FEDGE_REQUIRE_DATASETS") == "1":
            pytest.fail(f"FEDGE_REQUIRE_DATASETS=1 but the image cannot be built: {reason}")
        pytest.skip(reason)


def base_image(work: Path) -> str:
    """Debian bookworm, minimal, as a local image (registries are out of reach here)."""
    if buildah("images", "--quiet", "--filter", f"reference={BASE}"):
        return BASE
    rootfs = work / "rootfs"
    made = subprocess.run(
        [*DEBOOTSTRAP, str(rootfs), MIRROR],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    with tarfile.open(work / "rootfs.tar", "w") as archive:
        archive.add(rootfs, arcname=".")
    container = buildah("from", "scratch")
    buildah("add", container, str(work / "rootfs.tar"), "/", timeout=300)
    buildah("commit", "--quiet", container, BASE, timeout=300)
    buildah("rm", container)
    shutil.rmtree(rootfs)
    return BASE


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Iterator[dict]:
    """The image built from the repository, and its configuration (user, env, command, …)."""
    buildah_or_skip()
    work = tmp_path_factory.mktemp("image")
    base = base_image(work)
    mounts = [f"--volume={path}:{path}:ro" for path in (*PACKAGE_SOURCES, CA_BUNDLE) if Path(path).exists()]
    log = work / "build.log"
    with log.open("w") as out:
        built = subprocess.run(
            ["buildah", "bud", "--isolation", "chroot", "--layers=false", *mounts, "--build-arg", f"BASE={base}",
             "--file", str(DOCKERFILE), "--tag", IMAGE, str(ROOT)],
            stdout=out, stderr=subprocess.STDOUT, timeout=1200, check=False,
        )  # fmt: skip
    assert built.returncode == 0, log.read_text()[-4000:]
    yield json.loads(buildah("inspect", "--type", "image", IMAGE))["OCIv1"]["config"]
    buildah("rmi", IMAGE)  # a gigabyte; the next run builds it afresh anyway


def compose_service() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]["fedge"]


def environment(config: dict) -> dict[str, str]:
    return dict(entry.split("=", 1) for entry in config["Env"])


def test_compose_runs_the_image_as_it_is_built(image):
    service = compose_service()
    assert (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE
    defaults = ServerSettings()
    published = {int(mapping.split(":")[-1]) for mapping in service["ports"]}
    assert (
        published == {defaults.port, defaults.http_port} == {int(port.split("/")[0]) for port in image["ExposedPorts"]}
    )
    data, config = (mount.split(":")[1] for mount in service["volumes"])
    assert data == environment(image)["FEDGE_DATA_DIR"] and data in image["Volumes"]
    assert config == f"{image['WorkingDir']}/fedge.toml"  # where `fedge server` looks without --config
    assert image["User"] == "fedge" and image["Cmd"] == ["fedge", "server"]
    assert image["StopSignal"] == "SIGTERM"


def daemon_process(root: int) -> processes.Process:
    """The `fedge server` process that `buildah run` started, through helpers of its own."""
    for process in processes.descendants(root):
        command = process.command.split(b"\0")
        # python3 …/bin/fedge server: not buildah's own helpers, whose arguments end the same way
        if Path(command[0].decode()).name.startswith("python") and command[2:3] == [b"server"]:
            return process
    raise AssertionError("no fedge server process under buildah run")


def test_the_image_serves_a_round_as_compose_runs_it_and_stops_on_sigterm(image, tmp_path):
    # one working container for the daemon, one for what `docker compose exec` runs beside it
    container, beside = buildah("from", IMAGE), buildah("from", IMAGE)
    try:
        config = one_client_config(tmp_path)
        config.write_text(config.read_text().replace('name = "har"', 'name = "boxed"'))  # proves it was read
        data = tmp_path / "volume"
        data.mkdir()
        os.chown(data, int(buildah("run", "--isolation", "chroot", container, "--", "id", "-u", "fedge")), -1)
        port, http_port = free_port(), free_port()
        # on the host's network here: loopback only, and ports no one else uses
        settings = {"FEDGE_HOST": "127.0.0.1", "FEDGE_PORT": str(port), "FEDGE_HTTP_PORT": str(http_port)}
        env = [f"--env={key}={value}" for key, value in settings.items()]
        data_mount, config_mount = (mount.split(":")[1] for mount in compose_service()["volumes"])
        for working in (container, beside):  # compose's volume takes the VOLUME's place, not buildah's own
            buildah("config", f"--volume={data_mount}-", working)
        mounts = [f"--volume={data}:{data_mount}", f"--volume={config}:{config_mount}:ro"]
        run = ["buildah", "run", "--isolation", "chroot", *env, *mounts]
        log = tmp_path / "daemon.log"
        with log.open("w") as out:
            daemon = subprocess.Popen([*run, container, "--", *image["Cmd"]], stdout=out, stderr=subprocess.STDOUT)
        exec_ = [*run, beside, "--"]
        try:
            processes.wait_for((data / "server.json").exists, "the daemon's server.json", [daemon], log=log)
            address = f"127.0.0.1:{port}"
            # as `docker compose exec fedge fedge token create` would: the image's user, workdir and config
            token = subprocess.run([*exec_, "fedge", "token", "create"], capture_output=True, text=True, timeout=60)
            assert token.returncode == 0, token.stderr
            split = tmp_path / "split"
            assert fedge("data", "split", "--dataset", "synthetic-imu", "--out", str(split)).returncode == 0
            agent = fedge("client", "--server", address, "--token", token.stdout.strip(),
                          "--data", str(split / "client-000"), "--exit-when-done")  # fmt: skip
            assert agent.returncode == 0, agent.stderr + log.read_text()
            status = json.loads(fedge("status", "--json", "--data-dir", str(data)).stdout)
            assert [(t["task"], t["status"], t["version"]) for t in status["tasks"]] == [("boxed", "completed", 1)]
            assert (data / "registry" / "boxed" / "1").is_dir()  # publish = "best": the volume holds it

            healthcheck = compose_service()["healthcheck"]["test"]
            assert healthcheck[0] == "CMD"
            healthy = subprocess.run([*exec_, *healthcheck[1:]], capture_output=True, text=True, timeout=60)
            assert healthy.returncode == 0, healthy.stderr

            server = daemon_process(daemon.pid)
            assert server.uid == data.stat().st_uid != 0  # the image's own user, not root
            os.kill(server.pid, signal.SIGTERM)  # what `docker stop` sends (buildah run does not pass it on)
            assert daemon.wait(timeout=60) == 0, log.read_text()
            assert "stopping on SIGTERM" in log.read_text()
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    finally:
        buildah("rm", container, beside)
