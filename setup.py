"""Maps the top-level folders onto one import root: shared/ -> fedge.shared, and so on.

The built web client, client/js/dist (`npm run build --prefix client/js`), ships as the data-only
package fedge.web, so `pip install .` and `fedge server` serve the page with no network.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages, setup

ROOTS = ("shared", "server", "client")

packages = ["fedge", *find_packages(include=["fedge.*"])]
package_dir = {"fedge": "fedge"}
for root in ROOTS:
    package_dir[f"fedge.{root}"] = root
    packages += [f"fedge.{name}" for name in find_packages(include=[root, f"{root}.*"])]

# The web client's bundle: no Python, only files (listed in pyproject.toml's package-data). Before
# it is built, fedge installs without it (and the gateway answers 404 saying where it looked).
WEB = "client/js/dist"
if (Path(__file__).parent / WEB / "index.html").is_file():
    package_dir["fedge.web"] = WEB
    packages.append("fedge.web")

setup(packages=packages, package_dir=package_dir)
