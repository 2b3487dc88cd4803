//! `rollcall eval`.

use crate::cli::{GlobalArgs, EvalArgs};

pub fn run(_global: &GlobalArgs, _args: EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("`eval` is not implemented yet")
}
