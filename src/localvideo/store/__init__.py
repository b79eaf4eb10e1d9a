"""The store: one state root with the chunk files and the SQLite index."""

from .db import Database, open_db

__all__ = ["Database", "open_db"]
