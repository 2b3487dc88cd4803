//! `rollcall bench`.

use crate::cli::{GlobalArgs, BenchArgs};

pub fn run(_global: &GlobalArgs, _args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("`bench` is not implemented yet")
}
