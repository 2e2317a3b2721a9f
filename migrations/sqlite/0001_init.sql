-- fctf schema, version 0001 (SQLite). Keep in step with migrations/postgres/0001_init.sql.
--
-- Conventions (see src/store/mod.rs): integers are INTEGER (64-bit; sqlx `Any` decodes i64), booleans are
-- INTEGER 0/1 with a CHECK (SQLite BOOLEAN columns cannot be read through `Any`), timestamps are
-- Unix seconds, JSON documents are TEXT. Unique constraints are named unique indexes so that the
-- store reports the same constraint name on both backends.

CREATE TABLE brackets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    type        TEXT NOT NULL DEFAULT 'teams' CHECK (type IN ('users', 'teams'))
);

CREATE TABLE teams (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    oauth_id    INTEGER,
    name        TEXT NOT NULL,
    email       TEXT,
    password    TEXT,
    secret      TEXT,
    website     TEXT,
    affiliation TEXT,
    country     TEXT,
    bracket_id  INTEGER REFERENCES brackets(id) ON DELETE SET NULL,
    hidden      INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)),
    banned      INTEGER NOT NULL DEFAULT 0 CHECK (banned IN (0, 1)),
    captain_id  INTEGER REFERENCES users(id) ON DELETE SET NULL,
    invite_code TEXT,
    created     INTEGER NOT NULL
);
CREATE UNIQUE INDEX teams_name_uq ON teams (lower(name));
CREATE UNIQUE INDEX teams_email_uq ON teams (lower(email));
CREATE UNIQUE INDEX teams_oauth_id_uq ON teams (oauth_id);
CREATE UNIQUE INDEX teams_invite_code_uq ON teams (invite_code);

CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    oauth_id        INTEGER,
    name            TEXT NOT NULL,
    email           TEXT,
    password        TEXT,
    type            TEXT NOT NULL DEFAULT 'user' CHECK (type IN ('user', 'admin', 'jury', 'challenge_writer')),
    secret          TEXT,
    website         TEXT,
    affiliation     TEXT,
    country         TEXT,
    language        TEXT,
    bracket_id      INTEGER REFERENCES brackets(id) ON DELETE SET NULL,
    team_id         INTEGER REFERENCES teams(id) ON DELETE SET NULL,
    hidden          INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)),
    banned          INTEGER NOT NULL DEFAULT 0 CHECK (banned IN (0, 1)),
    verified        INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
    change_password INTEGER NOT NULL DEFAULT 0 CHECK (change_password IN (0, 1)),
    created         INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_name_uq ON users (lower(name));
CREATE UNIQUE INDEX users_email_uq ON users (lower(email));
CREATE UNIQUE INDEX users_oauth_id_uq ON users (oauth_id);
CREATE INDEX users_team_idx ON users (team_id);


-- Custom registration fields and their values.
CREATE TABLE fields (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL DEFAULT 'user' CHECK (type IN ('user', 'team')),
    field_type  TEXT NOT NULL DEFAULT 'text',
    description TEXT NOT NULL DEFAULT '',
    required    INTEGER NOT NULL DEFAULT 0 CHECK (required IN (0, 1)),
    public      INTEGER NOT NULL DEFAULT 0 CHECK (public IN (0, 1)),
    editable    INTEGER NOT NULL DEFAULT 0 CHECK (editable IN (0, 1))
);

CREATE TABLE field_entries (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    field_id INTEGER NOT NULL REFERENCES fields(id) ON DELETE CASCADE,
    user_id  INTEGER REFERENCES users(id) ON DELETE CASCADE,
    team_id  INTEGER REFERENCES teams(id) ON DELETE CASCADE,
    value    TEXT NOT NULL,
    CHECK ((user_id IS NULL) <> (team_id IS NULL))
);
CREATE UNIQUE INDEX field_entries_user_uq ON field_entries (field_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX field_entries_team_uq ON field_entries (field_id, team_id) WHERE team_id IS NOT NULL;

-- Player sessions: at most one active (not revoked) session per user.
CREATE TABLE sessions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_id   TEXT NOT NULL,
    ip         TEXT,
    user_agent TEXT,
    created    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE UNIQUE INDEX sessions_token_id_uq ON sessions (token_id);
CREATE UNIQUE INDEX sessions_one_active_uq ON sessions (user_id) WHERE revoked_at IS NULL;

-- API tokens; only the SHA-256 digest of the token is stored.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    type        TEXT NOT NULL DEFAULT 'user',
    digest      TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created     INTEGER NOT NULL,
    expires_at  INTEGER
);
CREATE UNIQUE INDEX api_tokens_digest_uq ON api_tokens (digest);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- IP addresses seen per user (refreshed on login).
CREATE TABLE tracking (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ip      TEXT NOT NULL,
    date    INTEGER NOT NULL
);
CREATE UNIQUE INDEX tracking_user_ip_uq ON tracking (user_id, ip);

CREATE TABLE config (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    key   TEXT NOT NULL,
    value TEXT
);
CREATE UNIQUE INDEX config_key_uq ON config (key);

CREATE TABLE challenges (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    attribution         TEXT NOT NULL DEFAULT '',
    connection_info     TEXT,
    next_id             INTEGER REFERENCES challenges(id) ON DELETE SET NULL,
    max_attempts        INTEGER NOT NULL DEFAULT 0,
    value               INTEGER NOT NULL DEFAULT 0,
    category            TEXT NOT NULL DEFAULT '',
    type                TEXT NOT NULL DEFAULT 'standard',
    state               TEXT NOT NULL DEFAULT 'visible' CHECK (state IN ('visible', 'hidden', 'locked')),
    requirements        TEXT,
    logic               TEXT NOT NULL DEFAULT 'any',
    position            INTEGER NOT NULL DEFAULT 0,
    scheduled_at        INTEGER,
    -- Decaying value (dynamic challenges): function is static, linear or logarithmic.
    initial             INTEGER,
    minimum             INTEGER,
    decay               INTEGER,
    function            TEXT NOT NULL DEFAULT 'static',
    -- fctf additions.
    difficulty          INTEGER,
    cooldown            INTEGER NOT NULL DEFAULT 0,
    time_limit_minutes  INTEGER,
    require_deploy      INTEGER NOT NULL DEFAULT 0 CHECK (require_deploy IN (0, 1)),
    image               TEXT,
    deploy_command      TEXT,
    exposed_port        INTEGER,
    connection_protocol TEXT NOT NULL DEFAULT 'http' CHECK (connection_protocol IN ('http', 'tcp')),
    cpu_request         INTEGER,
    cpu_limit           INTEGER,
    memory_request      INTEGER,
    memory_limit        INTEGER,
    harden_container    INTEGER NOT NULL DEFAULT 1 CHECK (harden_container IN (0, 1)),
    use_gvisor          INTEGER NOT NULL DEFAULT 0 CHECK (use_gvisor IN (0, 1)),
    shared_instance     INTEGER NOT NULL DEFAULT 0 CHECK (shared_instance IN (0, 1)),
    max_deploy_count    INTEGER NOT NULL DEFAULT 0,
    deploy_status       TEXT,
    author_id           INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created             INTEGER NOT NULL,
    updated             INTEGER NOT NULL
);
CREATE UNIQUE INDEX challenges_name_uq ON challenges (name);

CREATE TABLE flags (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    challenge_id INTEGER NOT NULL REFERENCES challenges(id) ON DELETE CASCADE,
    type         TEXT NOT NULL DEFAULT 'static',
    content      TEXT NOT NULL,
    data         TEXT
);
CREATE INDEX flags_challenge_idx ON flags (challenge_id);

-- Hints are soft-deleted (deleted_at) so that a hint recreated with the same content by a sync
-- can take over the unlocks of the one it replaces.
CREATE TABLE hints (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    challenge_id INTEGER NOT NULL REFERENCES challenges(id) ON DELETE CASCADE,
    type         TEXT NOT NULL DEFAULT 'standard',
    title        TEXT,
    content      TEXT NOT NULL,
    cost         INTEGER NOT NULL DEFAULT 0,
    requirements TEXT,
    created      INTEGER NOT NULL,
    deleted_at   INTEGER
);
CREATE INDEX hints_challenge_idx ON hints (challenge_id);

CREATE TABLE tags (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    challenge_id INTEGER NOT NULL REFERENCES challenges(id) ON DELETE CASCADE,
    value        TEXT NOT NULL
);
CREATE INDEX tags_challenge_idx ON tags (challenge_id);

CREATE TABLE topics (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    value TEXT NOT NULL
);
CREATE UNIQUE INDEX topics_value_uq ON topics (value);

CREATE TABLE challenge_topics (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    challenge_id INTEGER NOT NULL REFERENCES challenges(id) ON DELETE CASCADE,
    topic_id     INTEGER NOT NULL REFERENCES topics(id) ON DELETE CASCADE
);
CREATE INDEX challenge_topics_challenge_idx ON challenge_topics (challenge_id);

CREATE TABLE solutions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    challenge_id INTEGER NOT NULL REFERENCES challenges(id) ON DELETE CASCADE,
    content      TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL DEFAULT 'hidden' CHECK (state IN ('hidden', 'visible', 'solved'))
);
CREATE UNIQUE INDEX solutions_challenge_uq ON solutions (challenge_id);

CREATE TABLE pages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    title         TEXT NOT NULL DEFAULT '',
    route         TEXT NOT NULL,
    content       TEXT NOT NULL DEFAULT '',
    format        TEXT NOT NULL DEFAULT 'markdown',
    link_target   TEXT,
    draft         INTEGER NOT NULL DEFAULT 0 CHECK (draft IN (0, 1)),
    hidden        INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)),
    auth_required INTEGER NOT NULL DEFAULT 0 CHECK (auth_required IN (0, 1))
);
CREATE UNIQUE INDEX pages_route_uq ON pages (route);

CREATE TABLE files (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    type         TEXT NOT NULL DEFAULT 'standard',
    location     TEXT NOT NULL,
    sha1sum      TEXT,
    size         INTEGER,
    challenge_id INTEGER REFERENCES challenges(id) ON DELETE CASCADE,
    page_id      INTEGER REFERENCES pages(id) ON DELETE CASCADE,
    solution_id  INTEGER REFERENCES solutions(id) ON DELETE CASCADE,
    created      INTEGER NOT NULL
);
CREATE UNIQUE INDEX files_location_uq ON files (location);
CREATE INDEX files_challenge_idx ON files (challenge_id);

-- Every flag submission. A correct one that counts has a row in `solves` with the same id.
CREATE TABLE submissions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    challenge_id INTEGER NOT NULL REFERENCES challenges(id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    team_id      INTEGER REFERENCES teams(id) ON DELETE CASCADE,
    ip           TEXT,
    provided     TEXT NOT NULL DEFAULT '',
    type         TEXT NOT NULL CHECK (type IN ('correct', 'incorrect', 'partial', 'discard', 'ratelimited')),
    date         INTEGER NOT NULL
);
CREATE INDEX submissions_challenge_team_idx ON submissions (challenge_id, team_id, type);
CREATE INDEX submissions_challenge_user_idx ON submissions (challenge_id, user_id, type);
CREATE INDEX submissions_date_idx ON submissions (date);

-- One solve per account and challenge: the team in teams mode (team_id set), the user in users
-- mode (team_id NULL). These two indexes make a duplicate solve impossible.
CREATE TABLE solves (
    id           INTEGER PRIMARY KEY REFERENCES submissions(id) ON DELETE CASCADE,
    challenge_id INTEGER NOT NULL REFERENCES challenges(id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    team_id      INTEGER REFERENCES teams(id) ON DELETE CASCADE,
    date         INTEGER NOT NULL
);
CREATE UNIQUE INDEX solves_team_challenge_uq ON solves (challenge_id, team_id) WHERE team_id IS NOT NULL;
CREATE UNIQUE INDEX solves_user_challenge_uq ON solves (challenge_id, user_id) WHERE team_id IS NULL;
CREATE INDEX solves_team_idx ON solves (team_id);
CREATE INDEX solves_user_idx ON solves (user_id);

CREATE TABLE awards (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER REFERENCES users(id) ON DELETE CASCADE,
    team_id      INTEGER REFERENCES teams(id) ON DELETE CASCADE,
    type         TEXT NOT NULL DEFAULT 'standard',
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    value        INTEGER NOT NULL DEFAULT 0,
    category     TEXT,
    icon         TEXT,
    requirements TEXT,
    date         INTEGER NOT NULL
);
CREATE INDEX awards_team_idx ON awards (team_id);
CREATE INDEX awards_user_idx ON awards (user_id);

-- Hint unlocks, once per account (team in teams mode, user in users mode); the cost is charged
-- as the negative award `award_id` written in the same transaction.
CREATE TABLE unlocks (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    hint_id  INTEGER NOT NULL REFERENCES hints(id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    team_id  INTEGER REFERENCES teams(id) ON DELETE CASCADE,
    award_id INTEGER REFERENCES awards(id) ON DELETE SET NULL,
    type     TEXT NOT NULL DEFAULT 'hints',
    date     INTEGER NOT NULL
);
CREATE UNIQUE INDEX unlocks_team_hint_uq ON unlocks (hint_id, team_id) WHERE team_id IS NOT NULL;
CREATE UNIQUE INDEX unlocks_user_hint_uq ON unlocks (hint_id, user_id) WHERE team_id IS NULL;

CREATE TABLE notifications (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    title   TEXT NOT NULL,
    content TEXT NOT NULL,
    type    TEXT NOT NULL DEFAULT 'alert',
    sound   INTEGER NOT NULL DEFAULT 1 CHECK (sound IN (0, 1)),
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    team_id INTEGER REFERENCES teams(id) ON DELETE CASCADE,
    date    INTEGER NOT NULL
);

CREATE TABLE tickets (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    author_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title           TEXT NOT NULL,
    type            TEXT NOT NULL,
    description     TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'open',
    replier_id      INTEGER REFERENCES users(id) ON DELETE SET NULL,
    replier_message TEXT,
    created         INTEGER NOT NULL,
    updated         INTEGER NOT NULL
);
CREATE INDEX tickets_author_idx ON tickets (author_id);

-- Contestant action logs (1 access challenge, 2 start, 3 correct flag, 4 incorrect flag,
-- 5 unlock hint, 7 stop).
CREATE TABLE action_logs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER REFERENCES users(id) ON DELETE CASCADE,
    team_id       INTEGER REFERENCES teams(id) ON DELETE CASCADE,
    challenge_id  INTEGER REFERENCES challenges(id) ON DELETE SET NULL,
    action_type   INTEGER NOT NULL,
    action_detail TEXT NOT NULL,
    topic_name    TEXT,
    date          INTEGER NOT NULL
);
CREATE INDEX action_logs_team_idx ON action_logs (team_id, date);
CREATE INDEX action_logs_user_idx ON action_logs (user_id, date);

-- Every lifetime of a challenge instance. team_id is not a foreign key: -1 is an admin preview
-- and -2 a shared instance. At most one live instance per (team, challenge).
CREATE TABLE instances (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id      INTEGER NOT NULL,
    challenge_id INTEGER NOT NULL REFERENCES challenges(id) ON DELETE CASCADE,
    user_id      INTEGER REFERENCES users(id) ON DELETE SET NULL,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'deploying', 'running', 'stopping', 'stopped', 'failed')),
    runtime_name TEXT,
    upstream     TEXT,
    flag         TEXT,
    reason       TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    ready_at     INTEGER,
    expires_at   INTEGER,
    stopped_at   INTEGER
);
CREATE UNIQUE INDEX instances_live_uq ON instances (team_id, challenge_id)
    WHERE state IN ('queued', 'deploying', 'running', 'stopping');
CREATE INDEX instances_state_idx ON instances (state);
CREATE INDEX instances_team_challenge_idx ON instances (team_id, challenge_id);

-- Image versions built for a challenge, and the history of builds and deploys.
CREATE TABLE challenge_versions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    challenge_id INTEGER NOT NULL REFERENCES challenges(id) ON DELETE CASCADE,
    image        TEXT NOT NULL,
    exposed_port INTEGER,
    created_by   INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created      INTEGER NOT NULL
);
CREATE INDEX challenge_versions_challenge_idx ON challenge_versions (challenge_id);

CREATE TABLE deploy_history (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    challenge_id  INTEGER NOT NULL REFERENCES challenges(id) ON DELETE CASCADE,
    version_id    INTEGER REFERENCES challenge_versions(id) ON DELETE SET NULL,
    status        TEXT NOT NULL,
    workflow_name TEXT,
    detail        TEXT,
    date          INTEGER NOT NULL
);
CREATE INDEX deploy_history_challenge_idx ON deploy_history (challenge_id, date);

-- Dynamic flag sharing: a team submitted the flag of another team's instance.
CREATE TABLE cheat_events (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    challenge_id       INTEGER NOT NULL REFERENCES challenges(id) ON DELETE CASCADE,
    submitting_team_id INTEGER REFERENCES teams(id) ON DELETE CASCADE,
    submitting_user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    owner_team_id      INTEGER REFERENCES teams(id) ON DELETE CASCADE,
    provided           TEXT NOT NULL,
    ip                 TEXT,
    date               INTEGER NOT NULL
);
CREATE INDEX cheat_events_challenge_idx ON cheat_events (challenge_id, date);

-- Privileged mutations: who did what to which object, with before/after JSON.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_id    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    actor_name  TEXT NOT NULL,
    actor_role  TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT,
    before_json TEXT,
    after_json  TEXT,
    ip          TEXT,
    date        INTEGER NOT NULL
);
CREATE INDEX audit_log_date_idx ON audit_log (date);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id);
