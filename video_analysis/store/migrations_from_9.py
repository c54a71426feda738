"""Migrations 9 on, their SQL only: search, cameras, erasure, footage tiers, counting; append new ones here."""

from __future__ import annotations

# (version, description, SQL), in version order.
MIGRATIONS_FROM_9: list[tuple[int, str, str]] = [
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
    (
        18,
        "counting: a row per track and hourly tallies (counts over months read hours); incident scenes",
        """
        -- A row per track beside the crossings and visits (name ''), marked when it is likely the track before it
        -- seen again; and per video, hour, kind, name, class and direction how many rows began in that hour.
        ALTER TABLE counting_events DROP CONSTRAINT counting_events_kind_check;
        ALTER TABLE counting_events ADD CONSTRAINT counting_events_kind_check
            CHECK (kind IN ('crossing', 'visit', 'track'));
        ALTER TABLE counting_events ADD COLUMN likely_repeat boolean NOT NULL DEFAULT false;
        CREATE TABLE counting_hours (
            partition_key  text NOT NULL REFERENCES videos (partition_key) ON DELETE CASCADE,
            hour           timestamptz NOT NULL,  -- the UTC hour the counted moments began in
            kind           text NOT NULL,
            name           text NOT NULL,
            class_name     text NOT NULL,
            direction      text NOT NULL,  -- 'in' or 'out' for crossings, '' otherwise
            n              integer NOT NULL,
            repeats        integer NOT NULL,  -- of n, tracks likely the one before seen again
            PRIMARY KEY (partition_key, hour, kind, name, class_name, direction)
        );
        CREATE INDEX counting_hours_by_hour ON counting_hours (kind, class_name, name, hour);
        -- where counts over a time range find their videos
        CREATE INDEX videos_moment ON videos ((coalesce(recorded_at, last_modified))) WHERE superseded_by IS NULL;
        -- each incident's scene: the frame at its moment with its tracks' boxes and the zones and lines drawn
        CREATE TABLE scene_frames (
            partition_key   text NOT NULL REFERENCES videos (partition_key) ON DELETE CASCADE,
            scene           integer NOT NULL,  -- the incident's place in the summary's list
            incident_type   text NOT NULL,
            start_t         double precision NOT NULL,  -- the incident's start
            track_ids       integer[] NOT NULL,  -- the incident's tracks (two of a type may start together)
            t               double precision NOT NULL,  -- the frame's moment
            thumbnail_jpeg  bytea NOT NULL,
            PRIMARY KEY (partition_key, scene)
        );
        -- a camera's day counted: people, line crossings, zone entries and stays, its busiest hour and peak
        ALTER TABLE camera_daily_reports ADD COLUMN counts jsonb NOT NULL DEFAULT '{}';

        -- the counting facts of the videos counted before this migration (the SQL of store/counting.py as it was
        -- at this version: a migration keeps its own copy)
        INSERT INTO counting_events (partition_key, kind, name, track_id, class_name, start_t, end_t, likely_repeat)
        SELECT partition_key, 'track', '', track_id, class_name, first_t, last_t, likely_repeat FROM (
        SELECT partition_key, track_id, class_name, first_t, last_t,
               coalesce(gap BETWEEN -1 AND 3 AND (coalesce(alike, false) OR coalesce(near, false)), false)
                   AS likely_repeat
        FROM (
            SELECT t.partition_key, t.track_id, t.class_name, t.first_t, t.last_t,
                   t.first_t - lag(t.last_t) OVER w AS gap,
                   lag(a.upper_color) OVER w IS NOT NULL AND a.upper_color = lag(a.upper_color) OVER w
                       AND a.lower_color IS NOT DISTINCT FROM lag(a.lower_color) OVER w AS alike,
                   sqrt(((t.path -> 0 ->> 1)::float8 - (lag(t.path -> -1 ->> 1) OVER w)::float8) ^ 2
                        + ((t.path -> 0 ->> 2)::float8 - (lag(t.path -> -1 ->> 2) OVER w)::float8) ^ 2)
                       <= greatest(t.best_y2 - t.best_y1, lag(t.best_y2 - t.best_y1) OVER w) AS near
            FROM tracks t LEFT JOIN track_attributes a USING (partition_key, track_id)
            WHERE t.partition_key IN (SELECT partition_key FROM summaries)
            WINDOW w AS (PARTITION BY t.partition_key, t.class_name ORDER BY t.first_t, t.track_id)
        ) rows
        ) facts;
        UPDATE counting_events e SET likely_repeat = true
        WHERE kind = 'visit' AND EXISTS (SELECT 1 FROM counting_events b WHERE b.partition_key = e.partition_key
                                         AND b.kind = 'visit' AND b.name = e.name AND b.track_id = e.track_id
                                         AND b.start_t < e.start_t);
        INSERT INTO counting_hours (partition_key, hour, kind, name, class_name, direction, n, repeats)
        SELECT e.partition_key,
               date_trunc('hour', coalesce(v.recorded_at, v.last_modified) + make_interval(secs => e.start_t), 'UTC'),
               e.kind, e.name, e.class_name, coalesce(e.direction, ''), count(*),
               count(*) FILTER (WHERE e.likely_repeat)
        FROM counting_events e JOIN videos v USING (partition_key)
        GROUP BY 1, 2, 3, 4, 5, 6;
        """,
    ),
]
