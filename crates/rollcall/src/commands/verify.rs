//! `rollcall verify`: who is in a photo, as `POST /verify` decides it, without checking anyone
//! in. Exits non-zero when the largest face is not recognised, so scripts can branch on it.

use super::args::{CommonArgs, DatabaseArgs, EmbedderArgs, PhotoStoreArgs, ThresholdArgs};
use super::{read_photo, Leading};
use crate::app::{open_rollcall, runtime};
use crate::domain::display_name;
use crate::view::{round, round_margin, FaceJson};
use anyhow::bail;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    pub photo: PathBuf,
    /// Print JSON: { "threshold", "margin", "false_accept_rate", "threshold_source", "model", "faces": [...] } (the faces as `/verify` lists them).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub threshold: ThresholdArgs,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub photo_store: PhotoStoreArgs,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

pub fn run(leading: &Leading, a: VerifyArgs) -> anyhow::Result<()> {
    let settings = super::settings(
        leading,
        &[
            &a.common,
            &a.database,
            &a.photo_store,
            &a.embedder,
            &a.threshold,
        ],
    )?;
    let photo = read_photo(&a.photo)?;
    runtime()?.block_on(async {
        let rollcall = open_rollcall(&settings).await?;
        let v = rollcall.verify(photo, None, false).await?;
        if a.json {
            let faces: Vec<_> = v.faces.iter().map(FaceJson::from).collect();
            let out = serde_json::json!({
                "threshold": round(v.operating_point.threshold.value()),
                "margin": round_margin(v.operating_point.margin),
                "false_accept_rate": v.operating_point.false_accept_rate,
                "threshold_source": v.operating_point.source.as_str(),
                "model": v.model,
                "faces": faces,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            for (i, f) in v.faces.iter().enumerate() {
                let [x1, y1, x2, y2] = f.detection.bbox;
                let who = match (&f.best, f.matched) {
                    (Some(c), true) => format!(
                        "{} (id {}, similarity {:.3})",
                        display_name(&c.first_name, &c.last_name),
                        c.user_id,
                        c.similarity.0
                    ),
                    (Some(c), false) => {
                        format!("unknown (closest similarity {:.3})", c.similarity.0)
                    }
                    (None, _) => "unknown (nobody registered)".to_owned(),
                };
                println!(
                    "face {}: [{x1:.0}, {y1:.0}, {x2:.0}, {y2:.0}]  {who}",
                    i + 1
                );
            }
            if v.operating_point.margin > 0.0 {
                println!(
                    "threshold {}, margin {}, model {}",
                    v.operating_point.threshold,
                    round_margin(v.operating_point.margin),
                    v.model
                );
            } else {
                println!(
                    "threshold {}, model {}",
                    v.operating_point.threshold, v.model
                );
            }
        }
        if !v.faces[0].matched {
            bail!("the largest face is not recognised");
        }
        Ok(())
    })
}
