"""The built page is where the gateway looks: client/js/dist in a checkout, fedge/web in a wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fedge.server.gateway import default_static_dir

REPO = Path(__file__).resolve().parents[2]
PAGE = ("index.html", "style.css", "page.js", "fedge-client.js", "tfjs-backend-wasm-simd.wasm")


def built_page() -> Path:
    root = REPO / "client" / "js" / "dist"
    if not (root / "index.html").is_file():
        reason = "client/js/dist is not built (scripts/setup.sh runs npm run build --prefix client/js)"
        if os.environ.get("FEDGE_REQUIRE_DATASETS") == "1":
            pytest.fail(f"FEDGE_REQUIRE_DATASETS=1 but {reason}")
        pytest.skip(reason)
    return root


def test_a_checkout_serves_client_js_dist() -> None:
    root = built_page()
    assert default_static_dir() == root
    assert all((root / name).is_file() for name in PAGE), sorted(p.name for p in root.iterdir())
    assert any(root.glob("chunk-*.js")), "the shared chunk both entries import"


def copy_sources(destination: Path) -> Path:
    """What `pip install .` reads, without node_modules (400 MB) or build leftovers."""
    ignore = shutil.ignore_patterns("node_modules", "__pycache__", "*.egg-info", "build", ".venv", "artifacts")
    destination.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, destination / name)
    for folder in ("fedge", "shared", "server", "client"):
        shutil.copytree(REPO / folder, destination / folder, ignore=ignore)
    return destination


@pytest.mark.slow
def test_a_wheel_ships_the_page_and_the_gateway_finds_it(tmp_path: Path) -> None:
    built_page()
    copy_sources(tmp_path / "src")
    source = str(tmp_path / "src")  # a path: a bare "src" would be a package name to look up
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", "wheels", source]
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "wheels").glob("fedge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"fedge/web/{name}" for name in PAGE} <= names
    assert "fedge/web/dashboard/index.html" in names or not (REPO / "client" / "js" / "dashboard").is_dir()

    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    probe = "from fedge.server.gateway import default_static_dir as d; print(d(), (d() / 'index.html').is_file())"
    env = {**os.environ, "PYTHONPATH": str(installed)}
    # run from tmp_path: `python -c` puts the working directory first, and this checkout's is /work/main
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert out.split() == [str(installed / "fedge" / "web"), "True"]
