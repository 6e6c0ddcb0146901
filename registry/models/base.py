"""Declarative base shared by every ORM model (column types live in :mod:`registry.tables`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

from ..tables import NAMING_CONVENTION, UTCDateTime, metadata, utcnow


class Base(DeclarativeBase):
    """Base of every ORM model."""

    metadata = metadata
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: sa.JSON(), list[Any]: sa.JSON()}


__all__ = ["NAMING_CONVENTION", "Base", "UTCDateTime", "utcnow"]
