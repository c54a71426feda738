"""PostgreSQL + pgvector for every stage: the embedded server unless a URL is configured."""


from contextlib import contextmanager
from pathlib import Path

import psycopg
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from configuration.settings import Settings
from video_analysis.store import db


class PostgresResource(ConfigurableResource):
    """Connections to the results database; migrations are applied on first use in each process."""

    url: str | None = Field(
        default=None,
        description="PostgreSQL URL. Defaults to $REELGRAPH_DATABASE_URL, else the embedded server.",
    )
    state_dir: str | None = Field(
        default=None, description="State folder for the embedded server. Defaults to $REELGRAPH_HOME."
    )

    _dsn: str | None = PrivateAttr(default=None)

    def _settings(self) -> Settings:
        settings = Settings.from_env()
        if self.state_dir:
            from video_analysis.runtime.home import StateHome

            settings = Settings(home=StateHome(Path(self.state_dir)))
        return settings

    def dsn(self) -> str:
        if self._dsn is None:
            settings = self._settings()
            dsn = db.resolve_dsn(self.url or settings.database_url, settings.home.pgdata,
                               settings.postgres_shared_buffers)
            db.prepare(dsn)
            self._dsn = dsn
        return self._dsn

    @contextmanager
    def session(self):
        """One transaction: everything inside commits together or not at all."""
        with db.session(self.dsn()) as conn:
            yield conn

    def connect(self) -> psycopg.Connection:
        return db.connect(self.dsn())

    def database(self) -> db.Database:
        """The plain-library handle the stage functions take."""
        return db.Database(self.dsn())
