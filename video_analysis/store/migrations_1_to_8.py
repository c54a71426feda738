"""Migrations 1 to 8, their SQL only: the pipeline's tables and their first revisions (schema.py applies them)."""

from __future__ import annotations

from video_analysis.store import vector_index

# (version, description, SQL), in version order.
MIGRATIONS_1_TO_8: list[tuple[int, str, str]] = [
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
]
