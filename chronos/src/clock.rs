//! Time as the engine sees it: an injectable [`Clock`].
//!
//! Production code uses [`SystemClock`]. Tests use [`ManualClock`], whose time
//! moves only when the test says so and which wakes every sleeper whose
//! deadline it passes, so a test of a retry after one hour takes no time at all.
//!
//! ```
//! use std::time::Duration;
//! use chronos::clock::{Clock, ManualClock};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
//! let deadline = clock.now() + chrono::Duration::hours(1);
//! let sleeper = tokio::spawn(clock.sleep_until(deadline));
//! clock.advance(Duration::from_secs(3600));
//! sleeper.await.unwrap();
//! assert_eq!(clock.now(), deadline);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// `at + by`, saturating at the latest representable instant instead of overflowing.
pub fn after(at: DateTime<Utc>, by: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|by| at.checked_add_signed(by))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at - by`, saturating at the earliest representable instant instead of overflowing.
pub fn before(at: DateTime<Utc>, by: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|by| at.checked_sub_signed(by))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A boxed future, as the [`Clock`] trait returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The source of "now" and of timed wake-ups for the engine and the in-memory queue.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once [`Clock::now`] has reached `deadline` (at once if it already
    /// has). Must be cancel-safe: dropping the future leaves nothing behind.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

/// The wall clock, with tokio timers for sleeping.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// Tokio's timers fire on millisecond ticks, up to a millisecond after the deadline.
/// [`SystemClock`] sleeps on a timer until this close to the deadline, then yields to
/// the runtime until it has passed, so occurrences start within microseconds of their
/// instant for at most this much CPU per wake-up.
const TIMER_SLACK: std::time::Duration = std::time::Duration::from_millis(1);

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // Re-check after each wake-up: the wall clock may have been adjusted meanwhile.
            loop {
                let Ok(left) = (deadline - Utc::now()).to_std() else {
                    return;
                };
                if left.is_zero() {
                    return;
                }
                if left > TIMER_SLACK {
                    tokio::time::sleep(left - TIMER_SLACK).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
        })
    }
}

/// A clock that moves only when told to; for tests.
///
/// Clones share the same time.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
    tick: watch::Sender<DateTime<Utc>>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        let (tick, _) = watch::channel(start);
        Self {
            now: Arc::new(Mutex::new(start)),
            tick,
        }
    }

    /// Moves time forward by `by` and wakes every sleeper whose deadline has passed.
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = after(*now, by);
        self.tick.send_replace(*now);
    }

    /// Sets the time (forward or backward) and wakes sleepers whose deadline has passed.
    pub fn set(&self, to: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = to;
        self.tick.send_replace(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let mut rx = self.tick.subscribe();
        Box::pin(async move {
            // `wait_for` checks the current value first, so no advance is missed.
            let _ = rx.wait_for(|now| *now >= deadline).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_in_deadline_order() {
        let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        let t0 = clock.now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for secs in [30, 10, 20] {
            let c = clock.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                c.sleep_until(t0 + chrono::Duration::seconds(secs)).await;
                tx.send(secs).unwrap();
            });
        }
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(15));
        assert_eq!(rx.recv().await, Some(10));
        assert!(rx.try_recv().is_err(), "nothing else is due at +15 s");
        clock.advance(Duration::from_secs(15));
        let mut rest = vec![rx.recv().await.unwrap(), rx.recv().await.unwrap()];
        rest.sort();
        assert_eq!(rest, [20, 30]);
    }

    #[test]
    fn after_and_before_saturate_instead_of_overflowing() {
        let t: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            after(t, Duration::from_secs(90)),
            "2026-01-01T00:01:30Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            before(t, Duration::from_secs(90)),
            "2025-12-31T23:58:30Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(after(t, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(before(t, Duration::MAX), DateTime::<Utc>::MIN_UTC);
        let clock = ManualClock::new(t);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), DateTime::<Utc>::MAX_UTC);
    }

    #[tokio::test]
    async fn past_deadline_resolves_at_once() {
        let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        clock.sleep_until(clock.now()).await;
        SystemClock
            .sleep_until(Utc::now() - chrono::Duration::seconds(1))
            .await;
    }
}
