//! The [`JobStore`] contract, one public `async fn` per case.
//!
//! Each case takes a factory returning a new, empty store (see the
//! [`testkit`](super) docs) and panics when the store breaks the contract.
//! [`store_contract_tests!`](crate::store_contract_tests) runs them all.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{at, at_ms, execution, job, log_entry, manual_execution, recurring_job, sorted_ids};
use crate::model::{
    Execution, ExecutionQuery, ExecutionStatus, ExecutionSummary, Job, JobCounts, JobKind,
    JobQuery, JobSort, JobStats, JobStatus, LogLevel, Notification, NotificationStatus,
    OccurrenceKey, OwnerStats, SortOrder,
};
use crate::store::{
    ABANDONED, Advance, ClaimedNotification, FinishExecution, JobStore, NewNotification,
    NotificationOutcome, SettleNotification, SkipReason, StartExecution, StartOutcome, StoreError,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn owner() -> Uuid {
    Uuid::new_v4()
}

async fn insert<S: JobStore>(store: &S, job: &Job) {
    store
        .insert_job(job)
        .await
        .unwrap_or_else(|e| panic!("insert_job {}: {e}", job.id));
}

async fn insert_exec<S: JobStore>(store: &S, execution: &Execution) {
    store
        .insert_execution(execution)
        .await
        .unwrap_or_else(|e| panic!("insert_execution {}: {e}", execution.id));
}

async fn get<S: JobStore>(store: &S, id: Uuid) -> Job {
    store
        .get_job(id)
        .await
        .expect("get_job")
        .unwrap_or_else(|| panic!("get_job {id}: the job is missing"))
}

async fn get_exec<S: JobStore>(store: &S, owner: Uuid, id: Uuid) -> Execution {
    store
        .get_execution(owner, id)
        .await
        .expect("get_execution")
        .unwrap_or_else(|| panic!("get_execution {id}: the execution is missing"))
}

/// Soft-deletes a job the way the engine does: a compare-and-set to `Deleted`.
async fn delete<S: JobStore>(store: &S, id: Uuid) -> Job {
    let mut job = get(store, id).await;
    job.status = JobStatus::Deleted;
    job.next_run = None;
    store.update_job(&job).await.expect("update_job (delete)")
}

fn start_req(
    key: OccurrenceKey,
    attempt: u32,
    execution_id: Uuid,
    advance: Option<Option<DateTime<Utc>>>,
    worker: &str,
    started_at: DateTime<Utc>,
) -> StartExecution {
    StartExecution {
        key,
        attempt,
        execution_id,
        advance: advance.map(|next_run| Advance { next_run }),
        worker: worker.to_owned(),
        started_at,
    }
}

async fn start<S: JobStore>(store: &S, req: &StartExecution) -> StartOutcome {
    store
        .start_execution(req)
        .await
        .unwrap_or_else(|e| panic!("start_execution {req:?}: {e}"))
}

#[track_caller]
fn started(outcome: StartOutcome) -> (Job, Execution, u32) {
    match outcome {
        StartOutcome::Started {
            job,
            execution,
            abandoned,
        } => (job, execution, abandoned),
        StartOutcome::Skipped(reason) => panic!("expected Started, got Skipped({reason:?})"),
    }
}

/// Claims the scheduled occurrence of `job` at `scheduled_for` as a first attempt
/// started at `started_at`, moving `next_run` to `next`.
async fn claim<S: JobStore>(
    store: &S,
    job: &Job,
    scheduled_for: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
    started_at: DateTime<Utc>,
) -> (Job, Execution) {
    let req = start_req(
        OccurrenceKey::scheduled(job.id, scheduled_for),
        0,
        Uuid::now_v7(),
        Some(next),
        "worker-1",
        started_at,
    );
    let (job, execution, abandoned) = started(start(store, &req).await);
    assert_eq!(abandoned, 0, "a first claim abandons nothing");
    (job, execution)
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

async fn finish<S: JobStore>(store: &S, req: &FinishExecution) -> Option<Execution> {
    store
        .finish_execution(req)
        .await
        .unwrap_or_else(|e| panic!("finish_execution {req:?}: {e}"))
}

fn query(status: Option<JobStatus>, kind: Option<JobKind>) -> JobQuery {
    JobQuery {
        status,
        kind,
        limit: 100,
        ..JobQuery::default()
    }
}

async fn list_ids<S: JobStore>(store: &S, owner: Uuid, q: &JobQuery) -> (Vec<Uuid>, u64) {
    let page = store.list_jobs(owner, q).await.expect("list_jobs");
    (page.items.iter().map(|j| j.id).collect(), page.total)
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort_unstable();
    ids
}

async fn pending_ids<S: JobStore>(store: &S, cutoff: DateTime<Utc>) -> Vec<Uuid> {
    store
        .pending_executions(None, 1000, cutoff)
        .await
        .expect("pending_executions")
        .into_iter()
        .map(|e| e.id)
        .collect()
}

// ---------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------

/// `insert_job` stores the job as given; `get_job` reads it whoever owns it;
/// `find_job` only for its owner.
pub async fn insert_and_get_job<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let (o1, o2) = (owner(), owner());
    let mut j = job(o1, "report");
    j.description = Some("nightly".to_owned());
    j.payload = json!({"to": "ops", "n": 3});
    insert(&store, &j).await;

    assert_eq!(store.get_job(j.id).await.expect("get_job"), Some(j.clone()));
    assert_eq!(
        store.find_job(o1, j.id).await.expect("find_job"),
        Some(j.clone())
    );
    assert_eq!(
        store.find_job(o2, j.id).await.expect("find_job"),
        None,
        "another owner's job is invisible"
    );
    assert_eq!(
        store.find_job(o1, Uuid::now_v7()).await.expect("find_job"),
        None
    );
    assert_eq!(store.get_job(Uuid::now_v7()).await.expect("get_job"), None);
}

/// A deleted job is missing for `find_job` but still there for `get_job`.
pub async fn find_job_hides_deleted_jobs<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = job(o, "doomed");
    insert(&store, &j).await;
    let deleted = delete(&store, j.id).await;
    assert_eq!(deleted.status, JobStatus::Deleted);
    assert_eq!(deleted.revision, 1);

    assert_eq!(store.find_job(o, j.id).await.expect("find_job"), None);
    assert_eq!(
        store.get_job(j.id).await.expect("get_job"),
        Some(deleted),
        "get_job is the engine's unscoped read"
    );
}

/// Inserting a job or an execution whose id exists fails with `Duplicate` and
/// changes nothing.
pub async fn duplicate_inserts_are_rejected<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = job(o, "once");
    insert(&store, &j).await;
    let mut again = j.clone();
    again.name = "twice".to_owned();
    match store.insert_job(&again).await {
        Err(StoreError::Duplicate { what: "job", id }) => assert_eq!(id, j.id),
        other => panic!("expected Duplicate job, got {other:?}"),
    }
    assert_eq!(get(&store, j.id).await.name, "once");

    let e = execution(&j, ExecutionStatus::Queued, at(1));
    insert_exec(&store, &e).await;
    let mut e2 = e.clone();
    e2.attempt = 5;
    match store.insert_execution(&e2).await {
        Err(StoreError::Duplicate {
            what: "execution",
            id,
        }) => assert_eq!(id, e.id),
        other => panic!("expected Duplicate execution, got {other:?}"),
    }
    assert_eq!(get_exec(&store, o, e.id).await.attempt, 0);
}

/// `list_jobs` filters by status and kind, never returns deleted jobs or another
/// owner's, and counts every match in `total`.
pub async fn list_jobs_filters_by_status_and_kind<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let (o, other) = (owner(), owner());
    let a = job(o, "a");
    let b = job(o, "b");
    let c = recurring_job(o, "c", at(60));
    let mut d = recurring_job(o, "d", at(60));
    d.status = JobStatus::Paused;
    d.paused_at = Some(at(0));
    let mut e = job(o, "e");
    e.status = JobStatus::Completed;
    e.next_run = None;
    let f = job(o, "f");
    let g = job(other, "g");
    for j in [&a, &b, &c, &d, &e, &f, &g] {
        insert(&store, j).await;
    }
    delete(&store, f.id).await;

    let cases: [(Option<JobStatus>, Option<JobKind>, Vec<Uuid>); 8] = [
        (None, None, vec![a.id, b.id, c.id, d.id, e.id]),
        (Some(JobStatus::Active), None, vec![a.id, b.id, c.id]),
        (Some(JobStatus::Paused), None, vec![d.id]),
        (Some(JobStatus::Completed), None, vec![e.id]),
        (Some(JobStatus::Deleted), None, vec![]),
        (None, Some(JobKind::Recurring), vec![c.id, d.id]),
        (None, Some(JobKind::OneTime), vec![a.id, b.id, e.id]),
        (
            Some(JobStatus::Active),
            Some(JobKind::OneTime),
            vec![a.id, b.id],
        ),
    ];
    for (status, kind, expected) in cases {
        let (ids, total) = list_ids(&store, o, &query(status, kind)).await;
        assert_eq!(
            sorted(ids),
            sorted(expected.clone()),
            "list_jobs status={status:?} kind={kind:?}"
        );
        assert_eq!(
            total,
            expected.len() as u64,
            "total of status={status:?} kind={kind:?}"
        );
    }
    let (ids, total) = list_ids(&store, other, &query(None, None)).await;
    assert_eq!((ids, total), (vec![g.id], 1), "the other owner's list");
    let (ids, total) = list_ids(&store, owner(), &query(None, None)).await;
    assert_eq!((ids, total), (vec![], 0), "an owner with no jobs");
}

/// `list_jobs` sorts by each key in both orders, ties broken by id in the same
/// order; jobs without a `next_run` sort last in both orders.
pub async fn list_jobs_sorts_by_every_key<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let ids = sorted_ids(4);
    // (name, created_at, updated_at, next_run) of j0..j3, whose ids ascend.
    let rows = [
        ("b", at(10), at(5), Some(at(100))),
        ("a", at(20), at(5), None),
        ("b", at(20), at(1), Some(at(50))),
        ("c", at(30), at(9), Some(at(100))),
    ];
    let mut jobs = Vec::new();
    for (i, (name, created_at, updated_at, next_run)) in rows.into_iter().enumerate() {
        let mut j = recurring_job(o, name, at(0));
        j.id = ids[i];
        j.created_at = created_at;
        j.updated_at = updated_at;
        j.next_run = next_run;
        insert(&store, &j).await;
        jobs.push(j);
    }
    // Rows that must not appear, with values that would sort them first.
    let mut gone = recurring_job(o, "0", at(0));
    gone.created_at = at(0);
    insert(&store, &gone).await;
    delete(&store, gone.id).await;
    let mut foreign = recurring_job(owner(), "0", at(1));
    foreign.created_at = at(0);
    insert(&store, &foreign).await;

    use JobSort::*;
    use SortOrder::*;
    let cases = [
        (CreatedAt, Asc, [0, 1, 2, 3]),
        (CreatedAt, Desc, [3, 2, 1, 0]),
        (UpdatedAt, Asc, [2, 0, 1, 3]),
        (UpdatedAt, Desc, [3, 1, 0, 2]),
        (Name, Asc, [1, 0, 2, 3]),
        (Name, Desc, [3, 2, 0, 1]),
        (NextRun, Asc, [2, 0, 3, 1]),
        (NextRun, Desc, [3, 0, 2, 1]),
    ];
    for (sort, order, expected) in cases {
        let q = JobQuery {
            sort,
            order,
            ..query(None, None)
        };
        let (got, total) = list_ids(&store, o, &q).await;
        let expected: Vec<Uuid> = expected.iter().map(|&i| jobs[i].id).collect();
        let name = |ids: &[Uuid]| -> Vec<usize> {
            ids.iter()
                .map(|id| jobs.iter().position(|j| j.id == *id).unwrap_or(usize::MAX))
                .collect()
        };
        assert_eq!(
            got,
            expected,
            "list_jobs sort={sort:?} order={order:?}: got jobs {:?}, expected {:?}",
            name(&got),
            name(&expected)
        );
        assert_eq!(total, 4);
    }
}

/// `list_jobs` returns the requested page, echoes `page` and `limit`, and counts
/// all matches in `total`.
pub async fn list_jobs_paginates<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let mut jobs = Vec::new();
    for i in 1..=5 {
        let mut j = job(o, &format!("job-{i}"));
        j.created_at = at(i);
        insert(&store, &j).await;
        jobs.push(j.id);
    }
    for (page, expected) in [
        (1, &jobs[0..2]),
        (2, &jobs[2..4]),
        (3, &jobs[4..5]),
        (4, &jobs[5..5]),
    ] {
        let q = JobQuery {
            page,
            limit: 2,
            sort: JobSort::CreatedAt,
            order: SortOrder::Asc,
            ..JobQuery::default()
        };
        let got = store.list_jobs(o, &q).await.expect("list_jobs");
        let ids: Vec<Uuid> = got.items.iter().map(|j| j.id).collect();
        assert_eq!(ids, expected, "page {page}");
        assert_eq!(
            (got.total, got.page, got.limit),
            (5, page, 2),
            "page {page}: total, page, limit"
        );
    }
}

/// `update_job` is a compare-and-set on the revision: it stores `revision + 1`,
/// fails with `Conflict` on a stale revision and `NotFound` on a missing job.
pub async fn update_job_compare_and_set<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = job(o, "before");
    insert(&store, &j).await;

    let mut change = j.clone();
    change.name = "after".to_owned();
    change.updated_at = at(10);
    change.status = JobStatus::Paused;
    change.paused_at = Some(at(10));
    let stored = store.update_job(&change).await.expect("update_job");
    let expected = Job {
        revision: 1,
        ..change.clone()
    };
    assert_eq!(stored, expected);
    assert_eq!(get(&store, j.id).await, expected);

    match store.update_job(&change).await {
        Err(StoreError::Conflict { id, expected: 0 }) => assert_eq!(id, j.id),
        other => panic!("expected Conflict at revision 0, got {other:?}"),
    }
    assert_eq!(
        get(&store, j.id).await,
        expected,
        "a failed update changes nothing"
    );

    let mut again = stored.clone();
    again.name = "again".to_owned();
    let stored = store.update_job(&again).await.expect("update_job");
    assert_eq!((stored.revision, stored.name.as_str()), (2, "again"));

    let missing = job(o, "missing");
    match store.update_job(&missing).await {
        Err(StoreError::NotFound { what: "job", id }) => assert_eq!(id, missing.id),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// `upcoming_jobs` returns the owner's active jobs with `next_run` in `from..=to`,
/// soonest first, at most `limit`.
pub async fn upcoming_jobs_window<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let a = recurring_job(o, "a", at(10));
    let b = recurring_job(o, "b", at(30));
    let c = recurring_job(o, "c", at(20));
    let d = recurring_job(o, "d", at(40)); // on the upper bound
    let early = recurring_job(o, "early", at(9));
    let late = recurring_job(o, "late", at(41));
    let mut paused = recurring_job(o, "paused", at(15));
    paused.status = JobStatus::Paused;
    let gone = recurring_job(o, "gone", at(25));
    let foreign = recurring_job(owner(), "foreign", at(12));
    let mut none = recurring_job(o, "none", at(0));
    none.next_run = None;
    for j in [
        &a, &b, &c, &d, &early, &late, &paused, &gone, &foreign, &none,
    ] {
        insert(&store, j).await;
    }
    let mut gone_deleted = get(&store, gone.id).await;
    gone_deleted.status = JobStatus::Deleted; // keeps its next_run
    store.update_job(&gone_deleted).await.expect("update_job");

    let ids = |jobs: Vec<Job>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    let got = store
        .upcoming_jobs(o, at(10), at(40), 10)
        .await
        .expect("upcoming_jobs");
    assert_eq!(ids(got), vec![a.id, c.id, b.id, d.id]);
    let got = store
        .upcoming_jobs(o, at(10), at(40), 2)
        .await
        .expect("upcoming_jobs");
    assert_eq!(ids(got), vec![a.id, c.id], "limit 2");
    let got = store
        .upcoming_jobs(o, at(21), at(29), 10)
        .await
        .expect("upcoming_jobs");
    assert_eq!(ids(got), Vec::<Uuid>::new(), "an empty window");
}

/// `scheduled_jobs` walks every owner's active jobs that have a `next_run`, by id,
/// in keyset pages.
pub async fn scheduled_jobs_keyset_paging<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let (o, other) = (owner(), owner());
    let mut expected = Vec::new();
    for i in 0..5 {
        let j = recurring_job(o, &format!("r{i}"), at(60 * (i + 1)));
        insert(&store, &j).await;
        expected.push((j.id, at(60 * (i + 1))));
    }
    let one_time = job(o, "one-time");
    insert(&store, &one_time).await;
    expected.push((one_time.id, at(0)));
    let foreign = recurring_job(other, "foreign", at(7));
    insert(&store, &foreign).await;
    expected.push((foreign.id, at(7)));

    let mut paused = recurring_job(o, "paused", at(5));
    paused.status = JobStatus::Paused;
    let mut unscheduled = recurring_job(o, "unscheduled", at(5));
    unscheduled.next_run = None;
    let mut completed = job(o, "completed");
    completed.status = JobStatus::Completed;
    let gone = recurring_job(o, "gone", at(5));
    for j in [&paused, &unscheduled, &completed, &gone] {
        insert(&store, j).await;
    }
    let mut gone_deleted = get(&store, gone.id).await;
    gone_deleted.status = JobStatus::Deleted; // keeps its next_run
    store.update_job(&gone_deleted).await.expect("update_job");
    expected.sort_unstable();

    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .scheduled_jobs(after, 2)
            .await
            .expect("scheduled_jobs");
        assert!(page.len() <= 2, "a page of {} with limit 2", page.len());
        let Some(last) = page.last() else { break };
        after = Some(last.0);
        walked.extend(page);
        assert!(walked.len() <= expected.len(), "scheduled_jobs never ends");
    }
    assert_eq!(walked, expected);
    let all = store
        .scheduled_jobs(None, 100)
        .await
        .expect("scheduled_jobs");
    assert_eq!(all, expected);
}

// ---------------------------------------------------------------------------
// start_execution
// ---------------------------------------------------------------------------

/// The first attempt of a scheduled occurrence claims it: `next_run` moves to the
/// advance, a running execution is recorded, the job notes the attempt.
pub async fn start_claims_scheduled_occurrence<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = recurring_job(o, "tick", at(0));
    insert(&store, &j).await;
    let x = Uuid::now_v7();
    let req = start_req(
        OccurrenceKey::scheduled(j.id, at(0)),
        0,
        x,
        Some(Some(at(60))),
        "worker-7",
        at(2),
    );
    let outcome = start(&store, &req).await;

    let job_after = Job {
        next_run: Some(at(60)),
        last_executed_at: Some(at(2)),
        retry_count: 0,
        revision: 1,
        updated_at: at(2),
        ..j.clone()
    };
    let exec = Execution {
        id: x,
        job_id: j.id,
        owner: o,
        job_name: "tick".to_owned(),
        scheduled_for: at(0),
        due_at: at(0),
        attempt: 0,
        status: ExecutionStatus::Running,
        started_at: Some(at(2)),
        finished_at: None,
        duration_ms: None,
        output: None,
        error: None,
        worker: Some("worker-7".to_owned()),
        manual: false,
        manual_run: None,
        created_at: at(2),
    };
    assert_eq!(
        outcome,
        StartOutcome::Started {
            job: job_after.clone(),
            execution: exec.clone(),
            abandoned: 0,
        }
    );
    assert_eq!(get(&store, j.id).await, job_after);
    assert_eq!(get_exec(&store, o, x).await, exec);
    assert_eq!(
        pending_ids(&store, at(2)).await,
        Vec::<Uuid>::new(),
        "running since at(2) is not stale at cutoff at(2)"
    );
    assert_eq!(
        pending_ids(&store, at(3)).await,
        vec![x],
        "running since at(2) is stale at cutoff at(3)"
    );
}

/// Claiming the last occurrence of a one-time job sets `next_run` to `None`.
pub async fn start_one_time_occurrence_clears_next_run<S: JobStore>(
    factory: impl AsyncFnOnce() -> S,
) {
    let store = factory().await;
    let j = job(owner(), "once");
    insert(&store, &j).await;
    let (after, exec) = claim(&store, &j, at(0), None, at(1)).await;
    assert_eq!(after.next_run, None);
    assert_eq!(get(&store, j.id).await.next_run, None);
    assert_eq!(
        (exec.status, exec.due_at, exec.scheduled_for),
        (ExecutionStatus::Running, at(0), at(0))
    );
}

/// An occurrence that is no longer owed (claimed and finished, or `next_run` moved by
/// an update) gives `Stale` and records nothing.
pub async fn start_second_claim_is_stale<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = recurring_job(o, "tick", at(0));
    insert(&store, &j).await;
    let (_, x) = claim(&store, &j, at(0), Some(at(60)), at(1)).await;
    finish(&store, &finish_req(x.id, ExecutionStatus::Success, at(2))).await;
    let before = get(&store, j.id).await;

    let y = Uuid::now_v7();
    let req = start_req(
        OccurrenceKey::scheduled(j.id, at(0)),
        0,
        y,
        Some(Some(at(60))),
        "worker-2",
        at(3),
    );
    assert_eq!(
        start(&store, &req).await,
        StartOutcome::Skipped(SkipReason::Stale)
    );
    assert_eq!(
        get(&store, j.id).await,
        before,
        "a stale start changes nothing"
    );
    assert_eq!(
        store.get_execution(o, y).await.expect("get_execution"),
        None
    );

    // next_run moved by an update (a reschedule) before anyone claimed at(0).
    let k = recurring_job(o, "moved", at(0));
    insert(&store, &k).await;
    let mut moved = k.clone();
    moved.next_run = Some(at(30));
    let moved = store.update_job(&moved).await.expect("update_job");
    let req = start_req(
        OccurrenceKey::scheduled(k.id, at(0)),
        0,
        Uuid::now_v7(),
        Some(Some(at(60))),
        "worker-1",
        at(1),
    );
    assert_eq!(
        start(&store, &req).await,
        StartOutcome::Skipped(SkipReason::Stale)
    );
    assert_eq!(get(&store, k.id).await, moved);
    let page = store
        .list_executions(o, k.id, &ExecutionQuery::default())
        .await
        .expect("list_executions");
    assert_eq!(page.total, 0, "nothing recorded for a stale occurrence");
}

/// A scheduled occurrence of a job that is not active is `NotRunnable(status)`; a
/// queued execution it would start is cancelled; the job is left as it is.
pub async fn start_on_paused_job_is_not_runnable<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let mut j = recurring_job(o, "paused", at(0));
    j.status = JobStatus::Paused;
    j.paused_at = Some(at(0));
    insert(&store, &j).await;

    // A retry recorded before the pause.
    let mut retry = execution(&j, ExecutionStatus::Queued, at(5));
    retry.scheduled_for = at(0);
    retry.attempt = 1;
    retry.due_at = at(65);
    insert_exec(&store, &retry).await;
    let req = start_req(retry.occurrence(), 1, retry.id, None, "worker-1", at(65));
    assert_eq!(
        start(&store, &req).await,
        StartOutcome::Skipped(SkipReason::NotRunnable(JobStatus::Paused))
    );
    assert_eq!(
        get_exec(&store, o, retry.id).await.status,
        ExecutionStatus::Cancelled
    );
    assert_eq!(pending_ids(&store, at(1000)).await, Vec::<Uuid>::new());

    // A first attempt with an advance.
    let y = Uuid::now_v7();
    let req = start_req(
        OccurrenceKey::scheduled(j.id, at(0)),
        0,
        y,
        Some(Some(at(60))),
        "worker-1",
        at(1),
    );
    assert_eq!(
        start(&store, &req).await,
        StartOutcome::Skipped(SkipReason::NotRunnable(JobStatus::Paused))
    );
    assert_eq!(
        store.get_execution(o, y).await.expect("get_execution"),
        None
    );
    assert_eq!(get(&store, j.id).await, j, "the job is unchanged");

    // A completed one-time job.
    let mut done = job(o, "done");
    done.status = JobStatus::Completed;
    insert(&store, &done).await;
    let req = start_req(
        OccurrenceKey::scheduled(done.id, at(0)),
        0,
        Uuid::now_v7(),
        Some(None),
        "worker-1",
        at(1),
    );
    assert_eq!(
        start(&store, &req).await,
        StartOutcome::Skipped(SkipReason::NotRunnable(JobStatus::Completed))
    );
}

/// A manual run starts on a paused job, leaving its status and `next_run` alone.
pub async fn start_manual_run_on_paused_job<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let mut j = recurring_job(o, "paused", at(100));
    j.status = JobStatus::Paused;
    insert(&store, &j).await;
    let m = manual_execution(&j, at(5));
    insert_exec(&store, &m).await;
    assert_eq!(
        m.occurrence(),
        OccurrenceKey {
            job_id: j.id,
            scheduled_for: at(5),
            manual: Some(m.id),
        }
    );

    let req = start_req(m.occurrence(), 0, m.id, None, "worker-3", at(6));
    let (job_after, exec, abandoned) = started(start(&store, &req).await);
    let expected_exec = Execution {
        status: ExecutionStatus::Running,
        started_at: Some(at(6)),
        worker: Some("worker-3".to_owned()),
        ..m.clone()
    };
    assert_eq!(exec, expected_exec);
    assert_eq!(abandoned, 0);
    let expected_job = Job {
        last_executed_at: Some(at(6)),
        retry_count: 0,
        revision: 1,
        updated_at: at(6),
        ..j.clone()
    };
    assert_eq!(job_after, expected_job);
    assert_eq!(get(&store, j.id).await, expected_job);
    assert_eq!(get_exec(&store, o, m.id).await, expected_exec);
}

/// A manual run of a deleted job is `NotRunnable(Deleted)` and its queued
/// execution is cancelled.
pub async fn start_manual_run_on_deleted_job<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let j = job(owner(), "gone");
    insert(&store, &j).await;
    let m = manual_execution(&j, at(5));
    insert_exec(&store, &m).await;
    let deleted = delete(&store, j.id).await;
    assert_eq!(pending_ids(&store, at(0)).await, vec![m.id]);

    let req = start_req(m.occurrence(), 0, m.id, None, "worker-1", at(6));
    assert_eq!(
        start(&store, &req).await,
        StartOutcome::Skipped(SkipReason::NotRunnable(JobStatus::Deleted))
    );
    assert_eq!(
        pending_ids(&store, at(1000)).await,
        Vec::<Uuid>::new(),
        "the queued manual run is no longer queued (cancelled)"
    );
    assert_eq!(get(&store, j.id).await, deleted, "the job is unchanged");
}

/// Starting an occurrence of a job that does not exist gives `JobMissing` and
/// records nothing.
pub async fn start_missing_job<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let req = start_req(
        OccurrenceKey::scheduled(Uuid::now_v7(), at(0)),
        0,
        Uuid::now_v7(),
        Some(Some(at(60))),
        "worker-1",
        at(1),
    );
    assert_eq!(
        start(&store, &req).await,
        StartOutcome::Skipped(SkipReason::JobMissing)
    );
    assert_eq!(pending_ids(&store, at(1000)).await, Vec::<Uuid>::new());
}

/// A re-delivery of a claimed occurrence (its worker lost the lease) abandons the
/// running attempt and starts a new one, though `next_run` has moved on.
pub async fn start_redelivery_abandons_running_attempt<S: JobStore>(
    factory: impl AsyncFnOnce() -> S,
) {
    let store = factory().await;
    let o = owner();
    let j = recurring_job(o, "tick", at(0));
    insert(&store, &j).await;
    let (_, x) = claim(&store, &j, at(0), Some(at(60)), at(1)).await;

    let y = Uuid::now_v7();
    let req = start_req(
        OccurrenceKey::scheduled(j.id, at(0)),
        0,
        y,
        Some(Some(at(60))),
        "worker-2",
        at(40),
    );
    let (job_after, exec, abandoned) = started(start(&store, &req).await);
    assert_eq!(abandoned, 1);
    assert_eq!(
        (
            exec.id,
            exec.status,
            exec.scheduled_for,
            exec.due_at,
            exec.started_at,
            exec.worker.as_deref(),
            exec.created_at
        ),
        (
            y,
            ExecutionStatus::Running,
            at(0),
            at(0),
            Some(at(40)),
            Some("worker-2"),
            at(40)
        )
    );
    assert_eq!(
        (
            job_after.next_run,
            job_after.last_executed_at,
            job_after.revision
        ),
        (Some(at(60)), Some(at(40)), 2)
    );

    let old = get_exec(&store, o, x.id).await;
    assert_eq!(
        (old.status, old.error.as_deref(), old.finished_at),
        (ExecutionStatus::Failed, Some(ABANDONED), Some(at(40)))
    );
    assert_eq!(
        finish(&store, &finish_req(x.id, ExecutionStatus::Success, at(41))).await,
        None,
        "the abandoned attempt's worker is fenced off"
    );
    let done = finish(&store, &finish_req(y, ExecutionStatus::Success, at(42))).await;
    assert_eq!(
        done.map(|e| e.status),
        Some(ExecutionStatus::Success),
        "the new attempt finishes"
    );
}

/// A re-delivery of an attempt whose recorded execution (a retry, a manual run, or one
/// the safety sync re-queued) was left running by a vanished worker abandons it and
/// runs the attempt again as a new execution with a fresh id, so the history shows both
/// (step 4 of [`JobStore::start_execution`]).
pub async fn start_redelivery_of_recorded_running_execution<S: JobStore>(
    factory: impl AsyncFnOnce() -> S,
) {
    let store = factory().await;
    let o = owner();
    let j = job(o, "once");
    insert(&store, &j).await;
    let mut retry = execution(&j, ExecutionStatus::Queued, at(5));
    retry.scheduled_for = at(0);
    retry.attempt = 1;
    retry.due_at = at(60);
    insert_exec(&store, &retry).await;
    let req = start_req(retry.occurrence(), 1, retry.id, None, "worker-1", at(60));
    started(start(&store, &req).await);

    let req = start_req(retry.occurrence(), 1, retry.id, None, "worker-2", at(100));
    let (job_after, exec, abandoned) = started(start(&store, &req).await);
    assert_eq!(abandoned, 1);
    assert_ne!(
        exec.id, retry.id,
        "the attempt runs again as a new execution"
    );
    assert_eq!(
        (
            exec.status,
            exec.attempt,
            exec.scheduled_for,
            exec.started_at,
            exec.worker.as_deref()
        ),
        (
            ExecutionStatus::Running,
            1,
            at(0),
            Some(at(100)),
            Some("worker-2")
        )
    );
    assert_eq!(
        (job_after.retry_count, job_after.last_executed_at),
        (1, Some(at(100)))
    );
    let old = get_exec(&store, o, retry.id).await;
    assert_eq!(
        (old.status, old.error.as_deref()),
        (ExecutionStatus::Failed, Some(ABANDONED))
    );
    assert_eq!(get_exec(&store, o, exec.id).await, exec);
}

/// A queued execution (a retry) becomes running, keeping its record.
pub async fn start_queued_execution<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = job(o, "once");
    insert(&store, &j).await;
    let mut retry = execution(&j, ExecutionStatus::Queued, at(30));
    retry.scheduled_for = at(0);
    retry.attempt = 1;
    retry.due_at = at(90);
    insert_exec(&store, &retry).await;

    let req = start_req(retry.occurrence(), 1, retry.id, None, "worker-5", at(91));
    let (job_after, exec, abandoned) = started(start(&store, &req).await);
    let expected = Execution {
        status: ExecutionStatus::Running,
        started_at: Some(at(91)),
        worker: Some("worker-5".to_owned()),
        ..retry.clone()
    };
    assert_eq!(exec, expected, "due_at and created_at are kept");
    assert_eq!(abandoned, 0);
    assert_eq!(
        job_after,
        Job {
            last_executed_at: Some(at(91)),
            retry_count: 1,
            revision: 1,
            updated_at: at(91),
            ..j.clone()
        }
    );
    assert_eq!(get_exec(&store, o, retry.id).await, expected);
}

/// Starting an execution that has finished gives `AlreadyFinished` and changes nothing.
pub async fn start_finished_execution<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = job(o, "once");
    insert(&store, &j).await;
    let mut retry = execution(&j, ExecutionStatus::Queued, at(30));
    retry.scheduled_for = at(0);
    retry.attempt = 1;
    insert_exec(&store, &retry).await;
    let req = start_req(retry.occurrence(), 1, retry.id, None, "worker-1", at(31));
    started(start(&store, &req).await);
    let done = finish(
        &store,
        &finish_req(retry.id, ExecutionStatus::Success, at(32)),
    )
    .await
    .expect("the attempt was running");
    let job_before = get(&store, j.id).await;

    let again = start_req(retry.occurrence(), 1, retry.id, None, "worker-2", at(40));
    assert_eq!(
        start(&store, &again).await,
        StartOutcome::Skipped(SkipReason::AlreadyFinished)
    );
    assert_eq!(get_exec(&store, o, retry.id).await, done);
    assert_eq!(get(&store, j.id).await, job_before);
}

// ---------------------------------------------------------------------------
// finish_execution
// ---------------------------------------------------------------------------

/// Finishing a running attempt records its status, end, duration, output and error.
pub async fn finish_success<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = recurring_job(o, "tick", at(0));
    insert(&store, &j).await;
    let (job_before, x) = claim(&store, &j, at(0), Some(at(60)), at(1)).await;

    let req = FinishExecution {
        output: Some(json!({"sent": 3})),
        ..finish_req(x.id, ExecutionStatus::Success, at_ms(3_500))
    };
    let done = finish(&store, &req).await;
    let expected = Execution {
        status: ExecutionStatus::Success,
        finished_at: Some(at_ms(3_500)),
        duration_ms: Some(2_500),
        output: Some(json!({"sent": 3})),
        ..x.clone()
    };
    assert_eq!(done, Some(expected.clone()));
    assert_eq!(get_exec(&store, o, x.id).await, expected);
    assert_eq!(
        get(&store, j.id).await,
        job_before,
        "without job_status the job is unchanged"
    );
    assert_eq!(pending_ids(&store, at(1000)).await, Vec::<Uuid>::new());
}

/// Finishing an execution that is not running does nothing and returns `None`: not
/// the status, not the next attempt, not the job status.
pub async fn finish_is_fenced<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = job(o, "once");
    insert(&store, &j).await;

    assert_eq!(
        finish(
            &store,
            &finish_req(Uuid::now_v7(), ExecutionStatus::Success, at(1))
        )
        .await,
        None,
        "a missing execution"
    );

    let (_, x) = claim(&store, &j, at(0), None, at(1)).await;
    let failed = finish(&store, &finish_req(x.id, ExecutionStatus::Failed, at(2)))
        .await
        .expect("the attempt was running");
    let job_before = get(&store, j.id).await;
    let next = Execution {
        attempt: 1,
        due_at: at(62),
        scheduled_for: at(0),
        ..execution(&j, ExecutionStatus::Queued, at(3))
    };
    let late = FinishExecution {
        next_attempt: Some(next.clone()),
        job_status: Some(JobStatus::Completed),
        error: Some("late".to_owned()),
        ..finish_req(x.id, ExecutionStatus::Success, at(3))
    };
    assert_eq!(finish(&store, &late).await, None, "a finished execution");
    assert_eq!(get_exec(&store, o, x.id).await, failed);
    assert_eq!(
        store
            .get_execution(o, next.id)
            .await
            .expect("get_execution"),
        None,
        "no next attempt from a fenced finish"
    );
    assert_eq!(get(&store, j.id).await, job_before);

    let queued = execution(&j, ExecutionStatus::Queued, at(4));
    insert_exec(&store, &queued).await;
    assert_eq!(
        finish(
            &store,
            &finish_req(queued.id, ExecutionStatus::Success, at(5))
        )
        .await,
        None,
        "a queued execution"
    );
    assert_eq!(
        get_exec(&store, o, queued.id).await.status,
        ExecutionStatus::Queued
    );
}

/// Finishing an attempt records the queued next attempt in the same step.
pub async fn finish_inserts_next_attempt<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = job(o, "once");
    insert(&store, &j).await;
    let (_, x) = claim(&store, &j, at(0), None, at(1)).await;
    let next = Execution {
        attempt: 1,
        scheduled_for: at(0),
        due_at: at(61),
        ..execution(&j, ExecutionStatus::Queued, at(2))
    };
    let req = FinishExecution {
        error: Some("boom".to_owned()),
        next_attempt: Some(next.clone()),
        ..finish_req(x.id, ExecutionStatus::Failed, at(2))
    };
    let done = finish(&store, &req).await.expect("the attempt was running");
    assert_eq!(
        (
            done.status,
            done.error.as_deref(),
            done.duration_ms,
            done.output
        ),
        (ExecutionStatus::Failed, Some("boom"), Some(1_000), None)
    );
    assert_eq!(get_exec(&store, o, next.id).await, next);
    assert_eq!(pending_ids(&store, at(1000)).await, vec![next.id]);
}

/// Finishing an attempt applies `job_status`, bumping the job's revision.
pub async fn finish_applies_job_status<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = job(o, "once");
    insert(&store, &j).await;
    let (started_job, x) = claim(&store, &j, at(0), None, at(1)).await;
    let req = FinishExecution {
        job_status: Some(JobStatus::Completed),
        ..finish_req(x.id, ExecutionStatus::Success, at(3))
    };
    finish(&store, &req).await.expect("the attempt was running");
    let after = get(&store, j.id).await;
    assert_eq!(
        (after.status, after.revision, after.updated_at),
        (JobStatus::Completed, started_job.revision + 1, at(3))
    );
    assert_eq!(
        after,
        Job {
            status: JobStatus::Completed,
            revision: started_job.revision + 1,
            updated_at: at(3),
            ..started_job
        }
    );
}

/// `job_status` is not applied to a job deleted while its attempt ran.
pub async fn finish_keeps_deleted_job_deleted<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = job(o, "once");
    insert(&store, &j).await;
    let (_, x) = claim(&store, &j, at(0), None, at(1)).await;
    let deleted = delete(&store, j.id).await;
    let req = FinishExecution {
        job_status: Some(JobStatus::Failed),
        error: Some("boom".to_owned()),
        ..finish_req(x.id, ExecutionStatus::Failed, at(3))
    };
    let done = finish(&store, &req).await;
    assert_eq!(
        done.map(|e| (e.status, e.finished_at)),
        Some((ExecutionStatus::Failed, Some(at(3)))),
        "the attempt still finishes"
    );
    assert_eq!(get(&store, j.id).await, deleted, "the job stays deleted");
}

// ---------------------------------------------------------------------------
// Reads of executions, stats and logs
// ---------------------------------------------------------------------------

/// `get_execution` returns only the owner's executions of jobs that are not deleted.
pub async fn get_execution_scoping<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = job(o, "once");
    insert(&store, &j).await;
    let e = execution(&j, ExecutionStatus::Success, at(1));
    insert_exec(&store, &e).await;

    assert_eq!(get_exec(&store, o, e.id).await, e);
    assert_eq!(
        store
            .get_execution(owner(), e.id)
            .await
            .expect("get_execution"),
        None,
        "another owner's"
    );
    assert_eq!(
        store
            .get_execution(o, Uuid::now_v7())
            .await
            .expect("get_execution"),
        None,
        "a missing one"
    );
    delete(&store, j.id).await;
    assert_eq!(
        store.get_execution(o, e.id).await.expect("get_execution"),
        None,
        "one of a deleted job"
    );
}

/// `list_executions` pages a job's executions newest first (by creation, then id),
/// filters by status, and is empty for another owner or a deleted job.
pub async fn list_executions_order_filter_scoping<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = recurring_job(o, "tick", at(0));
    let k = recurring_job(o, "other", at(0));
    insert(&store, &j).await;
    insert(&store, &k).await;
    let ids = sorted_ids(4);
    let rows = [
        (ExecutionStatus::Success, at(10)),
        (ExecutionStatus::Failed, at(20)),
        (ExecutionStatus::Success, at(20)),
        (ExecutionStatus::Queued, at(30)),
    ];
    let mut execs = Vec::new();
    // Inserted out of order: the store sorts.
    for i in [2, 0, 3, 1] {
        let (status, created) = rows[i];
        let e = Execution {
            id: ids[i],
            ..execution(&j, status, created)
        };
        insert_exec(&store, &e).await;
        execs.push((i, e));
    }
    execs.sort_by_key(|(i, _)| *i);
    let e: Vec<Execution> = execs.into_iter().map(|(_, e)| e).collect();
    insert_exec(&store, &execution(&k, ExecutionStatus::Success, at(40))).await;

    let list = async |owner: Uuid, job: Uuid, q: ExecutionQuery| {
        store
            .list_executions(owner, job, &q)
            .await
            .expect("list_executions")
    };
    let page = list(o, j.id, ExecutionQuery::default()).await;
    assert_eq!(
        page.items,
        vec![e[3].clone(), e[2].clone(), e[1].clone(), e[0].clone()]
    );
    assert_eq!((page.total, page.page, page.limit), (4, 1, 20));

    let q = ExecutionQuery {
        status: Some(ExecutionStatus::Success),
        ..ExecutionQuery::default()
    };
    let page = list(o, j.id, q).await;
    assert_eq!(page.items, vec![e[2].clone(), e[0].clone()]);
    assert_eq!(page.total, 2);

    let q = ExecutionQuery {
        page: 2,
        limit: 3,
        ..ExecutionQuery::default()
    };
    let page = list(o, j.id, q).await;
    assert_eq!(page.items, vec![e[0].clone()]);
    assert_eq!((page.total, page.page, page.limit), (4, 2, 3));

    let page = list(owner(), j.id, ExecutionQuery::default()).await;
    assert_eq!((page.items.len(), page.total), (0, 0), "another owner");
    delete(&store, j.id).await;
    let page = list(o, j.id, ExecutionQuery::default()).await;
    assert_eq!((page.items.len(), page.total), (0, 0), "a deleted job");
}

/// `pending_executions` returns every queued execution and every running one that
/// started before the cutoff, by id, in keyset pages.
pub async fn pending_executions_keyset<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let (o1, o2) = (owner(), owner());
    let j = job(o1, "one");
    let k = job(o2, "two");
    insert(&store, &j).await;
    insert(&store, &k).await;
    let ids = sorted_ids(7);
    let mut rows = [
        execution(&j, ExecutionStatus::Queued, at(5)),
        execution(&k, ExecutionStatus::Running, at(10)), // stale at cutoff at(50)
        execution(&j, ExecutionStatus::Success, at(11)),
        execution(&k, ExecutionStatus::Queued, at(500)),
        execution(&j, ExecutionStatus::Running, at(50)), // not before the cutoff
        execution(&j, ExecutionStatus::Cancelled, at(12)),
        execution(&j, ExecutionStatus::Running, at(49)), // stale
    ];
    // Ids ascend in this order, against the order of creation.
    for (row, id) in rows.iter_mut().zip([
        &ids[3], &ids[0], &ids[6], &ids[1], &ids[5], &ids[4], &ids[2],
    ]) {
        row.id = *id;
    }
    for row in &rows {
        insert_exec(&store, row).await;
    }
    let expected: Vec<Execution> = {
        let mut v = vec![
            rows[0].clone(),
            rows[1].clone(),
            rows[3].clone(),
            rows[6].clone(),
        ];
        v.sort_by_key(|e| e.id);
        v
    };

    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .pending_executions(after, 3, at(50))
            .await
            .expect("pending_executions");
        assert!(page.len() <= 3, "a page of {} with limit 3", page.len());
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        walked.extend(page);
        assert!(
            walked.len() <= expected.len(),
            "pending_executions never ends"
        );
    }
    assert_eq!(walked, expected);
    let first = store
        .pending_executions(None, 2, at(50))
        .await
        .expect("pending_executions");
    assert_eq!(first, expected[..2].to_vec());
}

/// `job_stats` counts the job's executions by outcome, averages the recorded
/// durations and reports the latest start; zeros for another owner or a deleted job.
/// `find_job_with_stats` gives the same job and figures, or `None` for those.
pub async fn job_stats_numbers<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = recurring_job(o, "tick", at(0));
    let k = recurring_job(o, "other", at(0));
    insert(&store, &j).await;
    insert(&store, &k).await;
    let with = |status, started: i64, duration: Option<u64>| {
        let mut e = execution(&j, status, at(started));
        e.duration_ms = duration;
        e
    };
    let rows = [
        with(ExecutionStatus::Success, 10, Some(1_000)),
        with(ExecutionStatus::Success, 20, Some(3_000)),
        with(ExecutionStatus::Failed, 30, Some(2_000)),
        with(ExecutionStatus::Timeout, 40, Some(6_000)),
        with(ExecutionStatus::Cancelled, 45, None),
        with(ExecutionStatus::Running, 50, None),
        with(ExecutionStatus::Queued, 60, None),
    ];
    for row in &rows {
        insert_exec(&store, row).await;
    }
    insert_exec(&store, &execution(&k, ExecutionStatus::Success, at(99))).await;

    let stats = store.job_stats(o, j.id).await.expect("job_stats");
    assert_eq!(
        stats,
        JobStats {
            total_executions: 7,
            successful_executions: 2,
            failed_executions: 2,
            average_duration_ms: Some(3_000.0),
            last_execution_time: Some(at(50)),
        }
    );
    let found = store.find_job(o, j.id).await.expect("find_job");
    assert_eq!(
        store
            .find_job_with_stats(o, j.id)
            .await
            .expect("find_job_with_stats"),
        Some((found.expect("the job"), stats)),
        "find_job_with_stats reads both"
    );
    assert_eq!(
        store
            .find_job_with_stats(owner(), j.id)
            .await
            .expect("find_job_with_stats"),
        None,
        "another owner's job is not found with its statistics"
    );
    assert_eq!(
        store.job_stats(owner(), j.id).await.expect("job_stats"),
        JobStats::default(),
        "another owner"
    );
    let empty = recurring_job(o, "empty", at(0));
    insert(&store, &empty).await;
    assert_eq!(
        store.job_stats(o, empty.id).await.expect("job_stats"),
        JobStats::default(),
        "a job without executions"
    );
    delete(&store, j.id).await;
    assert_eq!(
        store.job_stats(o, j.id).await.expect("job_stats"),
        JobStats::default(),
        "a deleted job"
    );
    assert_eq!(
        store
            .find_job_with_stats(o, j.id)
            .await
            .expect("find_job_with_stats"),
        None,
        "a deleted job is not found with its statistics"
    );
    let (_, none) = store
        .find_job_with_stats(o, empty.id)
        .await
        .expect("find_job_with_stats")
        .expect("the empty job");
    assert_eq!(none, JobStats::default(), "a job without executions");
}

/// `owner_stats` counts the owner's jobs by status and kind and sums their executions,
/// leaving out deleted jobs, their executions and other owners' rows.
pub async fn owner_stats_numbers<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    assert_eq!(
        store.owner_stats(o).await.expect("owner_stats"),
        OwnerStats::default(),
        "nothing yet"
    );
    let cron = recurring_job(o, "tick", at(0));
    let mut paused = recurring_job(o, "paused", at(0));
    paused.status = JobStatus::Paused;
    paused.next_run = None;
    let mut done = job(o, "done");
    done.status = JobStatus::Completed;
    done.next_run = None;
    let mut broken = job(o, "broken");
    broken.status = JobStatus::Failed;
    broken.next_run = None;
    let waiting = job(o, "waiting");
    let doomed = recurring_job(o, "deleted later", at(0));
    let foreign = recurring_job(owner(), "someone else's", at(0));
    for j in [&cron, &paused, &done, &broken, &waiting, &doomed, &foreign] {
        insert(&store, j).await;
    }
    let timed = |j: &Job, status, t: i64, ms: Option<u64>| {
        let mut e = execution(j, status, at(t));
        e.duration_ms = ms;
        e
    };
    for e in [
        timed(&cron, ExecutionStatus::Success, 1, Some(500)),
        timed(&cron, ExecutionStatus::Success, 2, Some(1_500)),
        timed(&done, ExecutionStatus::Success, 3, Some(4_000)),
        timed(&broken, ExecutionStatus::Failed, 4, Some(2_000)),
        timed(&broken, ExecutionStatus::Timeout, 5, Some(7_000)),
        timed(&cron, ExecutionStatus::Cancelled, 6, None),
        timed(&waiting, ExecutionStatus::Queued, 7, None),
        timed(&doomed, ExecutionStatus::Success, 8, Some(90_000)),
        timed(&foreign, ExecutionStatus::Failed, 9, Some(100)),
    ] {
        insert_exec(&store, &e).await;
    }
    delete(&store, doomed.id).await;
    assert_eq!(
        store.owner_stats(o).await.expect("owner_stats"),
        OwnerStats {
            jobs: JobCounts {
                total: 5,
                active: 2,
                paused: 1,
                completed: 1,
                failed: 1,
                one_time: 3,
                recurring: 2,
            },
            executions: ExecutionSummary {
                total: 7,
                successful: 3,
                failed: 2,
                average_duration_ms: Some(3_000.0),
                max_duration_ms: Some(7_000),
                min_duration_ms: Some(500),
            },
        }
    );
}

/// `recent_executions` lists the owner's latest executions across jobs, newest first,
/// without deleted jobs' or other owners' executions.
pub async fn recent_executions_across_jobs<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let a = recurring_job(o, "a", at(0));
    let b = recurring_job(o, "b", at(0));
    let gone = recurring_job(o, "gone", at(0));
    let foreign = recurring_job(owner(), "foreign", at(0));
    for j in [&a, &b, &gone, &foreign] {
        insert(&store, j).await;
    }
    let ids = sorted_ids(2);
    let mut tie = [
        execution(&a, ExecutionStatus::Success, at(30)),
        execution(&b, ExecutionStatus::Failed, at(30)),
    ];
    tie[0].id = ids[0];
    tie[1].id = ids[1];
    let rows = [
        execution(&a, ExecutionStatus::Success, at(10)),
        execution(&b, ExecutionStatus::Running, at(20)),
        tie[0].clone(),
        tie[1].clone(),
        execution(&gone, ExecutionStatus::Success, at(40)),
        execution(&foreign, ExecutionStatus::Success, at(50)),
    ];
    for e in &rows {
        insert_exec(&store, e).await;
    }
    delete(&store, gone.id).await;
    let recent = |limit| {
        let store = &store;
        async move {
            store
                .recent_executions(o, limit)
                .await
                .expect("recent_executions")
                .into_iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        recent(10).await,
        vec![rows[3].id, rows[2].id, rows[1].id, rows[0].id],
        "newest first, ties by id descending"
    );
    assert_eq!(recent(2).await, vec![rows[3].id, rows[2].id]);
    assert_eq!(
        store
            .recent_executions(owner(), 10)
            .await
            .expect("recent_executions"),
        Vec::new()
    );
}

/// `logs` returns an execution's entries oldest first (by timestamp, then id), only
/// to its owner, and nothing once the job is deleted.
pub async fn logs_ordered_and_scoped<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = job(o, "once");
    insert(&store, &j).await;
    let x = execution(&j, ExecutionStatus::Success, at(1));
    let y = execution(&j, ExecutionStatus::Success, at(2));
    insert_exec(&store, &x).await;
    insert_exec(&store, &y).await;

    let ids = sorted_ids(4);
    let mut l = [
        log_entry(&x, at(3), "third"),
        log_entry(&x, at(1), "first"),
        log_entry(&x, at(2), "second (a)"),
        log_entry(&x, at(2), "second (b)"),
    ];
    for (entry, id) in l.iter_mut().zip([ids[0], ids[1], ids[2], ids[3]]) {
        entry.id = id;
    }
    store
        .append_logs(&[l[0].clone(), l[1].clone()])
        .await
        .expect("append_logs");
    store
        .append_logs(&[l[3].clone(), log_entry(&y, at(0), "other execution")])
        .await
        .expect("append_logs");
    store
        .append_logs(&[l[2].clone()])
        .await
        .expect("append_logs");
    store.append_logs(&[]).await.expect("append_logs (empty)");

    assert_eq!(
        store.logs(o, x.id).await.expect("logs"),
        vec![l[1].clone(), l[2].clone(), l[3].clone(), l[0].clone()]
    );
    assert_eq!(
        store.logs(owner(), x.id).await.expect("logs"),
        Vec::new(),
        "another owner"
    );
    assert_eq!(
        store.logs(o, Uuid::now_v7()).await.expect("logs"),
        Vec::new(),
        "an unknown execution"
    );
    delete(&store, j.id).await;
    assert_eq!(
        store.logs(o, x.id).await.expect("logs"),
        Vec::new(),
        "a deleted job"
    );
}

// ---------------------------------------------------------------------------
// Failure notifications (the outbox)
// ---------------------------------------------------------------------------

fn channels(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn notify_on(names: &[&str]) -> Vec<NewNotification> {
    names
        .iter()
        .map(|channel| NewNotification {
            id: Uuid::now_v7(),
            channel: (*channel).to_owned(),
        })
        .collect()
}

/// Runs the occurrence of `job` at `scheduled_for` and fails it for good at
/// `failed_at`, recording notifications on `on`. Returns the failed execution.
async fn fail_for_good<S: JobStore>(
    store: &S,
    job: &Job,
    scheduled_for: DateTime<Utc>,
    failed_at: DateTime<Utc>,
    on: &[&str],
) -> Execution {
    let (_, x) = claim(store, job, scheduled_for, None, scheduled_for).await;
    let req = FinishExecution {
        error: Some("boom".to_owned()),
        notifications: notify_on(on),
        ..finish_req(x.id, ExecutionStatus::Failed, failed_at)
    };
    finish(store, &req).await.expect("the attempt was running")
}

async fn claim_notes<S: JobStore>(
    store: &S,
    on: &[&str],
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: usize,
) -> Vec<ClaimedNotification> {
    store
        .claim_notifications(&channels(on), now, lease_until, limit)
        .await
        .expect("claim_notifications")
}

async fn notes_of<S: JobStore>(store: &S, execution_id: Uuid) -> Vec<Notification> {
    store
        .notifications(execution_id)
        .await
        .expect("notifications")
}

/// `finish_execution` records one pending notification per channel with the final
/// failure, and none when the finish is fenced.
pub async fn finish_records_notifications<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = job(o, "once");
    insert(&store, &j).await;
    let (_, x) = claim(&store, &j, at(0), None, at(1)).await;
    let asked = notify_on(&["webhook", "email"]);
    let req = FinishExecution {
        error: Some("boom".to_owned()),
        notifications: asked.clone(),
        ..finish_req(x.id, ExecutionStatus::Failed, at(5))
    };
    finish(&store, &req).await.expect("the attempt was running");
    let notes = notes_of(&store, x.id).await;
    let expected: Vec<Notification> = [&asked[1], &asked[0]]
        .into_iter()
        .map(|new| Notification {
            id: new.id,
            channel: new.channel.clone(),
            job_id: j.id,
            owner: o,
            execution_id: x.id,
            scheduled_for: at(0),
            manual_run: None,
            status: NotificationStatus::Pending,
            attempts: 0,
            due_at: at(5),
            last_error: None,
            created_at: at(5),
            finished_at: None,
        })
        .collect();
    assert_eq!(
        notes, expected,
        "one pending row per channel, sorted by channel"
    );

    let late = FinishExecution {
        notifications: notify_on(&["email", "sms"]),
        ..finish_req(x.id, ExecutionStatus::Failed, at(6))
    };
    assert_eq!(finish(&store, &late).await, None);
    assert_eq!(
        notes_of(&store, x.id).await,
        expected,
        "a fenced finish records nothing"
    );
    assert_eq!(notes_of(&store, Uuid::now_v7()).await, Vec::new());
}

/// An occurrence gets at most one notification per channel, even when a re-delivery
/// fails it for good again; a manual run of the same instant is another occurrence.
pub async fn notifications_dedupe_per_occurrence<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = recurring_job(o, "every minute", at(60));
    insert(&store, &j).await;
    let first = fail_for_good(&store, &j, at(60), at(61), &["email"]).await;

    // A re-delivery of the same occurrence (its next attempt, say) failing again.
    let again = Execution {
        attempt: 1,
        scheduled_for: at(60),
        ..execution(&j, ExecutionStatus::Queued, at(62))
    };
    insert_exec(&store, &again).await;
    let req = start_req(
        OccurrenceKey::scheduled(j.id, at(60)),
        1,
        again.id,
        None,
        "worker-2",
        at(63),
    );
    let (_, running, _) = started(start(&store, &req).await);
    let finish_again = FinishExecution {
        error: Some("boom again".to_owned()),
        notifications: notify_on(&["email", "webhook"]),
        ..finish_req(running.id, ExecutionStatus::Failed, at(64))
    };
    finish(&store, &finish_again).await.expect("running");
    assert_eq!(notes_of(&store, first.id).await.len(), 1);
    let second: Vec<String> = notes_of(&store, running.id)
        .await
        .into_iter()
        .map(|n| n.channel)
        .collect();
    assert_eq!(
        second,
        vec!["webhook".to_owned()],
        "email was recorded already"
    );

    // A manual run at the same instant is its own occurrence.
    let manual = Execution {
        scheduled_for: at(60),
        ..manual_execution(&j, at(60))
    };
    insert_exec(&store, &manual).await;
    let req = start_req(manual.occurrence(), 0, manual.id, None, "worker-1", at(65));
    started(start(&store, &req).await);
    let finish_manual = FinishExecution {
        notifications: notify_on(&["email"]),
        ..finish_req(manual.id, ExecutionStatus::Failed, at(66))
    };
    finish(&store, &finish_manual).await.expect("running");
    let notes = notes_of(&store, manual.id).await;
    assert_eq!(
        notes
            .iter()
            .map(|n| (n.channel.as_str(), n.manual_run))
            .collect::<Vec<_>>(),
        vec![("email", Some(manual.id))]
    );
}

/// `claim_notifications` takes due notifications of the given channels, earliest
/// first, at most `limit`, each once per lease; a lapsed claim can be taken again.
pub async fn claim_notifications_leases<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let mut failed = Vec::new();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let j = job(o, name);
        insert(&store, &j).await;
        let t = 10 * i64::try_from(i).expect("small");
        failed.push((
            j.clone(),
            fail_for_good(
                &store,
                &j,
                j.next_run.expect("due"),
                at(t + 1),
                &["email", "webhook"],
            )
            .await,
        ));
    }
    assert_eq!(
        claim_notes(&store, &["email"], at(0), at(100), 10).await,
        Vec::new(),
        "nothing is due before it was recorded"
    );
    assert_eq!(
        claim_notes(&store, &["sms"], at(50), at(100), 10).await,
        Vec::new(),
        "only the channels asked for"
    );
    // The first job is deleted meanwhile: its notification is still delivered.
    let deleted = delete(&store, failed[0].0.id).await;

    let first = claim_notes(&store, &["email"], at(15), at(100), 10).await;
    assert_eq!(
        first
            .iter()
            .map(|c| (
                c.notification.execution_id,
                c.notification.attempts,
                c.notification.due_at
            ))
            .collect::<Vec<_>>(),
        vec![(failed[0].1.id, 1, at(100)), (failed[1].1.id, 1, at(100))],
        "the two due at 15, earliest first, claimed until 100"
    );
    assert_eq!(first[0].job, deleted, "the job as stored, deleted or not");
    assert_eq!(first[0].execution, failed[0].1, "the failed execution");
    assert_eq!(first[0].notification.channel, "email");

    let rest = claim_notes(&store, &["email", "webhook"], at(50), at(200), 2).await;
    assert_eq!(
        rest.iter()
            .map(|c| (c.notification.channel.as_str(), c.notification.execution_id))
            .collect::<Vec<_>>(),
        vec![("webhook", failed[0].1.id), ("webhook", failed[1].1.id)],
        "claimed ones are skipped until their lease ends; limit respected"
    );
    assert_eq!(
        store
            .next_notification_due(&channels(&["email"]))
            .await
            .expect("next_notification_due"),
        Some(at(21)),
        "the third job's email"
    );
    let lapsed = claim_notes(&store, &["email"], at(100), at(300), 10).await;
    assert_eq!(
        lapsed
            .iter()
            .map(|c| (c.notification.execution_id, c.notification.attempts))
            .collect::<Vec<_>>(),
        vec![
            (failed[2].1.id, 1),
            (failed[0].1.id, 2),
            (failed[1].1.id, 2)
        ],
        "due at 21, then the two whose lease lapsed at 100"
    );
}

/// `settle_notification` records the outcome and its log line in one step, fenced by
/// the attempt number; settled notifications are never claimed again.
pub async fn settle_notification_outcomes<S: JobStore>(factory: impl AsyncFnOnce() -> S) {
    let store = factory().await;
    let o = owner();
    let j = job(o, "once");
    insert(&store, &j).await;
    let x = fail_for_good(&store, &j, at(0), at(1), &["email", "webhook", "sms"]).await;
    let claimed = claim_notes(&store, &["email", "webhook", "sms"], at(1), at(31), 10).await;
    assert_eq!(claimed.len(), 3);
    let by = |channel: &str| -> Notification {
        claimed
            .iter()
            .find(|c| c.notification.channel == channel)
            .map(|c| c.notification.clone())
            .unwrap_or_else(|| panic!("{channel} claimed"))
    };
    let settle =
        |n: &Notification, attempt: u32, outcome: NotificationOutcome, t: i64, msg: &str| {
            let mut log = super::log_entry(&x, at(t), msg);
            log.level = LogLevel::Warn;
            SettleNotification {
                id: n.id,
                attempt,
                outcome,
                at: at(t),
                log,
            }
        };
    let email = by("email");
    let retry = settle(
        &email,
        1,
        NotificationOutcome::Retry {
            at: at(40),
            error: "connection refused".to_owned(),
        },
        2,
        "attempt 1 failed",
    );
    assert!(store.settle_notification(&retry).await.expect("settle"));
    let stale = settle(&email, 7, NotificationOutcome::Sent, 3, "stale");
    assert!(
        !store.settle_notification(&stale).await.expect("settle"),
        "a stale attempt"
    );

    let webhook = by("webhook");
    let sent = settle(&webhook, 1, NotificationOutcome::Sent, 4, "sent");
    assert!(store.settle_notification(&sent).await.expect("settle"));
    let sms = by("sms");
    let failed = settle(
        &sms,
        1,
        NotificationOutcome::Failed {
            error: "550 no such user".to_owned(),
        },
        5,
        "failed",
    );
    assert!(store.settle_notification(&failed).await.expect("settle"));

    let mut expected_email = email.clone();
    retry.apply(&mut expected_email);
    let mut expected_webhook = webhook.clone();
    sent.apply(&mut expected_webhook);
    let mut expected_sms = sms.clone();
    failed.apply(&mut expected_sms);
    assert_eq!(
        (
            expected_email.status,
            expected_email.due_at,
            expected_webhook.status,
            expected_webhook.finished_at,
            expected_sms.status
        ),
        (
            NotificationStatus::Pending,
            at(40),
            NotificationStatus::Sent,
            Some(at(4)),
            NotificationStatus::Failed
        )
    );
    assert_eq!(
        notes_of(&store, x.id).await,
        vec![expected_email, expected_sms, expected_webhook],
        "stored as applied"
    );
    assert_eq!(
        store
            .logs(o, x.id)
            .await
            .expect("logs")
            .into_iter()
            .map(|l| l.message)
            .collect::<Vec<_>>(),
        vec!["attempt 1 failed", "sent", "failed"],
        "one line per settled attempt, none for refused ones"
    );
    assert_eq!(
        store
            .next_notification_due(&channels(&["email", "webhook", "sms"]))
            .await
            .expect("next_notification_due"),
        Some(at(40)),
        "only the retry is pending"
    );
    assert_eq!(
        claim_notes(&store, &["email", "webhook", "sms"], at(39), at(70), 10).await,
        Vec::new()
    );
    let second = claim_notes(&store, &["email", "webhook", "sms"], at(40), at(70), 10).await;
    assert_eq!(
        second
            .iter()
            .map(|c| (
                c.notification.channel.as_str(),
                c.notification.attempts,
                c.notification.last_error.as_deref()
            ))
            .collect::<Vec<_>>(),
        vec![("email", 2, Some("connection refused"))]
    );
    let skipped = settle(
        &second[0].notification,
        2,
        NotificationOutcome::Skipped {
            reason: "no address".to_owned(),
        },
        41,
        "skipped",
    );
    assert!(store.settle_notification(&skipped).await.expect("settle"));
    assert_eq!(
        store
            .next_notification_due(&channels(&["email", "webhook", "sms"]))
            .await
            .expect("next_notification_due"),
        None
    );
    let email_now = notes_of(&store, x.id).await.remove(0);
    assert_eq!(
        (
            email_now.status,
            email_now.attempts,
            email_now.last_error.as_deref(),
            email_now.finished_at
        ),
        (
            NotificationStatus::Skipped,
            2,
            Some("no address"),
            Some(at(41))
        )
    );
}
