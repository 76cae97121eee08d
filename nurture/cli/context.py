"""What every command shares: global options, the project's settings, a store session."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # both load pydantic-settings or SQLAlchemy: imported when first used
    from sqlmodel import Session

    from nurture.settings import Settings
    from nurture.store.db import Store


@dataclass
class Options:
    project: Path | None = None
    database_url: str | None = None
    debug: bool = False


class State:
    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()

    def configure(self, options: Options) -> None:
        """Start a command afresh (tests run many in one process)."""
        self.__dict__.clear()
        self.options = options

    @cached_property
    def settings(self) -> "Settings":
        from nurture.settings import load_settings

        return load_settings(self.options.project, database_url=self.options.database_url)

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator["Session"]:
        """A session on the project's store (see `store`); `write` locks SQLite at BEGIN."""
        with self.store(write=write) as store, store.session(immediate=write) as session:
            yield session

    def store_made(self) -> bool:
        """False for a SQLite file not created yet, which a read reads as empty: a command can
        then skip the store (and SQLAlchemy's import) altogether."""
        path = self.settings.sqlite_file
        return path is None or path.exists()

    @contextmanager
    def store(self, *, write: bool = False) -> Iterator["Store"]:
        """The project's store. A read never changes it (nurture.store.db.read_store); a write
        first migrates it where `auto_migrate` is on, else a store behind the code is an error."""
        from nurture.store.db import open_store, read_store

        url = self.settings.database
        if not write:
            with read_store(url) as store:
                yield store
            return
        with open_store(url, upgrade=self.settings.migrates) as store:
            yield store


state = State()
