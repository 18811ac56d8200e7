-- Chronos schema, version 1.
-- Follows the original service's schema (users, jobs, job_executions, job_logs with
-- their CHECK constraints) plus what the Rust model adds: time zone, handler, retry
-- backoff, missed-occurrence policy, pause/resume times, a revision for compare-and-set,
-- per-attempt due times and manual runs. Executions and logs are range-partitioned by
-- month; a default partition catches rows no monthly partition covers, so an insert
-- never fails for want of a partition. The queue of the PostgreSQL-only deployment is
-- the table queue_entries.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         varchar(255) NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_lower CHECK (email = lower(btrim(email)) AND length(email) > 0)
);
CREATE UNIQUE INDEX users_email_key ON users (email);

-- jobs.user_id is the owner. It has no foreign key to users: an embedded application
-- owns its jobs without any user rows (the nil owner).
CREATE TABLE jobs (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL,
    name             varchar(255) NOT NULL CHECK (length(btrim(name)) > 0),
    description      varchar(1000),
    job_type         varchar(20) NOT NULL CHECK (job_type IN ('one-time', 'recurring')),
    schedule_type    varchar(20) NOT NULL CHECK (schedule_type IN ('immediate', 'scheduled', 'cron')),
    scheduled_time   timestamptz,
    cron_expression  varchar(255),
    timezone         varchar(64) NOT NULL DEFAULT 'UTC',
    handler          varchar(100) NOT NULL,
    payload          jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(payload) = 'object'),
    timeout_ms       bigint NOT NULL DEFAULT 300000 CHECK (timeout_ms BETWEEN 1000 AND 3600000),
    max_retries      integer NOT NULL DEFAULT 3 CHECK (max_retries BETWEEN 0 AND 10),
    retry_count      integer NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    retry_backoff_ms bigint NOT NULL DEFAULT 60000 CHECK (retry_backoff_ms BETWEEN 0 AND 86400000),
    missed_policy    varchar(16) NOT NULL DEFAULT 'coalesce' CHECK (missed_policy IN ('coalesce', 'run_all', 'skip')),
    status           varchar(20) NOT NULL DEFAULT 'active'
                     CHECK (status IN ('pending', 'active', 'paused', 'completed', 'failed', 'deleted')),
    next_run         timestamptz,
    last_executed_at timestamptz,
    paused_at        timestamptz,
    resumed_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    revision         bigint NOT NULL DEFAULT 0,
    CONSTRAINT jobs_type_matches_schedule CHECK (
        (job_type = 'one-time' AND schedule_type IN ('immediate', 'scheduled'))
        OR (job_type = 'recurring' AND schedule_type = 'cron')),
    CONSTRAINT jobs_scheduled_has_time CHECK (schedule_type <> 'scheduled' OR scheduled_time IS NOT NULL),
    CONSTRAINT jobs_cron_has_expression CHECK (schedule_type <> 'cron' OR cron_expression IS NOT NULL)
);
-- The due-job scan and the safety sync.
CREATE INDEX jobs_due_idx ON jobs (next_run, id) WHERE status = 'active' AND next_run IS NOT NULL;
CREATE INDEX jobs_scheduled_id_idx ON jobs (id) INCLUDE (next_run) WHERE status = 'active' AND next_run IS NOT NULL;
-- The owner's job list, one index per sort order (ties broken by id).
CREATE INDEX jobs_owner_created_idx ON jobs (user_id, created_at, id) WHERE status <> 'deleted';
CREATE INDEX jobs_owner_next_run_idx ON jobs (user_id, next_run, id) WHERE status <> 'deleted';
CREATE INDEX jobs_owner_name_idx ON jobs (user_id, name COLLATE "C", id) WHERE status <> 'deleted';
CREATE INDEX jobs_owner_updated_idx ON jobs (user_id, updated_at, id) WHERE status <> 'deleted';
CREATE INDEX jobs_owner_status_idx ON jobs (user_id, status);
-- The owner's upcoming active jobs.
CREATE INDEX jobs_owner_upcoming_idx ON jobs (user_id, next_run) WHERE status = 'active';

CREATE TABLE job_executions (
    id            uuid NOT NULL,
    job_id        uuid NOT NULL REFERENCES jobs (id),
    user_id       uuid NOT NULL,
    job_name      varchar(255) NOT NULL,
    scheduled_for timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    retry_attempt integer NOT NULL DEFAULT 0 CHECK (retry_attempt >= 0),
    status        varchar(20) NOT NULL
                  CHECK (status IN ('queued', 'running', 'success', 'failed', 'timeout', 'cancelled')),
    execution_time timestamptz,
    finished_at   timestamptz,
    duration_ms   bigint CHECK (duration_ms >= 0),
    output        jsonb,
    error_message text,
    worker        text,
    manual        boolean NOT NULL DEFAULT false,
    manual_run    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE job_executions_default PARTITION OF job_executions DEFAULT;
CREATE INDEX job_executions_id_idx ON job_executions (id);
-- A job's executions, newest first.
CREATE INDEX job_executions_job_idx ON job_executions (job_id, created_at DESC, id DESC);
-- Running attempts of one occurrence (abandoned on re-delivery).
CREATE INDEX job_executions_running_idx ON job_executions (job_id, scheduled_for)
    WHERE status = 'running';
-- What the safety sync re-queues.
CREATE INDEX job_executions_pending_idx ON job_executions (id) WHERE status IN ('queued', 'running');

CREATE TABLE job_logs (
    id           uuid NOT NULL,
    execution_id uuid NOT NULL,
    job_id       uuid NOT NULL,
    user_id      uuid NOT NULL,
    level        varchar(10) NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
    message      text NOT NULL,
    metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
    "timestamp"  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, "timestamp")
) PARTITION BY RANGE ("timestamp");
CREATE TABLE job_logs_default PARTITION OF job_logs DEFAULT;
CREATE INDEX job_logs_execution_idx ON job_logs (execution_id, "timestamp", id);

-- The queue of a PostgreSQL-only deployment: one row per occurrence key. A waiting
-- entry has no lease; a leased one has a fencing token and an expiry.
CREATE TABLE queue_entries (
    job_id        uuid NOT NULL,
    scheduled_for timestamptz NOT NULL,
    manual        uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    run_at        timestamptz NOT NULL,
    attempt       integer NOT NULL DEFAULT 0,
    execution_id  uuid,
    lease_token   bigint,
    leased_until  timestamptz,
    worker        text,
    deliveries    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, scheduled_for, manual),
    CONSTRAINT queue_lease_complete CHECK ((lease_token IS NULL) = (leased_until IS NULL))
);
CREATE INDEX queue_entries_ready_idx ON queue_entries (run_at, job_id, scheduled_for, manual)
    WHERE lease_token IS NULL;
CREATE INDEX queue_entries_leased_idx ON queue_entries (leased_until) WHERE lease_token IS NOT NULL;
CREATE SEQUENCE queue_lease_token_seq;

-- The original service's views.
CREATE VIEW jobs_due_for_execution AS
    SELECT id, user_id, name, job_type, schedule_type, cron_expression, timezone, next_run
    FROM jobs
    WHERE status = 'active' AND next_run IS NOT NULL AND next_run <= now();

CREATE VIEW job_execution_stats AS
    SELECT j.id AS job_id,
           j.user_id,
           j.name,
           count(e.id) AS total_executions,
           count(e.id) FILTER (WHERE e.status = 'success') AS successful,
           count(e.id) FILTER (WHERE e.status IN ('failed', 'timeout')) AS failed,
           avg(e.duration_ms) AS avg_duration_ms,
           max(e.execution_time) AS last_execution_time
    FROM jobs j
    LEFT JOIN job_executions e ON e.job_id = j.id
    WHERE j.status <> 'deleted'
    GROUP BY j.id, j.user_id, j.name;
