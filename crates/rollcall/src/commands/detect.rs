//! `rollcall detect`: find the faces in photos and print them (boxes, probabilities, landmarks
//! and, with `--embed`, embeddings), as a table or as JSON.

use super::args::{CommonArgs, EmbedderArgs};
use super::Leading;
use anyhow::Context;
use clap::Args;
use rollcall_vision::{Face, FacePipeline};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct DetectArgs {
    /// Print JSON: an array of { "image": path, "faces": [...] }.
    #[arg(long)]
    pub json: bool,
    /// Also compute each face's embedding.
    #[arg(long)]
    pub embed: bool,
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

/// One photo's line of the JSON output.
#[derive(Serialize)]
struct PhotoReport<'a> {
    image: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    faces: Option<Vec<Face>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn run(leading: &Leading, args: DetectArgs) -> anyhow::Result<()> {
    let settings = super::settings(leading, &[&args.common, &args.embedder])?;
    let pipeline = FacePipeline::load(&settings.pipeline_config()).context("loading the models")?;

    let mut reports = Vec::with_capacity(args.photos.len());
    for path in &args.photos {
        let result = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                let analysis = pipeline.analyze(&bytes, args.embed);
                analysis.map(|a| a.faces).map_err(|e| e.to_string())
            });
        let report = match result {
            Ok(faces) => PhotoReport {
                image: path,
                faces: Some(faces),
                error: None,
            },
            Err(error) => {
                eprintln!("{}: {error}", path.display());
                PhotoReport {
                    image: path,
                    faces: None,
                    error: Some(error),
                }
            }
        };
        if !args.json {
            print_table(&report);
        }
        reports.push(report);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }

    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} photos could not be read", reports.len());
    }
    Ok(())
}

fn print_table(report: &PhotoReport) {
    let Some(faces) = &report.faces else { return };
    println!(
        "{}: {} face{}",
        report.image.display(),
        faces.len(),
        if faces.len() == 1 { "" } else { "s" }
    );
    for (i, face) in faces.iter().enumerate() {
        let d = &face.detection;
        let [x1, y1, x2, y2] = d.bbox;
        let landmarks: Vec<String> = d
            .landmarks
            .iter()
            .map(|[x, y]| format!("({x:.1},{y:.1})"))
            .collect();
        println!(
            "  #{i}  box [{x1:.1}, {y1:.1}, {x2:.1}, {y2:.1}]  p {:.5}  landmarks {}",
            d.probability,
            landmarks.join(" ")
        );
        if let Some(e) = &face.embedding {
            let head: Vec<String> = e.iter().take(4).map(|v| format!("{v:+.4}")).collect();
            println!("      embedding {}-d [{}, …]", e.len(), head.join(", "));
        }
    }
}
