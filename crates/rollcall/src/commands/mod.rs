//! One module per command; [`run`] dispatches.

use crate::cli::{Cli, Command};

pub mod admin;
pub mod bench;
pub mod detect;
pub mod eval;
pub mod models;
pub mod serve;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let g = cli.global;
    match cli.command {
        Command::Serve(a) => serve::run(&g, a),
        Command::Models(c) => models::run(&g, c),
        Command::Register(a) => admin::register(&g, a),
        Command::Verify(a) => admin::verify(&g, a),
        Command::Users(c) => admin::users(&g, c),
        Command::Attendance(c) => admin::attendance(&g, c),
        Command::Reindex => admin::reindex(&g),
        Command::Migrate => admin::migrate(&g),
        Command::Enroll(a) => admin::enroll(&g, a),
        Command::Detect(a) => detect::run(&g, a),
        Command::Bench(a) => bench::run(&g, a),
        Command::Eval(a) => eval::run(&g, a),
    }
}
