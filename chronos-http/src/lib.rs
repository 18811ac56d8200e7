//! The Chronos REST service: the reference HTTP API over the `chronos` engine, and
//! the `chronos` binary.
//!
//! The service keeps the API of the original Node.js Chronos (see the README) and
//! fixes what it broke. It runs on the in-memory backends with no setup, or scales
//! out on PostgreSQL (source of truth) and Redis (queue, rate limits, token
//! revocations) with any number of API and worker processes.

pub mod adapters;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod docs;
pub mod error;
pub mod executors;
pub mod extract;
pub mod json;
pub mod metrics;
pub mod ports;
pub mod respond;
pub mod routes;
pub mod state;
pub mod wiring;
