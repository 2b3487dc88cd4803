//! `rollcall bench`.

use crate::cli::{BenchArgs, GlobalArgs};

pub fn run(_global: &GlobalArgs, _args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("`bench` is not implemented yet")
}
