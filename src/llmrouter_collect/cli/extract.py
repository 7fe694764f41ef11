"""`collect extract` (to be written)."""

from __future__ import annotations
