"""State shared by the service mixins."""

from __future__ import annotations

from functools import cached_property

from ..config import Settings
from ..record.device import device_id
from ..store.db import Database


class ServiceBase:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def db(self) -> Database:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return Database(self.settings.db_path)

    @cached_property
    def device_id(self) -> str:
        return device_id()

    def startup(self) -> None:
        """Hook run once when a command opens the service; mixins extend it via super()."""

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.close()
