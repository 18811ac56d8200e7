//! Redis for Chronos: a fast delayed queue, a shared rate limiter and a token
//! revocation list.
//!
//! [`RedisQueue`] implements the [`Queue`](chronos::queue::Queue) contract on Redis:
//! every state change is one atomic Lua script, entries are references (a compact
//! occurrence key in a sorted set scored by due time), leases live in a second
//! sorted set scored by expiry so a dead worker's entries come back, all keys share
//! one hash-tagged prefix (Redis Cluster ready), and workers wait on a pub/sub
//! wake-up and a timer to the earliest due entry, never polling. Losing Redis's data
//! is survivable: the engine's safety sync rebuilds the queue from the store.
//!
//! [`RedisRateLimiter`] is an atomic fixed-window limiter shared by every process
//! (limit, remaining and reset for the `X-RateLimit-*` headers), and
//! [`RedisRevocationList`] keeps revoked token ids for their remaining life.

mod limiter;
mod queue;
mod revocation;
#[cfg(feature = "testing")]
pub mod testing;

pub use limiter::{LimiterError, RateDecision, RedisRateLimiter};
pub use queue::{DEFAULT_PREFIX, RedisQueue};
pub use revocation::{RedisRevocationList, RevocationError};
