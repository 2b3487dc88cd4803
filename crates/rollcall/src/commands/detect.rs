//! `rollcall detect`.

use crate::cli::{DetectArgs, GlobalArgs};

pub fn run(_global: &GlobalArgs, _args: DetectArgs) -> anyhow::Result<()> {
    anyhow::bail!("`detect` is not implemented yet")
}
