//! `rollcall eval`.

use crate::cli::{EvalArgs, GlobalArgs};

pub fn run(_global: &GlobalArgs, _args: EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("`eval` is not implemented yet")
}
