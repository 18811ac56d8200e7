//! The handlers, one module per resource.

pub mod auth;
pub mod cron;
pub mod dashboard;
pub mod executions;
pub mod health;
pub mod jobs;
pub mod system;
