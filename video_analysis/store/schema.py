"""The one module that owns reelgraph's database schema.

Migrations are numbered and append-only; ``migrate`` applies the missing ones in order under an advisory
lock, so any number of processes may call it at start-up. Each migration is its own transaction, which also
records its version: a failed migration leaves the schema at the version before it, with the migrations
before it kept, and a long one (a vector index over many rows) holds its tables only while it runs.

A migration's statements wait at most ``LOCK_TIMEOUT_S`` for a table that another session holds: an upgrade
that cannot have its tables fails, naming the migration and the session in its way, instead of queueing
every later query of every process behind it.
"""

from __future__ import annotations

import logging
import os
import re
import time

import psycopg

from video_analysis.store import vector_index

log = logging.getLogger(__name__)

_MIGRATION_LOCK = 0x5EE1_6A9F  # advisory-lock id shared by every reelgraph process

# How long one statement of a migration waits for a lock another session holds on its tables.
LOCK_TIMEOUT_S = 5.0
# How long a process waits for another one that is applying migrations (an index build over a million rows
# takes minutes), saying so every WAIT_REPORT_S.
MIGRATION_WAIT_S = 1800.0
WAIT_REPORT_S = 60.0


class MigrationError(RuntimeError):
    """A migration could not be applied now; the schema stays at the version before it."""


MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "videos and per-stage state",
        """
        CREATE EXTENSION IF NOT EXISTS vector;

        CREATE TABLE videos (
            partition_key      text PRIMARY KEY,
            source             text NOT NULL CHECK (source IN ('local', 's3')),
            bucket             text,
            object_key         text NOT NULL,
            version            text NOT NULL,
            etag               text,
            size_bytes         bigint NOT NULL,
            last_modified      timestamptz NOT NULL,
            camera             text,
            recorded_at        timestamptz,
            status             text NOT NULL DEFAULT 'registered'
                               CHECK (status IN ('registered', 'ready', 'failed')),
            error              text,
            attempts           integer NOT NULL DEFAULT 0,
            sha256             text,
            container          text,
            codec              text,
            fps                double precision,
            width              integer,
            height             integer,
            frame_count        integer,
            header_frame_count integer,
            duration_s         double precision,
            thumbnail_jpeg     bytea,
            registered_at      timestamptz NOT NULL DEFAULT now(),
            probed_at          timestamptz,
            UNIQUE (source, bucket, object_key, version)
        );
        CREATE INDEX videos_camera_time ON videos (camera, recorded_at);
        CREATE INDEX videos_status ON videos (status);
        CREATE INDEX videos_sha256 ON videos (sha256);

        -- One row per (video, stage): what `reelgraph status` shows and what failure alerts read.
        CREATE TABLE stage_runs (
            partition_key  text NOT NULL REFERENCES videos (partition_key) ON DELETE CASCADE,
            stage          text NOT NULL,
            status         text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
            row_count      integer,
            model_version  text,
            error          text,
            run_id         text,
            updated_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (partition_key, stage)
        );
        """,
    ),
    (
        2,
        "detections and tracks",
        """
        ALTER TABLE stage_runs ADD COLUMN details jsonb;

        -- Every sampled-frame detection; replaced per partition in one transaction.
        CREATE TABLE detections (
            partition_key  text NOT NULL REFERENCES videos (partition_key) ON DELETE CASCADE,
            frame_index    integer NOT NULL,
            t              double precision NOT NULL,
            class_name     text NOT NULL,
            confidence     real NOT NULL CHECK (confidence BETWEEN 0 AND 1),
            x1 real NOT NULL, y1 real NOT NULL, x2 real NOT NULL, y2 real NOT NULL,
            model_name     text NOT NULL,
            model_version  text NOT NULL
        );
        CREATE INDEX detections_video_frame ON detections (partition_key, frame_index);
        CREATE INDEX detections_class ON detections (class_name);

        CREATE TABLE tracks (
            partition_key    text NOT NULL REFERENCES videos (partition_key) ON DELETE CASCADE,
            track_id         integer NOT NULL,
            class_name       text NOT NULL,
            first_t          double precision NOT NULL,
            last_t           double precision NOT NULL,
            frames_seen      integer NOT NULL,
            mean_confidence  real NOT NULL,
            max_step_px      real NOT NULL,
            path             jsonb NOT NULL,
            best_frame       integer NOT NULL,
            best_x1 real NOT NULL, best_y1 real NOT NULL, best_x2 real NOT NULL, best_y2 real NOT NULL,
            thumbnail_jpeg   bytea,
            model_name       text NOT NULL,
            model_version    text NOT NULL,
            PRIMARY KEY (partition_key, track_id)
        );
        CREATE INDEX tracks_class_time ON tracks (class_name, first_t);
        """,
    ),
    (
        3,
        "track attributes, embeddings, summaries",
        """
        -- Rows of a track go when the track goes: re-running `tracks` leaves no orphaned attributes.
        CREATE TABLE track_attributes (
            partition_key    text NOT NULL,
            track_id         integer NOT NULL,
            class_name       text NOT NULL,
            upper_color      text,
            lower_color      text,
            color            text,
            apparent_height  real NOT NULL,
            speed_px_s       real NOT NULL,
            speed_heights_s  real NOT NULL,
            motion           text NOT NULL,
            heading          text,
            displacement_px  real NOT NULL,
            dwell_s          real NOT NULL,
            zones            text[] NOT NULL DEFAULT '{}',
            extras           jsonb NOT NULL DEFAULT '{}',
            description      text NOT NULL,
            description_tsv  tsvector GENERATED ALWAYS AS (to_tsvector('english', description)) STORED,
            profile          text NOT NULL,
            PRIMARY KEY (partition_key, track_id),
            FOREIGN KEY (partition_key, track_id) REFERENCES tracks (partition_key, track_id) ON DELETE CASCADE
        );
        CREATE INDEX track_attributes_tsv ON track_attributes USING gin (description_tsv);
        CREATE INDEX track_attributes_colors ON track_attributes (upper_color, lower_color, color);

        -- Vectors of any model and dimension; each model gets a partial HNSW index (video_analysis.store.vector_index).
        CREATE TABLE embeddings (
            id             bigserial PRIMARY KEY,
            partition_key  text NOT NULL REFERENCES videos (partition_key) ON DELETE CASCADE,
            kind           text NOT NULL CHECK (kind IN ('track_text', 'track_image', 'summary_text')),
            track_id       integer,
            content        text,
            model_name     text NOT NULL,
            model_version  text NOT NULL,
            dim            integer NOT NULL,
            embedding      vector NOT NULL CHECK (vector_dims(embedding) = dim)
        );
        CREATE UNIQUE INDEX embeddings_one_per_item
            ON embeddings (partition_key, kind, coalesce(track_id, -1), model_name);

        CREATE TABLE summaries (
            partition_key   text PRIMARY KEY REFERENCES videos (partition_key) ON DELETE CASCADE,
            safety_score    smallint NOT NULL CHECK (safety_score BETWEEN 0 AND 100),
            incident_count  integer NOT NULL,
            incidents       jsonb NOT NULL,
            summary         text NOT NULL,
            summary_tsv     tsvector GENERATED ALWAYS AS (to_tsvector('english', summary)) STORED,
            facts           jsonb NOT NULL,
            generator       text NOT NULL,
            created_at      timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX summaries_tsv ON summaries USING gin (summary_tsv);
        CREATE INDEX summaries_incidents ON summaries USING gin (incidents jsonb_path_ops);
        """,
    ),
    (
        4,
        "per-camera daily reports",
        """
        CREATE TABLE camera_daily_reports (
            camera             text NOT NULL,
            day                date NOT NULL,
            videos             integer NOT NULL,
            footage_minutes    double precision NOT NULL,
            mean_safety_score  double precision NOT NULL,
            min_safety_score   smallint NOT NULL,
            incident_count     integer NOT NULL,
            incidents_by_type  jsonb NOT NULL,
            PRIMARY KEY (camera, day)
        );
        """,
    ),
    (
        5,
        "vector index holds (bulk loads build HNSW once, afterwards)",
        """
        CREATE TABLE vector_index_holds (
            held_by  text PRIMARY KEY,
            held_at  timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
    (
        6,
        "footage as decoded: partial recordings, decode errors and gaps; best-sighting times of tracks",
        """
        ALTER TABLE videos DROP CONSTRAINT videos_status_check;
        ALTER TABLE videos ADD CONSTRAINT videos_status_check
            CHECK (status IN ('registered', 'ready', 'partial', 'failed'));
        -- frame_count: frames the stream holds (its packet index); decoded_frames: what the detection pass
        -- decoded. covered_s of duration_s decoded; the rest is in gaps (start, end seconds) or cut off.
        ALTER TABLE videos ADD COLUMN rotation smallint,
                           ADD COLUMN decoded_frames integer,
                           ADD COLUMN decode_errors integer,
                           ADD COLUMN covered_s double precision,
                           ADD COLUMN gaps jsonb,
                           ADD COLUMN notes text[];
        ALTER TABLE tracks ADD COLUMN best_t double precision;
        -- Tracks made before: their best sighting's time is that of its frame's detections.
        UPDATE tracks SET best_t = d.t
          FROM (SELECT partition_key, frame_index, min(t) AS t FROM detections
                GROUP BY partition_key, frame_index) AS d
         WHERE d.partition_key = tracks.partition_key AND d.frame_index = tracks.best_frame;
        """,
    ),
    (
        7,
        "superseded versions: a key re-uploaded with new bytes points its older versions at the newest",
        """
        ALTER TABLE videos ADD COLUMN superseded_by text;
        CREATE INDEX videos_object ON videos (source, object_key);
        -- Keys already registered more than once: versions registered before the newest usable one are
        -- superseded by it (the rule of video_analysis/store/catalog.py).
        UPDATE videos v SET superseded_by = latest.partition_key
          FROM (SELECT DISTINCT ON (source, bucket, object_key) source, bucket, object_key, partition_key,
                       registered_at
                  FROM videos WHERE status IN ('ready', 'partial')
                 ORDER BY source, bucket, object_key, registered_at DESC, partition_key DESC) latest
         WHERE v.source = latest.source AND v.bucket IS NOT DISTINCT FROM latest.bucket
           AND v.object_key = latest.object_key AND v.registered_at < latest.registered_at;
        """,
    ),
    (
        8,
        "one HNSW index name per embedding model (two names that slugged alike shared one)",
        # the graph settings the code builds with (vector_index.ensure_index), not pgvector's defaults
        f"""
        DO $$
        DECLARE
            old record;
            models text[];
            dims integer[];
        BEGIN
            FOR old IN SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings'
                                                          AND indexname LIKE 'embeddings_hnsw_%' LOOP
                EXECUTE format('DROP INDEX %I', old.indexname);
            END LOOP;
            IF NOT EXISTS (SELECT 1 FROM vector_index_holds) THEN
                -- read the models first: an index cannot be built while a loop still reads the table
                SELECT array_agg(model_name), array_agg(dim) INTO models, dims
                  FROM (SELECT model_name, min(dim) AS dim FROM embeddings GROUP BY model_name
                        HAVING min(dim) = max(dim)) m;  -- one dimension per model, as ensure_index assumes
                FOR i IN 1 .. coalesce(array_length(models, 1), 0) LOOP
                    EXECUTE format(
                        'CREATE INDEX %I ON embeddings USING hnsw ((embedding::vector(%s)) vector_cosine_ops) '
                        'WITH (m = {vector_index.HNSW_M}, ef_construction = {vector_index.HNSW_EF_CONSTRUCTION}) '
                        'WHERE model_name = %L',
                        'embeddings_hnsw_'
                            || left(btrim(regexp_replace(lower(models[i]), '[^a-z0-9]+', '_', 'g'), '_'), 30)
                            || '_' || left(md5(models[i]), 8),
                        dims[i], models[i]);
                END LOOP;
            END IF;
        END $$;
        """,
    ),
    (
        9,
        "each distinct description's vector once, with its own IVFFlat index; tracks found by their description",
        """
        -- Tracks described alike share a description and so a vector (in the service benchmark's month of
        -- ten cameras, ~50 tracks per distinct sentence). Search finds the nearest distinct descriptions
        -- (an IVFFlat index, built by video_analysis/store/vector_index.py), then expands each to its
        -- tracks (search.py).
        CREATE TABLE description_vectors (
            model_name     text NOT NULL,
            content        text NOT NULL,
            model_version  text NOT NULL,
            dim            integer NOT NULL,
            embedding      vector NOT NULL CHECK (vector_dims(embedding) = dim),
            content_tsv    tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
        );
        CREATE INDEX description_vectors_tsv ON description_vectors USING gin (content_tsv);
        -- md5: a description is free text, and a btree entry holds at most ~2.7 kB
        CREATE UNIQUE INDEX description_vectors_one_per_text ON description_vectors (model_name, md5(content));
        -- the newest row of each description, chosen by id (sorting the vectors themselves spills to disk)
        INSERT INTO description_vectors (model_name, content, model_version, dim, embedding)
        SELECT e.model_name, e.content, e.model_version, e.dim, e.embedding
          FROM embeddings e
          JOIN (SELECT max(id) AS id FROM embeddings WHERE kind = 'track_text' AND content IS NOT NULL
                 GROUP BY model_name, md5(content)) newest USING (id);
        -- a description's tracks, in the order search breaks ties between them
        CREATE INDEX embeddings_by_description
            ON embeddings (model_name, md5(content), partition_key, track_id) WHERE kind = 'track_text';
        -- how many tracks share a description, for the planner: without it, it guessed 5,000 rather than 50
        -- and merged each description's tracks with every video (155 ms against 4 ms at 1M tracks)
        CREATE STATISTICS embeddings_per_description ON (md5(content)) FROM embeddings;
        ANALYZE embeddings;  -- now: on a large table autovacuum would wait for a tenth of it to change
        ANALYZE description_vectors;
        DO $$
        DECLARE
            models text[];
            dims integer[];
            counts bigint[];
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM vector_index_holds) THEN
                SELECT array_agg(model_name), array_agg(dim), array_agg(n) INTO models, dims, counts
                  FROM (SELECT model_name, min(dim) AS dim, count(*) AS n FROM description_vectors GROUP BY model_name
                        HAVING min(dim) = max(dim)) m;
                FOR i IN 1 .. coalesce(array_length(models, 1), 0) LOOP
                    EXECUTE format(
                        'CREATE INDEX %I ON description_vectors USING ivfflat '
                        '((embedding::vector(%s)) vector_cosine_ops) WITH (lists = %s) WHERE model_name = %L',
                        'descriptions_ivfflat_'
                            || left(btrim(regexp_replace(lower(models[i]), '[^a-z0-9]+', '_', 'g'), '_'), 30)
                            || '_' || left(md5(models[i]), 8),
                        -- vector_index.description_lists: the square root of the count
                        dims[i], greatest(1, round(sqrt(counts[i])))::integer, models[i]);
                END LOOP;
            END IF;
        END $$;
        """,
    ),
    (
        10,
        "each distinct description's text once, written with the attributes; tracks found by their description",
        """
        -- Search by words matches distinct descriptions, then expands each to its tracks (search.py). Read
        -- from the attributes, not from the descriptions' vectors: a track whose embeddings stage has not
        -- run yet (or failed) is found by its words all the same.
        CREATE TABLE descriptions (
            content      text NOT NULL,
            content_tsv  tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
        );
        INSERT INTO descriptions (content)
        SELECT DISTINCT ON (md5(description)) description FROM track_attributes ORDER BY md5(description);
        CREATE UNIQUE INDEX descriptions_one_per_text ON descriptions (md5(content));
        CREATE INDEX descriptions_tsv ON descriptions USING gin (content_tsv);
        -- a description's tracks, in the order search breaks ties between them (ANALYZE gathers how many
        -- tracks share one from this index's expression: the planner needs it, see migration 9)
        CREATE INDEX track_attributes_by_description ON track_attributes (md5(description), partition_key, track_id);
        ANALYZE track_attributes;
        ANALYZE descriptions;
        ALTER TABLE description_vectors DROP COLUMN content_tsv;  -- words are matched in descriptions now
        """,
    ),
    (
        11,
        "incidents found by their words through an index",
        """
        -- Search by words tests each incident's type and detail; this index finds the summaries whose
        -- incidents hold all the words first, instead of reading every summary (57 ms at 50,000 videos).
        -- Each incident's text as search reads it ("running moved at ..."), one after the other: a phrase
        -- within one incident is a phrase here too, and the incident's own text decides.
        CREATE FUNCTION incident_words(incidents jsonb) RETURNS tsvector
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$ SELECT to_tsvector('english'::regconfig, coalesce(string_agg(
                      replace(i->>'type', '_', ' ') || ' ' || coalesce(i->>'detail', ''), ' '), ''))
                  FROM jsonb_array_elements(incidents) i $$;
        CREATE INDEX summaries_incident_words ON summaries USING gin (incident_words(incidents));
        """,
    ),
    (
        12,
        "static objects, and the crops of each track's best sighting taken in the detection pass",
        """
        -- Regions the detection pass saw appear and stay still (vision/scene.py), whatever the detector made
        -- of them: the evidence for unattended objects. Replaced with the partition's detections.
        CREATE TABLE static_objects (
            partition_key  text NOT NULL REFERENCES videos (partition_key) ON DELETE CASCADE,
            object_id      integer NOT NULL,
            first_t        double precision NOT NULL,
            last_t         double precision NOT NULL,
            x1 real NOT NULL, y1 real NOT NULL, x2 real NOT NULL, y2 real NOT NULL,
            samples        integer NOT NULL,
            PRIMARY KEY (partition_key, object_id)
        );

        -- A small JPEG of each track's best sighting, cut while the detection pass had the frame in memory:
        -- the tracks stage takes its thumbnails from here instead of seeking back into the video.
        CREATE TABLE sighting_crops (
            partition_key  text NOT NULL REFERENCES videos (partition_key) ON DELETE CASCADE,
            frame_index    integer NOT NULL,
            x1 real NOT NULL, y1 real NOT NULL, x2 real NOT NULL, y2 real NOT NULL,
            jpeg           bytea NOT NULL
        );
        CREATE INDEX sighting_crops_video ON sighting_crops (partition_key);
        """,
    ),
    (
        13,
        "live cameras: each camera's recording state and the gaps in its recording",
        """
        -- One row per camera that `reelgraph record` pulls; it refreshes the row every few seconds, so a row
        -- whose updated_at is old belongs to a recorder that is no longer running.
        CREATE TABLE cameras (
            name              text PRIMARY KEY,
            url               text NOT NULL,          -- credentials masked
            segment_seconds   integer NOT NULL,
            state             text NOT NULL CHECK (state IN ('connecting', 'recording', 'reconnecting', 'stopped')),
            clock             text,                   -- where segment times come from: stream or receive
            last_packet_at    timestamptz,
            last_segment_at   timestamptz,            -- when the last segment was published
            last_segment_key  text,
            last_error        text,
            started_at        timestamptz NOT NULL DEFAULT now(),
            updated_at        timestamptz NOT NULL DEFAULT now(),
            alerted_at        timestamptz             -- the camera-silence sensor's one alert per outage
        );

        -- Spans with no recording: from the last packet before a drop (or before the recorder stopped) to the
        -- first packet after it. An open gap (ended_at NULL) is still going on.
        CREATE TABLE camera_gaps (
            camera      text NOT NULL REFERENCES cameras (name) ON DELETE CASCADE,
            started_at  timestamptz NOT NULL,
            ended_at    timestamptz CHECK (ended_at >= started_at),
            reason      text NOT NULL,
            PRIMARY KEY (camera, started_at)
        );

        -- A camera segment's span to its boundary, as the recorder planned it: one that ends early is partial.
        ALTER TABLE videos ADD COLUMN planned_s double precision;
        """,
    ),
    (
        14,
        "store identity",
        """
        -- A name for this store, made once: two processes compare it to know they read the same database,
        -- whatever address each reaches it by (the review service's health names it to `reelgraph search`).
        CREATE TABLE store_identity (
            id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            created_at  timestamptz NOT NULL DEFAULT now(),
            only_one    boolean NOT NULL DEFAULT true UNIQUE CHECK (only_one)
        );
        INSERT INTO store_identity DEFAULT VALUES;
        """,
    ),
    (
        15,
        "an audit record of each erasure",
        """
        -- What `reelgraph forget` removed and when: counts, cameras and the span of recording times, never an
        -- object key, a file name or any fact about what the footage showed.
        CREATE TABLE erasures (
            id                 bigserial PRIMARY KEY,
            erased_at          timestamptz NOT NULL DEFAULT now(),
            asked_for          text NOT NULL,  -- 'videos' or 'camera and time range'
            videos             integer NOT NULL,
            cameras            text[] NOT NULL,
            recorded_from      timestamptz,
            recorded_until     timestamptz,
            footage_bytes      bigint NOT NULL,
            rows_removed       jsonb NOT NULL
        );
        """,
    ),
    (
        16,
        "where each video's footage is: hot, cold or expired",
        """
        -- Retention moves footage to a colder tier and later removes it; the row and its facts stay (on their own
        -- clock). `footage_at` is when the footage last changed tier; `storage_class` the S3 class last seen.
        ALTER TABLE videos ADD COLUMN footage text NOT NULL DEFAULT 'hot'
                               CHECK (footage IN ('hot', 'cold', 'expired')),
                           ADD COLUMN footage_at timestamptz,
                           ADD COLUMN storage_class text;
        CREATE INDEX videos_footage_age ON videos (footage, (coalesce(recorded_at, last_modified)));

        -- A recorder pauses a camera while the disk is below its free-space floor.
        ALTER TABLE cameras DROP CONSTRAINT cameras_state_check;
        ALTER TABLE cameras ADD CONSTRAINT cameras_state_check
            CHECK (state IN ('connecting', 'recording', 'reconnecting', 'paused', 'stopped'));
        """,
    ),
    (
        17,
        "counting: crossings of lines and visits to zones",
        """
        -- What counting questions are answered from: each crossing of a counting line (which way), and each stay
        -- of a track in a zone (from, to), in seconds into the video; absolute times are the video's recording
        -- time plus these. Recomputed from stored tracks by the summaries stage when the zones file changes.
        CREATE TABLE counting_events (
            partition_key  text NOT NULL REFERENCES videos (partition_key) ON DELETE CASCADE,
            kind           text NOT NULL CHECK (kind IN ('crossing', 'visit')),
            name           text NOT NULL,  -- the line or the zone
            track_id       integer NOT NULL,
            class_name     text NOT NULL,
            start_t        double precision NOT NULL,
            end_t          double precision NOT NULL,  -- a crossing's moment again
            direction      text CHECK (direction IN ('in', 'out')),  -- crossings only
            PRIMARY KEY (partition_key, kind, name, track_id, start_t)
        );
        CREATE INDEX counting_events_name ON counting_events (name, kind);
        """,
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]


def current_version(conn: psycopg.Connection) -> int:
    exists = conn.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(conn: psycopg.Connection, up_to: int | None = None) -> list[int]:
    """Bring the schema to ``up_to`` (default LATEST_VERSION); returns the versions applied now (empty when
    up to date). ``conn`` must have no transaction open: each migration commits on its own."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("migrate needs a connection with no transaction open: each migration commits on its own")
    target = LATEST_VERSION if up_to is None else up_to
    _take_migration_lock(conn)
    try:
        with conn.transaction():
            _limit_lock_waits(conn)
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       description text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        applied: list[int] = []
        for version, description, sql in MIGRATIONS:
            if version in done or version > target:
                continue
            log.info("applying schema migration %d: %s", version, description)
            try:
                with conn.transaction():
                    _limit_lock_waits(conn)
                    vector_index.use_build_settings(conn)  # the index builds of a migration as a rebuild's
                    conn.execute(sql)
                    conn.execute("INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                                 (version, description))
            except psycopg.errors.LockNotAvailable as exc:
                raise MigrationError(_blocked_message(conn, version, description, sql)) from exc
            applied.append(version)
        return applied
    finally:
        _release_migration_lock(conn)


def _limit_lock_waits(conn: psycopg.Connection) -> None:
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{max(1, round(LOCK_TIMEOUT_S * 1000))}ms",))


def _take_migration_lock(conn: psycopg.Connection) -> None:
    """Wait, saying for whom, while another process applies migrations; give up after MIGRATION_WAIT_S."""
    waiting_since = time.monotonic()
    reported_at = None
    while True:
        waited = time.monotonic() - waiting_since
        try:
            with conn.transaction():
                # the first try does not wait; then rounds of a few seconds, so that a wait is reported
                wait_s = 0 if reported_at is None else min(5.0, max(0.1, MIGRATION_WAIT_S - waited))
                conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{round(wait_s * 1000)}ms",))
                if wait_s == 0:
                    if conn.execute("SELECT pg_try_advisory_lock(%s)", (_MIGRATION_LOCK,)).fetchone()[0]:
                        return
                else:
                    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
                    return
        except psycopg.errors.LockNotAvailable:
            pass
        holder_pid, holder = _migration_lock_holder(conn)
        waited = time.monotonic() - waiting_since
        if waited >= MIGRATION_WAIT_S:
            raise MigrationError(
                f"{holder} has been applying schema migrations for over {MIGRATION_WAIT_S:.0f} s (an index build "
                f"over many rows takes minutes): let it finish and start this process again, or end that session "
                f"(SELECT pg_terminate_backend({holder_pid or 'pid'})) and retry")
        if reported_at is None or time.monotonic() - reported_at >= WAIT_REPORT_S:
            log.warning("process %d waits for %s to finish applying schema migrations (%.0f s so far; gives up "
                        "after %.0f s)", os.getpid(), holder, waited, MIGRATION_WAIT_S)
            reported_at = time.monotonic()


def _migration_lock_holder(conn: psycopg.Connection) -> tuple[int | None, str]:
    """Who holds the migration lock: its session's pid, and in words its pid, program and what it runs."""
    with conn.transaction():
        row = conn.execute(
            """SELECT l.pid, a.application_name, a.state, a.query
                 FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                  AND l.classid::bigint = %s AND l.objid::bigint = %s
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
            (_MIGRATION_LOCK >> 32, _MIGRATION_LOCK & 0xFFFF_FFFF)).fetchone()
    if row is None:
        return None, "another process"
    pid, application, state, query = row
    return pid, f"the session of pid {pid} ({_session(application, state, query)})"


def _blocked_message(conn: psycopg.Connection, version: int, description: str, sql: str) -> str:
    """Why migration ``version`` could not have its tables: the sessions holding them, as far as still seen."""
    with conn.transaction():
        rows = conn.execute(
            """SELECT DISTINCT ON (l.pid, c.relname) l.pid, c.relname, l.mode, a.application_name, a.state, a.query,
                      extract(epoch FROM now() - a.xact_start)
                 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                 LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.granted AND l.pid <> pg_backend_pid()
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                ORDER BY l.pid, c.relname""").fetchall()
    holders = [row for row in rows if re.search(rf"\b{re.escape(row[1])}\b", sql)]
    what = f"schema migration {version} ({description})"
    if not holders:
        return (f"{what} waited over {LOCK_TIMEOUT_S:g} s for a lock on its tables, held by another session that "
                f"has let go since; retry")
    pid, table, mode, application, state, query, held_s = holders[0]
    since = f", in its transaction for {held_s:.0f} s" if held_s is not None else ""
    others = f" (and {len(holders) - 1} more)" if len(holders) > 1 else ""
    return (f"{what} waits on a lock held by pid {pid} on table {table} ({mode}; "
            f"{_session(application, state, query)}{since}){others}; stop that session "
            f"(SELECT pg_terminate_backend({pid})) or retry once it is done")


def _session(application: str | None, state: str | None, query: str | None) -> str:
    words = " ".join((query or "").split())
    return f"{application or 'unnamed client'}, {state or 'state unknown'}: {words[:160] or 'no query'}"


def _release_migration_lock(conn: psycopg.Connection) -> None:
    if conn.closed:
        return  # the server let go of it with the session
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    except psycopg.Error:
        log.debug("releasing the migration lock failed; it goes with the session", exc_info=True)
