//! Commands that work on the database directly: register, verify, users, attendance, reindex,
//! migrate, enroll.

use crate::cli::*;

pub fn register(_g: &GlobalArgs, _a: RegisterArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
pub fn verify(_g: &GlobalArgs, _a: VerifyArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
pub fn users(_g: &GlobalArgs, _c: UsersCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
pub fn attendance(_g: &GlobalArgs, _c: AttendanceCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
pub fn reindex(_g: &GlobalArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
pub fn migrate(_g: &GlobalArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
pub fn enroll(_g: &GlobalArgs, _a: EnrollArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
