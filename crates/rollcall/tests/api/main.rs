//! The API tests: the real server (`app()` on a port), real photos and face-api weights, a
//! fresh SQLite file or MariaDB database per test. Every test runs on both backends.

// One definition of where the shared fixtures are, for both crates' tests.
#[path = "../../../vision/tests/common/mod.rs"]
mod shared;

mod helpers;

mod attendance;
mod bad_input;
mod ops;
mod pipeline_road;
mod recognition;
mod users;
