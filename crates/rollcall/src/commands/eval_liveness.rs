//! `rollcall eval-liveness`: APCER and BPCER of the liveness check on sequences made from a
//! labelled photo set (see [`crate::eval::liveness`] for how they are made).

use super::args::{CommonArgs, EmbedderArgs};
use super::Leading;
use crate::eval::liveness::{evaluate, text, Options};
use anyhow::Context;
use clap::Args;
use rollcall_vision::{FacePipeline, PipelineConfig};
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct EvalLivenessArgs {
    /// Folder per person: ROOT/<Person_Name>/<Person_Name>_0001.jpg
    #[arg(long)]
    pub root: PathBuf,
    #[arg(long)]
    pub json: bool,
    /// Use at most this many people (the first by name among those with enough photos).
    #[arg(long)]
    pub limit: Option<usize>,
    /// A person needs this many photos with one clear face to make a bona fide sequence.
    #[arg(long, default_value_t = 8)]
    pub min_photos: usize,
    /// Frames of each synthesised attack.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(4..=24))]
    pub frames: u64,
    /// Seed of the synthesised attacks (the same seed gives the same figures).
    #[arg(long, default_value_t = 13)]
    pub seed: u64,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

pub fn run(leading: &Leading, args: EvalLivenessArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let config = super::settings(leading, &[&args.common, &args.embedder])?;
    let pipeline = FacePipeline::load(&PipelineConfig::new(config.models.clone()))
        .context("loading the face models")?;
    let options = Options {
        min_photos: args.min_photos.max(2),
        limit: args.limit,
        frames: args.frames as usize,
        seed: args.seed,
    };
    let report = evaluate(&pipeline, &args.root, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report));
    }
    eprintln!(
        "eval-liveness: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
