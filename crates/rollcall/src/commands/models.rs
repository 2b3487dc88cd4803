//! `rollcall models fetch`.

use crate::cli::{GlobalArgs, ModelsCommand};

pub fn run(_global: &GlobalArgs, _cmd: ModelsCommand) -> anyhow::Result<()> {
    anyhow::bail!("`models` is not implemented yet")
}
