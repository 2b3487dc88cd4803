//! PNG plots of an evaluation: the ROC curves, the same-vs-different score histogram, and the
//! attendance rates against the threshold.
//!
//! Text needs a TrueType font registered at run time (plotters' `ab_glyph` backend has none
//! built in). `ROLLCALL_PLOT_FONT` names one; otherwise the usual font folders are searched.
//! Without a font the plots are drawn without any text, and the caller is told so.

use super::metrics::{RocPoint, Scored};
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Why a plot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Draw { path: PathBuf, reason: String },
}

/// One point of the attendance sweep.
#[derive(Clone, Copy, Debug)]
pub struct RatePoint {
    pub threshold: f64,
    pub true_accept_rate: f64,
    pub false_accept_rate: f64,
    pub false_reject_rate: f64,
}

/// Everything the plots show.
pub struct PlotInput<'a> {
    /// E.g. "face-api (aligned crop)".
    pub title: &'a str,
    pub pairs: &'a [Scored],
    pub roc: &'a [RocPoint],
    /// The attendance scenario at each candidate threshold, ascending.
    pub open_set: &'a [RatePoint],
    /// The configured (default) threshold.
    pub threshold: f64,
}

/// What was written.
#[derive(Debug)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// False when no font was found: the plots carry no text.
    pub with_text: bool,
}

const SIZE: (u32, u32) = (900, 640);
/// The lowest false-accept rate the log axes show (rates of 0 are drawn there).
const MIN_RATE: f64 = 1e-4;
const FONT: &str = "sans-serif";

/// Write `roc.png`, `scores.png` and `attendance.png` into `dir` (created if missing).
pub fn write_all(dir: &Path, input: &PlotInput) -> Result<Written, PlotError> {
    std::fs::create_dir_all(dir).map_err(|source| PlotError::Io {
        path: dir.into(),
        source,
    })?;
    let text = font_registered();
    let mut files = Vec::new();
    for (name, draw) in [
        (
            "roc.png",
            draw_roc as fn(&Path, &PlotInput, bool) -> Result<(), String>,
        ),
        ("scores.png", draw_scores),
        ("attendance.png", draw_attendance),
    ] {
        let path = dir.join(name);
        draw(&path, input, text).map_err(|reason| PlotError::Draw {
            path: path.clone(),
            reason,
        })?;
        files.push(path);
    }
    Ok(Written {
        files,
        with_text: text,
    })
}

/// Register a TrueType font once per process; false when none was found.
fn font_registered() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        let Some(bytes) = find_font().and_then(|p| std::fs::read(p).ok()) else {
            return false;
        };
        // plotters keeps fonts for the whole process: leak the one file it holds.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok()
    })
}

/// `ROLLCALL_PLOT_FONT` when set (empty = no font), else the first preferred font found under
/// the system's font folders, else any `.ttf` there.
fn find_font() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ROLLCALL_PLOT_FONT") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    const PREFERRED: [&str; 4] = [
        "DejaVuSans.ttf",
        "LiberationSans-Regular.ttf",
        "FreeSans.ttf",
        "Arial.ttf",
    ];
    let mut roots: Vec<PathBuf> = [
        "/usr/share/fonts",
        "/usr/local/share/fonts",
        "/Library/Fonts",
        "C:\\Windows\\Fonts",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    if let Some(home) = std::env::var_os("HOME") {
        roots.push(Path::new(&home).join(".local/share/fonts"));
    }
    let mut found = Vec::new();
    for root in roots {
        collect_ttf(&root, 4, &mut found);
    }
    found.sort();
    let named = |want: &str| {
        found
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n == want))
    };
    PREFERRED
        .iter()
        .find_map(|w| named(w))
        .or(found.first())
        .cloned()
}

fn collect_ttf(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && depth > 0 {
            collect_ttf(&path, depth - 1, out);
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("ttf"))
        {
            out.push(path);
        }
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The legend of the series labelled so far, in the same style on every chart.
fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 16))
        .draw()
        .map_err(err)
}

const GENUINE: RGBColor = RGBColor(31, 119, 180);
const IMPOSTOR: RGBColor = RGBColor(214, 39, 40);
const THIRD: RGBColor = RGBColor(44, 160, 44);

/// A chart frame: margin, and with `text` a caption and room for the axis labels.
fn chart_builder<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    caption: String,
    text: bool,
) -> ChartBuilder<'a, 'b, BitMapBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder.margin(20);
    if text {
        builder
            .caption(caption, (FONT, 24))
            .x_label_area_size(50)
            .y_label_area_size(60);
    }
    builder
}

/// TAR against FAR (log), for the verification pairs and the attendance scenario.
fn draw_roc(path: &Path, input: &PlotInput, text: bool) -> Result<(), String> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut builder = chart_builder(&root, format!("ROC — {}", input.title), text);
    let mut chart = builder
        .build_cartesian_2d((MIN_RATE..1.0).log_scale(), 0.0..1.0)
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("false-accept rate (log)")
            .y_desc("true-accept rate")
            .x_label_formatter(&|v| format!("{v:.0e}"));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(err)?;
    let clamp = |r: f64| r.max(MIN_RATE);
    let verification = chart
        .draw_series(LineSeries::new(
            input.roc.iter().map(|p| (clamp(p.far), p.tar)),
            GENUINE.stroke_width(2),
        ))
        .map_err(err)?;
    if text {
        verification
            .label("verification pairs")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GENUINE.stroke_width(2)));
    }
    let attendance = chart
        .draw_series(LineSeries::new(
            input
                .open_set
                .iter()
                .map(|p| (clamp(p.false_accept_rate), p.true_accept_rate)),
            IMPOSTOR.stroke_width(2),
        ))
        .map_err(err)?;
    if text {
        attendance
            .label("attendance (open set)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], IMPOSTOR.stroke_width(2)));
    }
    // The configured threshold on the attendance curve.
    if let Some(p) = nearest(input.open_set, input.threshold) {
        let at = chart
            .draw_series([Circle::new(
                (clamp(p.false_accept_rate), p.true_accept_rate),
                6,
                BLACK.filled(),
            )])
            .map_err(err)?;
        if text {
            at.label(format!("threshold {:.3}", input.threshold))
                .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.filled()));
        }
    }
    if text {
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    }
    root.present().map_err(err)
}

fn nearest(points: &[RatePoint], threshold: f64) -> Option<RatePoint> {
    points.iter().copied().min_by(|a, b| {
        (a.threshold - threshold)
            .abs()
            .total_cmp(&(b.threshold - threshold).abs())
    })
}

/// Histograms (as fractions of each kind) of same-person and different-person pair scores.
fn draw_scores(path: &Path, input: &PlotInput, text: bool) -> Result<(), String> {
    const BINS: usize = 60;
    let scores: Vec<(f64, bool)> = input
        .pairs
        .iter()
        .filter_map(|p| p.score.map(|s| (s, p.same)))
        .collect();
    let lo = scores
        .iter()
        .map(|s| s.0)
        .fold(f64::INFINITY, f64::min)
        .min(input.threshold);
    let hi = scores
        .iter()
        .map(|s| s.0)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(input.threshold);
    let (lo, hi) = if lo < hi {
        ((lo * 20.0).floor() / 20.0, (hi * 20.0).ceil() / 20.0)
    } else {
        (-1.0, 1.0)
    };
    let width = (hi - lo) / BINS as f64;
    let histogram = |same: bool| {
        let mut bins = vec![0.0; BINS];
        let of_kind: Vec<f64> = scores.iter().filter(|s| s.1 == same).map(|s| s.0).collect();
        for s in &of_kind {
            let b = (((s - lo) / width) as usize).min(BINS - 1);
            bins[b] += 1.0 / of_kind.len() as f64;
        }
        bins
    };
    let (same, diff) = (histogram(true), histogram(false));
    let top = same.iter().chain(&diff).fold(0.0f64, |a, &b| a.max(b)) * 1.1;
    let top = if top > 0.0 { top } else { 1.0 };

    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut builder = chart_builder(&root, format!("Pair similarity — {}", input.title), text);
    let mut chart = builder.build_cartesian_2d(lo..hi, 0.0..top).map_err(err)?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("cosine similarity").y_desc("fraction of pairs");
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(err)?;
    for (bins, colour, label) in [
        (&diff, IMPOSTOR, "different people"),
        (&same, GENUINE, "same person"),
    ] {
        let series = chart
            .draw_series(bins.iter().enumerate().map(|(i, &h)| {
                let x0 = lo + i as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, h)], colour.mix(0.45).filled())
            }))
            .map_err(err)?;
        if text {
            series.label(label).legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 16, y + 6)], colour.mix(0.45).filled())
            });
        }
    }
    let line = chart
        .draw_series(LineSeries::new(
            [(input.threshold, 0.0), (input.threshold, top)],
            BLACK.stroke_width(2),
        ))
        .map_err(err)?;
    if text {
        line.label(format!("threshold {:.3}", input.threshold))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    root.present().map_err(err)
}

/// The attendance rates against the threshold (log rate axis, so 0.1 % is visible).
fn draw_attendance(path: &Path, input: &PlotInput, text: bool) -> Result<(), String> {
    let finite: Vec<RatePoint> = input
        .open_set
        .iter()
        .copied()
        .filter(|p| p.threshold.is_finite())
        .collect();
    let lo = finite
        .first()
        .map_or(0.0, |p| p.threshold)
        .min(input.threshold);
    let hi = finite
        .last()
        .map_or(1.0, |p| p.threshold)
        .max(input.threshold);
    let (lo, hi) = if lo < hi {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };

    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut builder = chart_builder(&root, format!("Attendance rates — {}", input.title), text);
    let mut chart = builder
        .build_cartesian_2d(lo..hi, (MIN_RATE..1.0).log_scale())
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("threshold (cosine similarity)")
            .y_desc("rate (log)")
            .y_label_formatter(&|v| format!("{v:.0e}"));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(err)?;
    type Pick = fn(&RatePoint) -> f64;
    let curves: [(&str, RGBColor, Pick); 3] = [
        ("true-accept rate", GENUINE, |p| p.true_accept_rate),
        ("false-accept rate", IMPOSTOR, |p| p.false_accept_rate),
        ("false-reject rate", THIRD, |p| p.false_reject_rate),
    ];
    for (label, colour, pick) in curves {
        let series = chart
            .draw_series(LineSeries::new(
                finite.iter().map(|p| (p.threshold, pick(p).max(MIN_RATE))),
                colour.stroke_width(2),
            ))
            .map_err(err)?;
        if text {
            series.label(label).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        }
    }
    chart
        .draw_series(LineSeries::new(
            [(input.threshold, MIN_RATE), (input.threshold, 1.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
    if text {
        draw_legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    }
    root.present().map_err(err)
}
