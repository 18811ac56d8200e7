-- Chronos schema, version 3: cron expressions of any length.
-- The core puts no bound on a cron expression (a valid one that lists every minute,
-- hour and day of the month is over 300 characters), but jobs.cron_expression was
-- varchar(255): storing such a job failed (a 500 from the API) where the in-memory
-- store took it. As with notification channels, the database imposes no limit the core
-- does not. varchar to text is binary coercible, so the table is not rewritten; the
-- view that reads the column is dropped and recreated as it was.
DROP VIEW jobs_due_for_execution;

ALTER TABLE jobs ALTER COLUMN cron_expression TYPE text;

CREATE VIEW jobs_due_for_execution AS
    SELECT id, user_id, name, job_type, schedule_type, cron_expression, timezone, next_run
    FROM jobs
    WHERE status = 'active' AND next_run IS NOT NULL AND next_run <= now();
