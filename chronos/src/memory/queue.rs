//! The in-memory [`Queue`].

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::clock::{Clock, SystemClock, after};
use crate::model::OccurrenceKey;
use crate::queue::{
    Lease, Queue, QueueCounts, QueueEntry, QueueError, Reservation, wait_until_due,
};

/// A [`Queue`] in memory: one mutex over a map of entries and two ordered sets
/// (waiting entries by `run_at`, leases by expiry), so that enqueue, reserve and
/// ack each cost a few hash and B-tree operations.
///
/// Clones share the same entries. Time comes from the [`Clock`] given to
/// [`MemoryQueue::new`]; [`Queue::wait`] sleeps on that clock until the earliest
/// entry is due or lease expires, and is woken at once by an enqueue or a retry.
///
/// A lease that has expired stays valid (its holder may still ack, extend or retry
/// it) until a [`Queue::reserve`] delivers the entry again; it is counted as leased
/// until then.
#[derive(Clone)]
pub struct MemoryQueue {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Signalled when an entry is added or released.
    changed: Notify,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct State {
    slots: HashMap<OccurrenceKey, Slot>,
    /// Entries in [`SlotState::Waiting`] or [`SlotState::Lapsed`], as `(run_at, key)`.
    waiting: BTreeSet<(DateTime<Utc>, OccurrenceKey)>,
    /// Entries in [`SlotState::Leased`], as `(expires_at, key)`.
    leases: BTreeSet<(DateTime<Utc>, OccurrenceKey)>,
    /// How many slots are [`SlotState::Lapsed`].
    lapsed: u64,
    /// The last fencing token handed out.
    last_token: u64,
}

struct Slot {
    entry: QueueEntry,
    state: SlotState,
    /// Deliveries since it was enqueued or retried.
    deliveries: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// Not leased; deliverable from `entry.run_at`.
    Waiting,
    /// Held by the lease with this token until `expires_at`.
    Leased {
        token: u64,
        expires_at: DateTime<Utc>,
    },
    /// The lease with this token expired: deliverable again, and the old lease stays
    /// valid until it is.
    Lapsed { token: u64 },
}

impl State {
    /// Makes expired leases deliverable again.
    fn release_lapsed(&mut self, now: DateTime<Utc>) {
        while let Some(&(expires_at, key)) = self.leases.first() {
            if expires_at > now {
                break;
            }
            self.leases.pop_first();
            if let Some(slot) = self.slots.get_mut(&key)
                && let SlotState::Leased { token, .. } = slot.state
            {
                slot.state = SlotState::Lapsed { token };
                self.waiting.insert((slot.entry.run_at, key));
                self.lapsed += 1;
            }
        }
    }

    /// The slot this lease holds, if it still does.
    fn held(&mut self, lease: &Lease) -> Result<&mut Slot, QueueError> {
        match self.slots.get_mut(&lease.key) {
            Some(slot)
                if matches!(
                    slot.state,
                    SlotState::Leased { token, .. } | SlotState::Lapsed { token }
                    if token == lease.token
                ) =>
            {
                Ok(slot)
            }
            _ => Err(QueueError::LeaseLost { key: lease.key }),
        }
    }

    /// Takes the entry with this key out of the ordered set its `state` puts it in.
    fn unlink(&mut self, key: OccurrenceKey, state: SlotState, run_at: DateTime<Utc>) {
        match state {
            SlotState::Waiting => {
                self.waiting.remove(&(run_at, key));
            }
            SlotState::Lapsed { .. } => {
                self.waiting.remove(&(run_at, key));
                self.lapsed -= 1;
            }
            SlotState::Leased { expires_at, .. } => {
                self.leases.remove(&(expires_at, key));
            }
        }
    }
}

impl MemoryQueue {
    /// An empty queue that tells time by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                changed: Notify::new(),
                clock,
            }),
        }
    }

    /// An empty queue on the wall clock ([`SystemClock`]).
    pub fn with_system_clock() -> Self {
        Self::new(Arc::new(SystemClock))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::with_system_clock()
    }
}

impl fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("MemoryQueue")
            .field("entries", &st.slots.len())
            .field("leased", &(st.leases.len() as u64 + st.lapsed))
            .field("clock", &self.inner.clock)
            .finish()
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn enqueue(&self, entries: &[QueueEntry]) -> Result<usize, QueueError> {
        let added = {
            let mut guard = self.lock();
            let st = &mut *guard;
            let mut added = 0;
            for entry in entries {
                if let std::collections::hash_map::Entry::Vacant(v) = st.slots.entry(entry.key) {
                    v.insert(Slot {
                        entry: entry.clone(),
                        state: SlotState::Waiting,
                        deliveries: 0,
                    });
                    st.waiting.insert((entry.run_at, entry.key));
                    added += 1;
                }
            }
            added
        };
        if added > 0 {
            self.inner.changed.notify_waiters();
        }
        Ok(added)
    }

    async fn reserve(
        &self,
        _worker: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Reservation>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let now = self.now();
        let expires_at = after(now, lease);
        let mut guard = self.lock();
        let st = &mut *guard;
        st.release_lapsed(now);
        let mut out = Vec::with_capacity(max.min(st.waiting.len()));
        while out.len() < max {
            let Some(&(run_at, key)) = st.waiting.first() else {
                break;
            };
            if run_at > now {
                break;
            }
            st.waiting.pop_first();
            let Some(slot) = st.slots.get_mut(&key) else {
                continue;
            };
            if let SlotState::Lapsed { .. } = slot.state {
                st.lapsed -= 1;
            }
            st.last_token += 1;
            let token = st.last_token;
            slot.state = SlotState::Leased { token, expires_at };
            slot.deliveries += 1;
            st.leases.insert((expires_at, key));
            out.push(Reservation {
                entry: slot.entry.clone(),
                lease: Lease {
                    key,
                    token,
                    expires_at,
                },
                deliveries: slot.deliveries,
            });
        }
        Ok(out)
    }

    async fn wait(&self) -> Result<(), QueueError> {
        let earliest = async {
            let st = self.lock();
            let due = st.waiting.first().map(|(t, _)| *t);
            let lapse = st.leases.first().map(|(t, _)| *t);
            Ok(match (due, lapse) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
        };
        wait_until_due(&self.inner.changed, &*self.inner.clock, earliest).await
    }

    async fn extend(&self, lease: &Lease, by: Duration) -> Result<Lease, QueueError> {
        let expires_at = after(self.now(), by);
        let mut guard = self.lock();
        let st = &mut *guard;
        let slot = st.held(lease)?;
        let (state, run_at) = (slot.state, slot.entry.run_at);
        slot.state = SlotState::Leased {
            token: lease.token,
            expires_at,
        };
        st.unlink(lease.key, state, run_at);
        st.leases.insert((expires_at, lease.key));
        Ok(Lease {
            key: lease.key,
            token: lease.token,
            expires_at,
        })
    }

    async fn ack(&self, lease: &Lease) -> Result<(), QueueError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let slot = st.held(lease)?;
        let (state, run_at) = (slot.state, slot.entry.run_at);
        st.slots.remove(&lease.key);
        st.unlink(lease.key, state, run_at);
        Ok(())
    }

    async fn retry(
        &self,
        lease: &Lease,
        run_at: DateTime<Utc>,
        attempt: u32,
        execution_id: Option<Uuid>,
    ) -> Result<(), QueueError> {
        {
            let mut guard = self.lock();
            let st = &mut *guard;
            let slot = st.held(lease)?;
            let (state, old_run_at) = (slot.state, slot.entry.run_at);
            slot.state = SlotState::Waiting;
            slot.deliveries = 0;
            slot.entry.run_at = run_at;
            slot.entry.attempt = attempt;
            slot.entry.execution_id = execution_id;
            st.unlink(lease.key, state, old_run_at);
            st.waiting.insert((run_at, lease.key));
        }
        self.inner.changed.notify_waiters();
        Ok(())
    }

    async fn remove(&self, key: &OccurrenceKey) -> Result<bool, QueueError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(slot) = st.slots.remove(key) else {
            return Ok(false);
        };
        st.unlink(*key, slot.state, slot.entry.run_at);
        Ok(true)
    }

    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let now = self.now();
        let st = self.lock();
        let waiting = st.waiting.len() as u64 - st.lapsed;
        let ready = st
            .waiting
            .iter()
            .take_while(|(run_at, _)| *run_at <= now)
            .filter(|(_, key)| {
                st.slots
                    .get(key)
                    .is_some_and(|s| s.state == SlotState::Waiting)
            })
            .count() as u64;
        Ok(QueueCounts {
            scheduled: waiting - ready,
            ready,
            leased: st.leases.len() as u64 + st.lapsed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const LEASE: Duration = Duration::from_secs(30);

    fn setup() -> (Arc<ManualClock>, MemoryQueue) {
        let start = DateTime::from_timestamp(1_767_225_600, 0).expect("a valid instant");
        let clock = Arc::new(ManualClock::new(start));
        (clock.clone(), MemoryQueue::new(clock))
    }

    fn entry(clock: &ManualClock) -> QueueEntry {
        let key = OccurrenceKey::scheduled(Uuid::new_v4(), clock.now());
        QueueEntry {
            key,
            run_at: key.scheduled_for,
            attempt: 0,
            execution_id: None,
        }
    }

    #[tokio::test]
    async fn a_lapsed_lease_holds_until_redelivered() {
        let (clock, queue) = setup();
        let (a, b) = (entry(&clock), entry(&clock));
        queue
            .enqueue(&[a.clone(), b.clone()])
            .await
            .expect("enqueue");
        let got = queue.reserve("w", 2, LEASE).await.expect("reserve");
        assert_eq!(got.len(), 2);
        clock.advance(LEASE);

        // Nothing re-delivered yet: the old leases still work.
        let extended = queue.extend(&got[0].lease, LEASE).await.expect("extend");
        assert_eq!(extended.token, got[0].lease.token);
        let counts = queue.counts().await.expect("counts");
        assert_eq!((counts.ready, counts.leased), (0, 2));

        // A reserve of one re-delivers the lapsed entry; none other is due.
        let again = queue.reserve("w", 1, LEASE).await.expect("reserve");
        assert_eq!(again.len(), 1);
        assert_eq!(
            (again[0].entry.key, again[0].deliveries),
            (got[1].entry.key, 2)
        );
        assert!(matches!(
            queue.ack(&got[1].lease).await,
            Err(QueueError::LeaseLost { .. })
        ));
        queue.ack(&extended).await.expect("ack");
        queue.ack(&again[0].lease).await.expect("ack");
        assert_eq!(queue.counts().await.expect("counts").total(), 0);
    }

    #[tokio::test]
    async fn lapsed_but_not_redelivered_count_as_leased() {
        let (clock, queue) = setup();
        let entries: Vec<QueueEntry> = (0..3).map(|_| entry(&clock)).collect();
        queue.enqueue(&entries).await.expect("enqueue");
        let first = queue.reserve("w", 3, LEASE).await.expect("reserve");
        clock.advance(LEASE);
        // Releases all three lapsed leases, re-delivers one.
        let again = queue.reserve("w", 1, LEASE).await.expect("reserve");
        assert_eq!(again.len(), 1);
        let counts = queue.counts().await.expect("counts");
        assert_eq!((counts.scheduled, counts.ready, counts.leased), (0, 0, 3));
        // The two not re-delivered can still be acked with their old leases.
        for r in first.iter().filter(|r| r.entry.key != again[0].entry.key) {
            queue.ack(&r.lease).await.expect("ack");
        }
        let counts = queue.counts().await.expect("counts");
        assert_eq!(counts.leased, 1);
    }

    #[tokio::test]
    async fn clones_share_entries() {
        let (clock, queue) = setup();
        queue
            .clone()
            .enqueue(&[entry(&clock)])
            .await
            .expect("enqueue");
        assert_eq!(queue.counts().await.expect("counts").ready, 1);
        assert!(format!("{queue:?}").contains("entries: 1"));
        assert_eq!(
            MemoryQueue::default().counts().await.expect("counts"),
            QueueCounts::default()
        );
    }
}
