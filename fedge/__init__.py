"""fedge: federated, privacy-preserving edge training."""

from __future__ import annotations

__version__ = "0.1.0"
