"""Named, append-only migrations. Never edit a migration that has shipped: add a new one.

Each area appends its own entries; names are applied once, in list order, and recorded in
the ``migrations`` table.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_core",
        """
        CREATE TABLE chunks (
            id          INTEGER PRIMARY KEY,
            path        TEXT NOT NULL UNIQUE,     -- relative to the data dir
            device_id   TEXT NOT NULL,
            start_ts    REAL NOT NULL,            -- unix seconds of the first frame
            end_ts      REAL,                     -- unix seconds of the last frame seen
            codec       TEXT,                     -- h264 | hevc
            encoder     TEXT,                     -- libx264, hevc_nvenc, ...
            width       INTEGER,                  -- canvas size
            height      INTEGER,
            frames      INTEGER NOT NULL DEFAULT 0,   -- encoded frames
            bytes       INTEGER NOT NULL DEFAULT 0,
            state       TEXT NOT NULL DEFAULT 'recording'
                        -- recording | closed | recovered | damaged
        );
        CREATE INDEX chunks_start ON chunks(start_ts);
        CREATE TABLE frames (
            id          INTEGER PRIMARY KEY,
            chunk_id    INTEGER REFERENCES chunks(id) ON DELETE CASCADE,
            ts          REAL NOT NULL,            -- unix seconds when seen
            pts         REAL,                     -- seconds into the chunk of the encoded
                                                  -- frame that shows this moment
            app         TEXT,
            title       TEXT,
            x INTEGER, y INTEGER, w INTEGER, h INTEGER,  -- window rectangle inside the canvas
            display     TEXT,
            changed     INTEGER NOT NULL DEFAULT 1,  -- 0: identical to the previous, not encoded
            excluded    INTEGER NOT NULL DEFAULT 0   -- 1: privacy exclusion, pixels withheld
        );
        CREATE INDEX frames_ts ON frames(ts);
        CREATE INDEX frames_chunk ON frames(chunk_id, ts);
        CREATE TABLE kv (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    ),
    (
        "0200_reason_log",
        """
        CREATE TABLE reason_log (
            id          INTEGER PRIMARY KEY,
            ts          REAL NOT NULL,            -- unix seconds when the attempt ended
            reasoner    TEXT NOT NULL,            -- anthropic | openai | gemini | offline
            model       TEXT,
            base_url    TEXT,
            task        TEXT,                     -- observe | ask
            request     TEXT,                     -- JSON; images as {sha256, media_type, bytes}
            response    TEXT,                     -- raw answer text
            usage       TEXT,                     -- JSON tokens in/out when the endpoint says
            status      TEXT NOT NULL,            -- ok | error | error:<http status>
            error       TEXT,
            duration_ms REAL
        );
        CREATE INDEX reason_log_ts ON reason_log(ts);
        """,
    ),
    (
        "0500_serve_jobs_actions",
        """
        -- Queued generation jobs of the API/web UI, kept so past jobs can be listed.
        CREATE TABLE jobs (
            id          INTEGER PRIMARY KEY,
            kind        TEXT NOT NULL DEFAULT 'generate',
            params      TEXT NOT NULL,            -- JSON arguments of the call
            state       TEXT NOT NULL DEFAULT 'queued',  -- queued | running | done | failed
            progress    TEXT,                     -- JSON: last on_progress event
            result      TEXT,                     -- JSON: what the call returned
            error       TEXT,                     -- JSON: {type, message, hint}
            pid         INTEGER,                  -- process that owns the queue
            created_ts  REAL NOT NULL,
            started_ts  REAL,
            finished_ts REAL
        );
        CREATE INDEX jobs_created ON jobs(created_ts);
        -- Every hand-off of a suggested task to the configured agent command.
        CREATE TABLE actions (
            id             INTEGER PRIMARY KEY,
            ts             REAL NOT NULL,
            observation_id INTEGER NOT NULL,      -- no FK: the observation may be deleted later
            command        TEXT NOT NULL,
            task           TEXT NOT NULL,         -- the text handed to the agent
            state          TEXT NOT NULL DEFAULT 'running',  -- running | done | failed
            exit_code      INTEGER,
            output_tail    TEXT,
            finished_ts    REAL
        );
        """,
    ),
]
