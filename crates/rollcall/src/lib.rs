//! rollcall: a face-recognition attendance system.
//!
//! Data flow: HTTP/CLI input parsed into [`domain`] types → `rollcall_vision::FacePipeline`
//! (faces and embeddings) → [`gallery`] (best match per face) → [`attendance`] (check-in rules)
//! → [`store`] (SQLite or MySQL) → HTTP answer ([`http`]), web page ([`web`]) or CSV.

pub mod app;
pub mod attendance;
pub mod cli;
pub mod commands;
pub mod config;
pub mod domain;
pub mod eval;
pub mod gallery;
pub mod http;
pub mod matching;
pub mod service;
pub mod store;
pub mod view;
pub mod web;
