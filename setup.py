"""Maps the top-level folders onto one import root: shared/ -> fedge.shared, and so on."""

from __future__ import annotations

from setuptools import find_packages, setup

ROOTS = ("shared", "server", "client")

packages = ["fedge", *find_packages(include=["fedge.*"])]
package_dir = {"fedge": "fedge"}
for root in ROOTS:
    package_dir[f"fedge.{root}"] = root
    packages += [f"fedge.{name}" for name in find_packages(include=[root, f"{root}.*"])]

setup(packages=packages, package_dir=package_dir)
