//! The in-memory backends against the contract test kit (`chronos::testkit`).

use std::sync::Arc;

use chronos::clock::ManualClock;
use chronos::memory::{MemoryQueue, MemoryStore};

chronos::store_contract_tests!(async || MemoryStore::new());

chronos::queue_contract_tests!(async |clock: Arc<ManualClock>| MemoryQueue::new(clock));
