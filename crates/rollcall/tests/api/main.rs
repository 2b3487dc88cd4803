//! The API tests: the real server (`app()` on a port), real photos and face-api weights, a
//! fresh SQLite file or MariaDB database per test. Every test runs on both backends.

use rollcall_test_support as shared;

mod helpers;

mod attendance;
mod audit;
mod bad_input;
mod contract;
mod cooldown;
mod dates;
mod faces;
mod front_door;
mod instances;
mod liveness;
mod margin;
mod metric_counts;
mod multi_face;
mod openapi;
mod ops;
mod outage;
mod overload_log;
mod photo_store;
mod pipeline_road;
mod privacy;
mod recognition;
mod registration;
mod roles;
mod seaweed;
mod start_together;
mod storage;
mod sync;
mod threshold;
mod unavailable;
mod users;
