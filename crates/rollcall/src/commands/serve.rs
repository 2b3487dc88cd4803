//! `rollcall serve`.

use crate::cli::{GlobalArgs, ServeArgs};

pub fn run(_global: &GlobalArgs, _args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("`serve` is not implemented yet")
}
