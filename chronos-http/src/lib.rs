//! The Chronos REST service: the reference HTTP API over the `chronos` engine, and
//! the `chronos` binary.
//!
//! The service keeps the API of the original Node.js Chronos (see the README) and
//! fixes what it broke. It runs on the in-memory backends with no setup, or scales
//! out on PostgreSQL (source of truth) and Redis (queue, rate limits, token
//! revocations) with any number of API and worker processes.
//!
//! How it fits together: [`config::Config`] reads the environment;
//! [`wiring::build_with`] builds the engine on the configured backends (an embedding
//! application registers its own executors there) and [`wiring::services`] the
//! users, tokens, revocations and rate limits behind the [`ports`] traits
//! ([`adapters`] for PostgreSQL and Redis); [`app::router_with`] is the axum router
//! ([`routes`], [`auth`] middleware, the layers), [`docs`] its OpenAPI document;
//! [`cli`] is the `chronos` binary. Every error answer is an [`error::ApiError`].

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
