"""`collect infer` (being written)."""

from __future__ import annotations
