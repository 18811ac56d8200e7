//! The `chronos` binary (being written).

fn main() {}
