-- Chronos schema, version 2: the outbox of failure notifications.
-- One row per failed occurrence and channel, recorded by the statement that records
-- the final failure (so a crash can neither lose it nor double it), claimed by a
-- dispatcher with a lease (`due_at` moves to the end of the claim and `attempts` counts
-- the claims) and settled with a fence on (status, attempts).

-- notifications.user_id is the owner, as jobs.user_id is. The failed execution is
-- identified by (execution_id, execution_created_at): job_executions is partitioned by
-- created_at and its primary key is (id, created_at), so the claim joins it on both
-- and reads one partition instead of probing every one. There is no foreign key to
-- job_executions: retention drops its partitions whole. A channel name is the
-- notifier's and is not length-limited, so that no name can make a finish fail.
CREATE TABLE notifications (
    id                   uuid PRIMARY KEY,
    channel              text NOT NULL,
    job_id               uuid NOT NULL REFERENCES jobs (id),
    user_id              uuid NOT NULL,
    execution_id         uuid NOT NULL,
    execution_created_at timestamptz NOT NULL,
    scheduled_for        timestamptz NOT NULL,
    manual_run           uuid,
    status               varchar(20) NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'sent', 'skipped', 'failed')),
    attempts             integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    due_at               timestamptz NOT NULL,
    last_error           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz,
    -- Settled exactly when finished: a pending row has no finished_at, a settled one has.
    CONSTRAINT notifications_finished_when_settled CHECK ((status = 'pending') = (finished_at IS NULL))
);
-- At most one notification per occurrence (job, scheduled_for, manual run) and channel:
-- the finish inserts with ON CONFLICT DO NOTHING against it. A scheduled occurrence has
-- no manual run; COALESCE makes those NULLs equal (NULLS NOT DISTINCT needs PostgreSQL 15).
CREATE UNIQUE INDEX notifications_occurrence_channel_key ON notifications (
    job_id, scheduled_for, COALESCE(manual_run, '00000000-0000-0000-0000-000000000000'::uuid),
    channel
);
-- The claim and the dispatcher's next wake-up: pending rows, earliest due first. Only
-- undelivered and in-flight rows are in it, so it stays small.
CREATE INDEX notifications_due_idx ON notifications (due_at, id) WHERE status = 'pending';
-- An execution's notifications.
CREATE INDEX notifications_execution_idx ON notifications (execution_id);
-- Retention: settled rows by the time they were settled.
CREATE INDEX notifications_settled_idx ON notifications (finished_at) WHERE status <> 'pending';
