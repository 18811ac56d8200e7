//! [`PgStore`] beyond the contract: concurrency on the real server, bad data written
//! behind the store's back, the schema's constraints, PostgreSQL's precision and
//! collation.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chronos::model::{
    Execution, ExecutionStatus, Job, JobQuery, JobSort, JobStatus, NotificationStatus,
    OccurrenceKey, Schedule, SortOrder,
};
use chronos::store::{
    ABANDONED, Advance, FinishExecution, JobStore, NewNotification, NotificationOutcome,
    SettleNotification, SkipReason, StartExecution, StartOutcome, StoreError,
};
use chronos::testkit::{at, execution, job, log_entry, recurring_job, run};
use chronos_postgres::PgStore;
use chronos_postgres::testing::TestDb;
use uuid::Uuid;

async fn setup() -> (TestDb, PgStore) {
    let db = TestDb::create().await;
    let store = PgStore::new(db.pool.clone());
    (db, store)
}

fn claim(job: &Job, scheduled_for: DateTime<Utc>, next: Option<DateTime<Utc>>) -> StartExecution {
    StartExecution {
        key: OccurrenceKey::scheduled(job.id, scheduled_for),
        attempt: 0,
        execution_id: Uuid::now_v7(),
        advance: Some(Advance { next_run: next }),
        worker: "worker-1".to_owned(),
        started_at: at(1),
    }
}

fn finish_req(id: Uuid, status: ExecutionStatus, finished_at: DateTime<Utc>) -> FinishExecution {
    FinishExecution {
        execution_id: id,
        status,
        finished_at,
        output: None,
        error: None,
        next_attempt: None,
        job_status: None,
        notifications: Vec::new(),
    }
}

async fn executions_of(db: &TestDb, job_id: Uuid) -> Vec<(String, Option<String>)> {
    sqlx::query_as(
        "SELECT status::text, error_message FROM job_executions WHERE job_id = $1 ORDER BY id",
    )
    .bind(job_id)
    .fetch_all(&db.pool)
    .await
    .expect("read executions")
}

/// Claims of one occurrence racing on different connections are serialized by the job's
/// row lock: exactly one claims it (nothing to abandon); each later one sees the
/// attempt before it still running and abandons it, as a re-delivery does. At the end
/// one attempt runs, and the job records every start (no lost update).
#[test]
fn concurrent_claims_of_one_occurrence_are_serialized() {
    run(async {
        let (db, store) = setup().await;
        let j = recurring_job(Uuid::new_v4(), "tick", at(0));
        store.insert_job(&j).await.expect("insert");
        const N: usize = 8;
        let tasks: Vec<_> = (0..N)
            .map(|_| {
                let store = store.clone();
                let req = claim(&j, at(0), Some(at(60)));
                tokio::spawn(async move { store.start_execution(&req).await })
            })
            .collect();
        let mut abandoned = Vec::new();
        for task in tasks {
            match task.await.expect("join").expect("start_execution") {
                StartOutcome::Started { abandoned: a, .. } => abandoned.push(a),
                other => panic!("expected Started, got {other:?}"),
            }
        }
        abandoned.sort_unstable();
        let mut expected = vec![1; N];
        expected[0] = 0;
        assert_eq!(abandoned, expected, "one claim, then re-deliveries");

        let after = store.get_job(j.id).await.expect("get").expect("job");
        assert_eq!(after.next_run, Some(at(60)));
        assert_eq!(after.revision, N as u64, "every start bumped the revision");
        let rows = executions_of(&db, j.id).await;
        assert_eq!(rows.len(), N);
        assert_eq!(
            rows.iter().filter(|(s, _)| s == "running").count(),
            1,
            "exactly one attempt runs"
        );
        assert!(
            rows.iter()
                .filter(|(s, _)| s != "running")
                .all(|(s, e)| s == "failed" && e.as_deref() == Some(ABANDONED))
        );
    });
}

/// A claim that waits on the job's lock while another claimant's attempt ends reads
/// the job as it is after the wait: `next_run` has moved on and nothing runs, so the
/// occurrence is `Stale` and nothing is recorded.
#[test]
fn a_claim_that_waited_for_the_lock_is_stale_after_a_finished_claim() {
    run(async {
        let (db, store) = setup().await;
        let j = recurring_job(Uuid::new_v4(), "tick", at(0));
        store.insert_job(&j).await.expect("insert");

        // Another claimant holds the job: it claims at(0) and its attempt ends.
        let mut other = db.pool.begin().await.expect("begin");
        sqlx::query("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE")
            .bind(j.id)
            .execute(&mut *other)
            .await
            .expect("lock");
        let req = claim(&j, at(0), Some(at(60)));
        let waiting = {
            let store = store.clone();
            let req = req.clone();
            tokio::spawn(async move { store.start_execution(&req).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "the start waits for the job's lock");
        sqlx::query("UPDATE jobs SET next_run = $2, revision = revision + 1 WHERE id = $1")
            .bind(j.id)
            .bind(at(60))
            .execute(&mut *other)
            .await
            .expect("advance");
        other.commit().await.expect("commit");

        let outcome = waiting.await.expect("join").expect("start_execution");
        assert_eq!(outcome, StartOutcome::Skipped(SkipReason::Stale));
        assert_eq!(executions_of(&db, j.id).await, vec![]);
        let after = store.get_job(j.id).await.expect("get").expect("job");
        assert_eq!((after.next_run, after.revision), (Some(at(60)), 1));
    });
}

/// The worker of a lapsed lease finishing its attempt while another worker re-delivers
/// the occurrence, in both shapes of a finish: completing the one-time job (which
/// writes the job row) and recording a retry (whose insert checks the job's key). Both
/// orders are consistent, and the two never deadlock: a finish that writes the job
/// locks it before the execution, as a start does, and a start's lock on the job
/// (`FOR NO KEY UPDATE`) lets the retry's foreign-key check through.
#[test]
fn finish_racing_a_redelivery_is_consistent() {
    run(async {
        let (db, store) = setup().await;
        for i in 0..40 {
            let retry = i % 2 == 1;
            let j = job(Uuid::new_v4(), "once");
            store.insert_job(&j).await.expect("insert");
            let StartOutcome::Started { execution: x, .. } = store
                .start_execution(&claim(&j, at(0), None))
                .await
                .expect("claim")
            else {
                panic!("the first claim starts");
            };
            let finish = if retry {
                FinishExecution {
                    next_attempt: Some(Execution {
                        attempt: 1,
                        scheduled_for: at(0),
                        due_at: at(65),
                        ..execution(&j, ExecutionStatus::Queued, at(5))
                    }),
                    ..finish_req(x.id, ExecutionStatus::Failed, at(5))
                }
            } else {
                FinishExecution {
                    job_status: Some(JobStatus::Completed),
                    ..finish_req(x.id, ExecutionStatus::Success, at(5))
                }
            };
            let redeliver = StartExecution {
                worker: "worker-2".to_owned(),
                started_at: at(4),
                ..claim(&j, at(0), None)
            };
            let (finished, started) = tokio::join!(
                {
                    let store = store.clone();
                    tokio::spawn(async move { store.finish_execution(&finish).await })
                },
                {
                    let store = store.clone();
                    tokio::spawn(async move { store.start_execution(&redeliver).await })
                },
            );
            let finished = finished.expect("join").expect("finish_execution");
            let started = started.expect("join").expect("start_execution");
            let after = store.get_job(j.id).await.expect("get").expect("job");
            let running = match (finished, started) {
                (Some(done), StartOutcome::Skipped(reason)) => {
                    if retry {
                        assert_eq!(done.status, ExecutionStatus::Failed);
                        assert_eq!(reason, SkipReason::Stale);
                        assert_eq!(after.status, JobStatus::Active);
                    } else {
                        assert_eq!(done.status, ExecutionStatus::Success);
                        assert_eq!(reason, SkipReason::NotRunnable(JobStatus::Completed));
                        assert_eq!(after.status, JobStatus::Completed);
                    }
                    0
                }
                (None, StartOutcome::Started { abandoned, .. }) => {
                    assert_eq!(abandoned, 1);
                    assert_eq!(after.status, JobStatus::Active);
                    1
                }
                other => panic!("inconsistent outcome {other:?}"),
            };
            let rows = executions_of(&db, j.id).await;
            assert_eq!(rows.iter().filter(|(s, _)| s == "running").count(), running);
        }
    });
}

/// A time zone that is not an IANA name, written behind the store's back, is a
/// backend error naming the job and the value, not a panic.
#[test]
fn bad_timezone_in_the_database_is_a_backend_error() {
    run(async {
        let (db, store) = setup().await;
        let j = job(Uuid::new_v4(), "zoned");
        store.insert_job(&j).await.expect("insert");
        sqlx::query("UPDATE jobs SET timezone = 'Mars/Olympus' WHERE id = $1")
            .bind(j.id)
            .execute(&db.pool)
            .await
            .expect("raw update");

        let check = |result: Result<_, StoreError>| match result {
            Err(StoreError::Backend { message, .. }) => {
                assert!(
                    message.contains("Mars/Olympus") && message.contains(&j.id.to_string()),
                    "{message}"
                );
            }
            other => panic!("expected a backend error, got {:?}", other.map(|_| ())),
        };
        check(store.get_job(j.id).await.map(|_| ()));
        check(store.find_job(j.owner, j.id).await.map(|_| ()));
        check(
            store
                .list_jobs(j.owner, &JobQuery::default())
                .await
                .map(|_| ()),
        );
    });
}

/// The schema enforces the original service's constraints: rows the model could never
/// produce are rejected by CHECK constraints (SQLSTATE 23514).
#[test]
fn check_constraints_reject_invalid_rows() {
    run(async {
        let (db, store) = setup().await;
        let j = job(Uuid::new_v4(), "valid");
        store.insert_job(&j).await.expect("insert");

        let jobs = [
            (
                "recurring with an immediate schedule",
                "'recurring', 'immediate', NULL, NULL, '{}', 'active', 'x', 300000",
            ),
            (
                "one-time with a cron schedule",
                "'one-time', 'cron', NULL, '* * * * *', '{}', 'active', 'x', 300000",
            ),
            (
                "scheduled without a time",
                "'one-time', 'scheduled', NULL, NULL, '{}', 'active', 'x', 300000",
            ),
            (
                "cron without an expression",
                "'recurring', 'cron', NULL, NULL, '{}', 'active', 'x', 300000",
            ),
            (
                "a payload that is not an object",
                "'one-time', 'immediate', NULL, NULL, '[1]', 'active', 'x', 300000",
            ),
            (
                "an unknown status",
                "'one-time', 'immediate', NULL, NULL, '{}', 'sleeping', 'x', 300000",
            ),
            (
                "a blank name",
                "'one-time', 'immediate', NULL, NULL, '{}', 'active', '   ', 300000",
            ),
            (
                "a timeout under a second",
                "'one-time', 'immediate', NULL, NULL, '{}', 'active', 'x', 999",
            ),
        ];
        for (what, values) in jobs {
            let sql = format!(
                "INSERT INTO jobs (id, user_id, job_type, schedule_type, scheduled_time, \
                 cron_expression, payload, status, name, timeout_ms, handler) \
                 VALUES (gen_random_uuid(), gen_random_uuid(), {values}, 'h')"
            );
            let err = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&db.pool)
                .await
                .expect_err(what);
            let code = err
                .as_database_error()
                .and_then(|d| d.code().map(|c| c.into_owned()));
            assert_eq!(code.as_deref(), Some("23514"), "{what}: {err}");
        }

        let executions = [
            ("an unknown status", "'done', 0, NULL"),
            ("a negative attempt", "'success', -1, NULL"),
            ("a negative duration", "'success', 0, -5"),
        ];
        for (what, values) in executions {
            let sql = format!(
                "INSERT INTO job_executions (id, job_id, user_id, job_name, scheduled_for, \
                 due_at, status, retry_attempt, duration_ms) \
                 VALUES (gen_random_uuid(), '{}', '{}', 'n', now(), now(), {values})",
                j.id, j.owner
            );
            let err = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&db.pool)
                .await
                .expect_err(what);
            let code = err
                .as_database_error()
                .and_then(|d| d.code().map(|c| c.into_owned()));
            assert_eq!(
                code.as_deref(),
                Some("23514"),
                "execution with {what}: {err}"
            );
        }

        let notifications = [
            ("an unknown status", "'lost', 0, NULL"),
            ("a negative attempt count", "'pending', -1, NULL"),
            ("a pending row with a finished_at", "'pending', 1, now()"),
            ("a settled row without a finished_at", "'sent', 1, NULL"),
        ];
        for (what, values) in notifications {
            let sql = format!(
                "INSERT INTO notifications (id, channel, job_id, user_id, execution_id, \
                 execution_created_at, scheduled_for, due_at, status, attempts, finished_at) \
                 VALUES (gen_random_uuid(), 'email', '{}', '{}', gen_random_uuid(), now(), \
                 now(), now(), {values})",
                j.id, j.owner
            );
            let err = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&db.pool)
                .await
                .expect_err(what);
            let code = err
                .as_database_error()
                .and_then(|d| d.code().map(|c| c.into_owned()));
            assert_eq!(
                code.as_deref(),
                Some("23514"),
                "notification with {what}: {err}"
            );
        }
    });
}

/// The primary key of the partitioned executions is `(id, created_at)`: the store still
/// rejects an id recorded under another `created_at`, in `insert_execution` and as the
/// next attempt of `finish_execution`, changing nothing.
#[test]
fn duplicate_execution_ids_across_created_at() {
    run(async {
        let (_db, store) = setup().await;
        let j = job(Uuid::new_v4(), "once");
        store.insert_job(&j).await.expect("insert");
        let e = execution(&j, ExecutionStatus::Success, at(1));
        store.insert_execution(&e).await.expect("insert_execution");
        let later = Execution {
            created_at: at(100_000_000),
            ..e.clone()
        };
        assert!(matches!(
            store.insert_execution(&later).await,
            Err(StoreError::Duplicate { what: "execution", id }) if id == e.id
        ));

        let StartOutcome::Started { execution: x, .. } = store
            .start_execution(&claim(&j, at(0), None))
            .await
            .expect("claim")
        else {
            panic!("the claim starts");
        };
        for next in [
            x.clone(),
            Execution {
                created_at: at(5),
                status: ExecutionStatus::Queued,
                ..e.clone()
            },
        ] {
            let finish = FinishExecution {
                next_attempt: Some(next.clone()),
                job_status: Some(JobStatus::Failed),
                ..finish_req(x.id, ExecutionStatus::Failed, at(3))
            };
            assert!(
                matches!(
                    store.finish_execution(&finish).await,
                    Err(StoreError::Duplicate { what: "execution", id }) if id == next.id
                ),
                "next attempt {}",
                next.id
            );
            assert_eq!(
                store.get_execution(j.owner, x.id).await.expect("get"),
                Some(x.clone()),
                "still running, unchanged"
            );
            assert_eq!(
                store.get_job(j.id).await.expect("get").map(|j| j.status),
                Some(JobStatus::Active)
            );
        }

        // A running execution started under another occurrence is refused, untouched.
        let mixup = StartExecution {
            execution_id: x.id,
            ..claim(&j, at(7), None)
        };
        assert!(matches!(
            store.start_execution(&mixup).await,
            Err(StoreError::Duplicate { .. })
        ));
        assert_eq!(
            store.get_execution(j.owner, x.id).await.expect("get"),
            Some(x)
        );
    });
}

/// Names sort by their UTF-8 bytes, as Rust compares strings, whatever the database's
/// collation.
#[test]
fn names_sort_in_byte_order() {
    run(async {
        let (_db, store) = setup().await;
        let owner = Uuid::new_v4();
        let names = ["b", "B", "é", "e", "Z", "a b", "ab", "_x", "Ä", "z"];
        for name in names {
            store.insert_job(&job(owner, name)).await.expect("insert");
        }
        let mut expected: Vec<&str> = names.to_vec();
        expected.sort_unstable();
        for order in [SortOrder::Asc, SortOrder::Desc] {
            let q = JobQuery {
                sort: JobSort::Name,
                order,
                limit: 100,
                ..JobQuery::default()
            };
            let got: Vec<String> = store
                .list_jobs(owner, &q)
                .await
                .expect("list")
                .items
                .into_iter()
                .map(|j| j.name)
                .collect();
            assert_eq!(got, expected, "{order:?}");
            expected.reverse();
        }
    });
}

/// The core puts no bound on a cron expression, so the database does not either: one
/// that lists every minute, hour and day (over 255 characters, the column's former
/// `varchar(255)`) is stored and read back, on insert and on update.
#[test]
fn cron_expressions_of_any_length_are_stored() {
    run(async {
        let (_db, store) = setup().await;
        let list = |from: u32, to: u32| {
            (from..to)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let long = format!("{} {} {} * *", list(0, 60), list(0, 24), list(1, 32));
        assert!(long.len() > 255, "{}", long.len());
        let mut j = recurring_job(Uuid::new_v4(), "long", at(60));
        j.schedule = Schedule::Cron {
            expression: long.clone(),
        };
        store.insert_job(&j).await.expect("insert");
        let stored = store.get_job(j.id).await.expect("get").expect("job");
        assert_eq!(stored.schedule, j.schedule);

        let longer = format!("{} {long}", list(0, 60));
        let mut changed = stored.clone();
        changed.schedule = Schedule::Cron {
            expression: longer.clone(),
        };
        let updated = store.update_job(&changed).await.expect("update");
        assert_eq!(updated.schedule, changed.schedule);
        let stored = store.get_job(j.id).await.expect("get").expect("job");
        assert_eq!(stored.schedule, Schedule::Cron { expression: longer });
    });
}

/// Instants finer than PostgreSQL's microsecond (an immediate job's `next_run` is the
/// wall clock's now) still claim the occurrence they name.
#[test]
fn sub_microsecond_instants_still_claim() {
    run(async {
        let (_db, store) = setup().await;
        let due = at(0) + chrono::Duration::nanoseconds(1_234_567);
        let mut j = job(Uuid::new_v4(), "now");
        j.next_run = Some(due);
        store.insert_job(&j).await.expect("insert");
        let stored = store.get_job(j.id).await.expect("get").expect("job");
        assert_eq!(
            stored.next_run,
            Some(at(0) + chrono::Duration::microseconds(1_234))
        );
        let outcome = store
            .start_execution(&claim(&j, due, None))
            .await
            .expect("start");
        let StartOutcome::Started { job, execution, .. } = outcome else {
            panic!("expected Started, got {outcome:?}");
        };
        assert_eq!(job.next_run, None);
        assert_eq!(execution.scheduled_for, stored.next_run.expect("next_run"));
    });
}

/// A large batch of log entries is one statement; appending the same batch again (a
/// retry after a lost reply) adds nothing.
#[test]
fn append_logs_batches_and_is_idempotent() {
    run(async {
        let (_db, store) = setup().await;
        let j = job(Uuid::new_v4(), "chatty");
        store.insert_job(&j).await.expect("insert");
        let e = execution(&j, ExecutionStatus::Success, at(1));
        store.insert_execution(&e).await.expect("insert_execution");
        let mut batch: Vec<_> = (0..1000)
            .map(|i| {
                let mut entry = log_entry(&e, at(1000 - i), &format!("line {i}"));
                entry.metadata = serde_json::json!({ "i": i });
                entry
            })
            .collect();
        store.append_logs(&batch).await.expect("append");
        store.append_logs(&batch).await.expect("append again");
        batch.sort_by_key(|l| (l.timestamp, l.id));
        assert_eq!(store.logs(j.owner, e.id).await.expect("logs"), batch);
    });
}

/// Runs `job`'s occurrence at `at(0)` and fails it for good at `failed_at`, recording a
/// notification on `email`. Returns the failed execution.
async fn fail_for_good(store: &PgStore, job: &Job, failed_at: DateTime<Utc>) -> Execution {
    let StartOutcome::Started { execution: x, .. } = store
        .start_execution(&claim(job, at(0), None))
        .await
        .expect("start_execution")
    else {
        panic!("the claim starts");
    };
    let finish = FinishExecution {
        error: Some("boom".to_owned()),
        job_status: Some(JobStatus::Failed),
        notifications: vec![NewNotification {
            id: Uuid::now_v7(),
            channel: "email".to_owned(),
        }],
        ..finish_req(x.id, ExecutionStatus::Failed, failed_at)
    };
    store
        .finish_execution(&finish)
        .await
        .expect("finish_execution")
        .expect("the attempt was running")
}

/// Two dispatcher processes (a pool each), eight claims at once in each, limit 10,
/// until the outbox is drained: every notification is claimed exactly once per lease,
/// each batch earliest due first. Once the leases lapse, every one is claimed exactly
/// once more, as its second attempt.
#[test]
fn concurrent_claimers_take_each_notification_once_per_lease() {
    run(async {
        const N: usize = 200;
        let (db, a) = setup().await;
        let second = sqlx::postgres::PgPoolOptions::new()
            .max_connections(10)
            .connect_with(db.options.clone())
            .await
            .expect("second pool");
        let b = PgStore::new(second);
        let owner = Uuid::new_v4();
        for i in 0..N {
            let j = job(owner, &format!("job {i}"));
            a.insert_job(&j).await.expect("insert");
            // Due at 0..50 s: ties on due_at are broken by id.
            let due = i64::try_from(i % 50).expect("small");
            fail_for_good(&a, &j, at(due)).await;
        }
        let email = vec!["email".to_owned()];

        let rounds = [
            (at(100), at(1000), None),
            (at(1000), at(2000), Some(at(1000))),
        ];
        for (round, (now, lease_until, lapsed)) in rounds.into_iter().enumerate() {
            let tasks: Vec<_> = [&a, &b]
                .into_iter()
                .flat_map(|store| std::iter::repeat_n(store, 8))
                .map(|store| {
                    let store = store.clone();
                    let email = email.clone();
                    tokio::spawn(async move {
                        let mut mine = Vec::new();
                        loop {
                            let batch = store
                                .claim_notifications(&email, now, lease_until, 10)
                                .await
                                .expect("claim_notifications");
                            if batch.is_empty() {
                                return mine;
                            }
                            assert!(batch.len() <= 10);
                            // Due when claimed (at the failure, or when the first
                            // lease ended), then by id.
                            let due: Vec<_> = batch
                                .iter()
                                .map(|c| {
                                    let failed = c.execution.finished_at.expect("finished");
                                    (lapsed.unwrap_or(failed), c.notification.id)
                                })
                                .collect();
                            assert!(due.is_sorted(), "earliest due first: {due:?}");
                            mine.extend(batch);
                        }
                    })
                })
                .collect();
            let mut claimed = Vec::new();
            for task in tasks {
                claimed.extend(task.await.expect("join"));
            }
            let attempt = u32::try_from(round).expect("small") + 1;
            assert!(claimed.iter().all(|c| c.notification.attempts == attempt
                && c.notification.due_at == lease_until
                && c.notification.status == NotificationStatus::Pending
                && c.execution.id == c.notification.execution_id
                && c.job.id == c.notification.job_id));
            let mut ids: Vec<Uuid> = claimed.iter().map(|c| c.notification.id).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(
                (claimed.len(), ids.len()),
                (N, N),
                "round {round}: each notification claimed exactly once"
            );
            assert_eq!(
                a.next_notification_due(&email)
                    .await
                    .expect("next_notification_due"),
                Some(lease_until),
                "all claimed until the lease ends"
            );
        }
    });
}

/// A dispatcher whose claim lapsed and was taken over cannot settle: its outcome and
/// its log line are refused, and the one that holds the claim now settles it.
#[test]
fn a_settle_after_the_claim_was_taken_over_is_refused() {
    run(async {
        let (_db, store) = setup().await;
        let j = job(Uuid::new_v4(), "once");
        store.insert_job(&j).await.expect("insert");
        let x = fail_for_good(&store, &j, at(5)).await;
        let email = vec!["email".to_owned()];
        let first = store
            .claim_notifications(&email, at(10), at(20), 10)
            .await
            .expect("claim");
        assert_eq!(first.len(), 1);
        // The first dispatcher stalls past its lease; another takes the notification.
        let second = store
            .claim_notifications(&email, at(20), at(50), 10)
            .await
            .expect("claim again");
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].notification.attempts, 2);

        let settle = |attempt: u32, t: i64, message: &str| SettleNotification {
            id: first[0].notification.id,
            attempt,
            outcome: NotificationOutcome::Sent,
            at: at(t),
            log: log_entry(&x, at(t), message),
        };
        assert!(
            !store
                .settle_notification(&settle(1, 21, "sent by the first"))
                .await
                .expect("settle"),
            "the lapsed claim is refused"
        );
        let notes = store.notifications(x.id).await.expect("notifications");
        assert_eq!(
            (notes[0].status, notes[0].attempts, notes[0].due_at),
            (NotificationStatus::Pending, 2, at(50)),
            "nothing changed"
        );
        assert_eq!(
            store.logs(j.owner, x.id).await.expect("logs"),
            Vec::new(),
            "no log line"
        );

        assert!(
            store
                .settle_notification(&settle(2, 22, "sent by the second"))
                .await
                .expect("settle")
        );
        let notes = store.notifications(x.id).await.expect("notifications");
        assert_eq!(
            (notes[0].status, notes[0].finished_at),
            (NotificationStatus::Sent, Some(at(22)))
        );
        let lines: Vec<String> = store
            .logs(j.owner, x.id)
            .await
            .expect("logs")
            .into_iter()
            .map(|l| l.message)
            .collect();
        assert_eq!(lines, ["sent by the second"]);
        // Settled: never claimed again.
        assert!(
            store
                .claim_notifications(&email, at(100), at(200), 10)
                .await
                .expect("claim")
                .is_empty()
        );
    });
}

/// Outbox rows the model cannot hold, written behind the store's back, are backend
/// errors, not panics: a status no version writes, and a claimed notification whose
/// job has a time zone that is not an IANA name.
#[test]
fn bad_data_in_the_outbox_is_a_backend_error() {
    run(async {
        let (db, store) = setup().await;
        let lost = job(Uuid::new_v4(), "lost");
        store.insert_job(&lost).await.expect("insert");
        let x = fail_for_good(&store, &lost, at(5)).await;
        let n = store
            .notifications(x.id)
            .await
            .expect("notifications")
            .remove(0);
        sqlx::query(
            "ALTER TABLE notifications DROP CONSTRAINT notifications_status_check, \
             DROP CONSTRAINT notifications_finished_when_settled",
        )
        .execute(&db.pool)
        .await
        .expect("drop the checks");
        sqlx::query("UPDATE notifications SET status = 'lost' WHERE id = $1")
            .bind(n.id)
            .execute(&db.pool)
            .await
            .expect("raw update");
        match store.notifications(x.id).await {
            Err(StoreError::Backend { message, .. }) => assert!(
                message.contains("lost") && message.contains(&n.id.to_string()),
                "{message}"
            ),
            other => panic!("expected a backend error, got {other:?}"),
        }

        let zoned = job(Uuid::new_v4(), "zoned");
        store.insert_job(&zoned).await.expect("insert");
        fail_for_good(&store, &zoned, at(6)).await;
        sqlx::query("UPDATE jobs SET timezone = 'Mars/Olympus' WHERE id = $1")
            .bind(zoned.id)
            .execute(&db.pool)
            .await
            .expect("raw update");
        match store
            .claim_notifications(&["email".to_owned()], at(10), at(20), 10)
            .await
        {
            Err(StoreError::Backend { message, .. }) => assert!(
                message.contains("Mars/Olympus") && message.contains(&zoned.id.to_string()),
                "{message}"
            ),
            other => panic!("expected a backend error, got {other:?}"),
        }
    });
}
