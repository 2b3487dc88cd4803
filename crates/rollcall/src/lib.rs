//! rollcall: a face-recognition attendance system.
//!
//! Data flow: HTTP/CLI input parsed into [`domain`] types → `rollcall_vision::FacePipeline`
//! (faces, each with its embedding) → [`gallery`] and [`matching`] (best match per face) →
//! [`attendance`] (check-in rules) → [`store`] (SQLite or MySQL) → HTTP answer ([`http`], with
//! the kiosk and admin pages in [`http::pages`]), CLI output ([`view`]) or CSV. [`service`] is
//! the use cases over these; [`app`] starts it all and [`server`] serves its connections;
//! [`commands`] and [`cli`] are the command line.
//! [`auth`] names who is asking; [`audit`] is what the audit log records of what they did.

pub mod app;
pub mod attendance;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod csvsafe;
pub mod domain;
pub mod eval;
pub mod gallery;
pub mod http;
pub mod liveness;
pub mod matching;
pub mod operating_point;
pub mod photo_location;
pub mod quality;
pub mod server;
pub mod service;
pub mod site_settings;
pub mod store;
pub mod subject;
pub mod view;
