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
    (
        "0300_analysis",
        """
        -- Screen text of the key frames the analysis loop read (one row per key frame).
        CREATE TABLE frame_text (
            frame_id    INTEGER PRIMARY KEY REFERENCES frames(id) ON DELETE CASCADE,
            text        TEXT NOT NULL DEFAULT '',
            words       TEXT NOT NULL DEFAULT '[]',   -- JSON [{t, x, y, w, h, c}] in window px
            ocr_ms      REAL,                          -- wall time of the OCR call
            reason      TEXT                           -- why it is a key frame: start|switch|change|cadence
        );
        -- Full-text index over screen text, app and window title; rowid = frames.id.
        CREATE VIRTUAL TABLE frame_fts USING fts5(
            text, app, title, tokenize = 'unicode61 remove_diacritics 2'
        );
        -- Where the analysis stands in each chunk, so a restart neither repeats nor skips.
        CREATE TABLE analysis_progress (
            chunk_id    INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
            last_pts    REAL,                 -- last decoded pts (seconds) fully handled
            done        INTEGER NOT NULL DEFAULT 0,
            frames      INTEGER NOT NULL DEFAULT 0,   -- decoded frames handled
            keyframes   INTEGER NOT NULL DEFAULT 0,
            key_ts      REAL,                 -- sampler state at the last key frame
            key_app     TEXT,
            key_title   TEXT,
            key_thumb   BLOB,
            updated_ts  REAL
        );
        CREATE TABLE observations (
            id          INTEGER PRIMARY KEY,
            start_ts    REAL NOT NULL,
            end_ts      REAL NOT NULL,
            status      TEXT NOT NULL DEFAULT 'pending',  -- pending | done | failed
            attempts    INTEGER NOT NULL DEFAULT 0,
            next_try_ts REAL,
            reasoner    TEXT,
            model       TEXT,
            summary     TEXT,
            activities  TEXT,                 -- JSON [str]
            task        TEXT,                 -- JSON {verdict, category, title, description}
            error       TEXT,
            created_ts  REAL NOT NULL,
            done_ts     REAL,
            request_ids TEXT NOT NULL DEFAULT '[]'    -- JSON [reason_log.id]
        );
        -- FTS5 has no foreign keys: drop a frame's text row with the frame (cascades fire it).
        CREATE TRIGGER frames_fts_delete AFTER DELETE ON frames BEGIN
            DELETE FROM frame_fts WHERE rowid = old.id;
        END;
        CREATE UNIQUE INDEX observations_start ON observations(start_ts);
        CREATE INDEX observations_status ON observations(status, next_try_ts);
        """,
    ),
    (
        "0400_clips",
        """
        CREATE TABLE clips (
            id          INTEGER PRIMARY KEY,
            path        TEXT NOT NULL,            -- absolute path of the MP4
            sidecar     TEXT NOT NULL,            -- the JSON sidecar, whole
            created_ts  REAL NOT NULL,
            backend     TEXT NOT NULL,            -- diffusers | comfyui
            model       TEXT,                     -- preset name, folder or workflow
            family      TEXT,
            prompt      TEXT NOT NULL,
            negative    TEXT,
            seed        INTEGER,
            frames      INTEGER,
            width       INTEGER,
            height      INTEGER,
            fps         REAL,
            steps       INTEGER,
            guidance    REAL,
            device      TEXT,
            peak_bytes  INTEGER,
            seconds     REAL                      -- wall time of the whole generation
        );
        CREATE INDEX clips_created ON clips(created_ts);
        """,
    ),
    (
        "0310_vectors",
        """
        -- Embedding models that made vectors; the active one serves semantic search. Each has
        -- a sqlite-vec table vec_m<id> (bit codes for the coarse kNN), created by
        -- store/vectors.py because its width depends on the model and vec0 needs the extension.
        CREATE TABLE vec_models (
            id          INTEGER PRIMARY KEY,
            name        TEXT NOT NULL UNIQUE,
            dim         INTEGER NOT NULL,
            created_ts  REAL NOT NULL,
            active      INTEGER NOT NULL DEFAULT 0
        );
        -- One row per distinct text block per model (a block seen on many key frames is
        -- embedded once); the vector is int8, L2-normalised and scaled, for the exact rerank.
        CREATE TABLE vec_items (
            id          INTEGER PRIMARY KEY,
            model_id    INTEGER NOT NULL REFERENCES vec_models(id) ON DELETE CASCADE,
            hash        INTEGER NOT NULL,             -- first 8 bytes of blake2b of the text
            vector      BLOB NOT NULL
        );
        CREATE UNIQUE INDEX vec_items_hash ON vec_items(model_id, hash);
        -- Which key frame shows which block: -1 is the window title, else the block's index
        -- in the frame's text (analyze/embed.py split_blocks).
        CREATE TABLE vec_frames (
            frame_id    INTEGER NOT NULL REFERENCES frames(id) ON DELETE CASCADE,
            item_id     INTEGER NOT NULL REFERENCES vec_items(id) ON DELETE CASCADE,
            block       INTEGER NOT NULL,
            PRIMARY KEY (frame_id, item_id)
        ) WITHOUT ROWID;
        CREATE INDEX vec_frames_item ON vec_frames(item_id);
        -- Key frames embedded, and by which model (a frame with no text has no vec_frames row).
        CREATE TABLE vec_done (
            frame_id    INTEGER PRIMARY KEY REFERENCES frames(id) ON DELETE CASCADE,
            model_id    INTEGER NOT NULL
        );
        -- Deleting frames needs no extension: the cascades drop the blocks no frame shows any
        -- more, and their ids wait here until the vec0 rows are purged (same transaction where
        -- the deleting code loads sqlite-vec, else at the next vector operation).
        CREATE TABLE vec_trash (
            model_id    INTEGER NOT NULL,
            item_id     INTEGER NOT NULL
        );
        CREATE TRIGGER vec_frames_gone AFTER DELETE ON vec_frames
        WHEN NOT EXISTS (SELECT 1 FROM vec_frames WHERE item_id = old.item_id) BEGIN
            DELETE FROM vec_items WHERE id = old.item_id;
        END;
        CREATE TRIGGER vec_items_gone AFTER DELETE ON vec_items BEGIN
            INSERT INTO vec_trash(model_id, item_id) VALUES (old.model_id, old.id);
        END;
        """,
    ),
    (
        "0311_vector_codes",
        """
        -- The 1-bit codes the coarse kNN scans with sqlite-vec's vec_distance_hamming, in a
        -- narrow table of their own (~40 B a row: 30 ms over 125k blocks, where reading them
        -- out of vec_items' wide rows took 500 ms and a vec0 bit[256] kNN 110 ms at k = 256,
        -- 750 ms at k = 2048). No vec0 table: deleting frames is plain cascades, needs no
        -- extension, and nothing waits in a trash queue.
        CREATE TABLE vec_codes (
            item_id     INTEGER PRIMARY KEY REFERENCES vec_items(id) ON DELETE CASCADE,
            model_id    INTEGER NOT NULL,
            bits        BLOB NOT NULL
        );
        DROP TRIGGER vec_items_gone;
        DROP TABLE vec_trash;
        """,
    ),
    (
        "0600_audit",
        """
        -- Every read of the screen history through the API, the UI or MCP (store/audit.py).
        CREATE TABLE audit (
            id          INTEGER PRIMARY KEY,
            ts          REAL NOT NULL,
            channel     TEXT NOT NULL,            -- api | ui | mcp
            client      TEXT NOT NULL,            -- token name, or mcp:<session>
            scope       TEXT NOT NULL,            -- full | read | search | mcp limits
            action      TEXT NOT NULL,            -- frame | chunk | text | search | answer ...
            target      TEXT NOT NULL,            -- path + query, or tool + arguments
            status      INTEGER NOT NULL
        );
        CREATE INDEX audit_ts ON audit(ts);
        -- Extra API tokens with a scope; only the SHA-256 of a token is stored.
        CREATE TABLE api_tokens (
            name        TEXT PRIMARY KEY,
            scope       TEXT NOT NULL,            -- full | read | search
            hash        TEXT NOT NULL UNIQUE,
            created     REAL NOT NULL,
            last_used   REAL
        );
        """,
    ),
    (
        "0110_frame_state",
        """
        -- What the screen showed when there was no picture to keep (record/recorder.py):
        -- NULL: a picture (encoded or unchanged); 'blank': one colour while a window was on
        -- screen (a blind capture, a screen saver), not encoded; 'locked': the backend said
        -- the screen is locked. Such rows point at no chunk.
        ALTER TABLE frames ADD COLUMN state TEXT;
        """,
    ),
]
