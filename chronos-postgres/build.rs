//! `sqlx::migrate!` embeds the files of `migrations/` when the crate compiles, but on
//! stable Rust it cannot ask Cargo to watch the directory: without this, a migration
//! added to it would be left out of incremental builds until something else changed.

#![allow(
    clippy::print_stdout,
    reason = "a build script talks to Cargo on stdout"
)]

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
