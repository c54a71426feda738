"""PostgreSQL + pgvector for every stage: the embedded server unless a URL is configured."""


from contextlib import contextmanager
from pathlib import Path

import psycopg
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from video_analysis import db
from video_analysis.settings import Settings


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
            from video_analysis.home import StateHome

            settings = Settings(home=StateHome(Path(self.state_dir)))
        return settings

    def dsn(self) -> str:
        if self._dsn is None:
            settings = self._settings()
            dsn = db.resolve_dsn(self.url or settings.database_url, settings.home.pgdata)
            db.prepare(dsn)
            self._dsn = dsn
        return self._dsn

    @property
    def is_embedded(self) -> bool:
        return not (self.url or self._settings().database_url)

    @contextmanager
    def session(self):
        """One transaction: everything inside commits together or not at all."""
        with db.session(self.dsn()) as conn:
            yield conn

    def connect(self) -> psycopg.Connection:
        return db.connect(self.dsn())
