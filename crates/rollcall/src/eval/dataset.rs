//! The labelled photo set: a folder per person (`ROOT/<Person_Name>/<Person_Name>_0001.jpg`, LFW's
//! layout) and LFW's `pairs.txt` (folds of same-person and different-person pairs).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why the photo set or the pairs file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no person folders with photos (expected ROOT/<Person_Name>/<Person_Name>_0001.jpg)")]
    Empty { path: PathBuf },
    #[error("{path}, line {line}: {reason}")]
    Pairs {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: pair on line {line} names {photo}, which is not under the root folder")]
    MissingPhoto {
        path: PathBuf,
        line: usize,
        photo: PhotoRef,
    },
}

/// One photo of a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Photo {
    pub path: PathBuf,
    /// The LFW image number (`_0003` → 3) when the file name carries one.
    pub number: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    /// Ordered by LFW number, then by file name (so "the first photo" is well defined).
    pub photos: Vec<Photo>,
}

/// Everyone under the root folder, sorted by name.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub root: PathBuf,
    pub people: Vec<Person>,
}

/// Index of a photo inside a [`Dataset`]: `(person, photo)`.
pub type PhotoId = (usize, usize);

const PHOTO_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

impl Dataset {
    /// Scan `root`: each sub-folder is a person, each JPEG/PNG in it a photo of them. Folders
    /// without photos are ignored; `limit` keeps the first `limit` people by name.
    pub fn scan(root: &Path, limit: Option<usize>) -> Result<Self, DatasetError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DatasetError::Io { path, source }
        };
        let mut people = Vec::new();
        for entry in std::fs::read_dir(root).map_err(io(root))? {
            let entry = entry.map_err(io(root))?;
            // `metadata` follows symbolic links (test subsets are trees of links).
            let dir = entry.path();
            if !std::fs::metadata(&dir).map_err(io(&dir))?.is_dir() {
                continue;
            }
            let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            let mut photos = Vec::new();
            for file in std::fs::read_dir(&dir).map_err(io(&dir))? {
                let path = file.map_err(io(&dir))?.path();
                if is_photo(&path) {
                    let number = photo_number(&path);
                    photos.push(Photo { path, number });
                }
            }
            if photos.is_empty() {
                continue;
            }
            photos.sort_by(|a, b| (a.number, &a.path).cmp(&(b.number, &b.path)));
            people.push(Person { name, photos });
        }
        people.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(limit) = limit {
            people.truncate(limit);
        }
        if people.is_empty() {
            return Err(DatasetError::Empty {
                path: root.to_path_buf(),
            });
        }
        Ok(Dataset {
            root: root.to_path_buf(),
            people,
        })
    }

    pub fn photo(&self, (person, photo): PhotoId) -> &Photo {
        &self.people[person].photos[photo]
    }

    /// Every photo, in (person, photo) order.
    pub fn photo_ids(&self) -> impl Iterator<Item = PhotoId> + '_ {
        self.people
            .iter()
            .enumerate()
            .flat_map(|(p, person)| (0..person.photos.len()).map(move |i| (p, i)))
    }

    pub fn photo_count(&self) -> usize {
        self.people.iter().map(|p| p.photos.len()).sum()
    }

    /// Look-up from `(name, LFW number)` to the photo.
    pub fn index(&self) -> HashMap<(&str, u32), PhotoId> {
        self.photo_ids()
            .filter_map(|id| {
                Some((
                    (self.people[id.0].name.as_str(), self.photo(id).number?),
                    id,
                ))
            })
            .collect()
    }
}

fn is_photo(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PHOTO_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// `Name_Surname_0042.jpg` → 42.
fn photo_number(path: &Path) -> Option<u32> {
    let stem = path.file_stem()?.to_str()?;
    let (_, digits) = stem.rsplit_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A photo as `pairs.txt` names it: person and LFW number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PhotoRef {
    pub name: String,
    pub number: u32,
}

impl fmt::Display for PhotoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}_{:04}", self.name, self.name, self.number)
    }
}

/// One line of `pairs.txt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairSpec {
    pub a: PhotoRef,
    pub b: PhotoRef,
    /// Same person (`name i j`) or different people (`name1 i name2 j`).
    pub same: bool,
    /// 1-based line number, for error messages.
    pub line: usize,
}

/// LFW's pairs file: `folds[f]` holds fold f's same-person pairs, then its different-person pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairsFile {
    pub folds: Vec<Vec<PairSpec>>,
}

impl PairsFile {
    pub fn read(path: &Path) -> Result<Self, DatasetError> {
        let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, reason)| DatasetError::Pairs {
            path: path.to_path_buf(),
            line,
            reason,
        })
    }

    /// Parse the text of a pairs file. The header is `FOLDS PAIRS_PER_HALF_FOLD` (View 2), or a
    /// single `PAIRS_PER_HALF` (View 1: one fold). Errors carry the 1-based line number.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty());
        let (header_line, header) = lines.next().ok_or((1, "the file is empty".to_owned()))?;
        let numbers: Vec<&str> = header.split_whitespace().collect();
        let count = |s: &str| {
            s.parse::<usize>().map_err(|_| {
                (
                    header_line,
                    format!("header `{header}`: `{s}` is not a count"),
                )
            })
        };
        let (folds, per_half) = match numbers.as_slice() {
            [folds, per_half] => (count(folds)?, count(per_half)?),
            [per_half] => (1, count(per_half)?),
            _ => {
                return Err((
                    header_line,
                    format!("header `{header}`: expected `FOLDS PAIRS_PER_HALF_FOLD`"),
                ))
            }
        };
        if folds == 0 || per_half == 0 {
            return Err((
                header_line,
                format!("header `{header}`: counts must be positive"),
            ));
        }
        let mut out = Vec::with_capacity(folds);
        let mut last_line = header_line;
        for fold in 0..folds {
            let mut pairs = Vec::with_capacity(2 * per_half);
            for k in 0..2 * per_half {
                let same = k < per_half;
                let (line, text) = lines.next().ok_or_else(|| {
                    (
                        last_line + 1,
                        format!(
                            "the file ends early: fold {} of {folds} needs {} pairs, found {k}",
                            fold + 1,
                            2 * per_half
                        ),
                    )
                })?;
                last_line = line;
                pairs.push(parse_pair(text, same, line)?);
            }
            out.push(pairs);
        }
        if let Some((line, text)) = lines.next() {
            return Err((
                line,
                format!("unexpected line after the last fold: `{text}`"),
            ));
        }
        Ok(PairsFile { folds: out })
    }

    pub fn pair_count(&self) -> usize {
        self.folds.iter().map(Vec::len).sum()
    }
}

fn parse_pair(text: &str, same: bool, line: usize) -> Result<PairSpec, (usize, String)> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let number = |s: &str| {
        s.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(|| {
            (
                line,
                format!("`{s}` is not a photo number (1, 2, …) in `{text}`"),
            )
        })
    };
    let r = |name: &str, n: &str| {
        Ok::<_, (usize, String)>(PhotoRef {
            name: name.to_owned(),
            number: number(n)?,
        })
    };
    match (same, fields.as_slice()) {
        (true, [name, i, j]) => Ok(PairSpec {
            a: r(name, i)?,
            b: r(name, j)?,
            same,
            line,
        }),
        (false, [n1, i, n2, j]) => Ok(PairSpec {
            a: r(n1, i)?,
            b: r(n2, j)?,
            same,
            line,
        }),
        (true, _) => Err((
            line,
            format!("expected a same-person pair `name i j`, found `{text}`"),
        )),
        (false, _) => Err((
            line,
            format!("expected a different-person pair `name1 i name2 j`, found `{text}`"),
        )),
    }
}

/// A pair resolved to photos of the dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    pub a: PhotoId,
    pub b: PhotoId,
    pub same: bool,
}

/// Pairs grouped by fold, plus what could not be resolved.
#[derive(Clone, Debug, Default)]
pub struct ResolvedPairs {
    pub folds: Vec<Vec<Pair>>,
    /// Pairs naming a photo outside the (limited) dataset.
    pub skipped: usize,
}

impl PairsFile {
    /// Map every pair to dataset photos. A pair naming a photo that is not there is an error,
    /// unless `allow_missing` (a `--limit` run, which holds only some of the people): then it
    /// is skipped and counted.
    pub fn resolve(
        &self,
        dataset: &Dataset,
        path: &Path,
        allow_missing: bool,
    ) -> Result<ResolvedPairs, DatasetError> {
        let index = dataset.index();
        let mut out = ResolvedPairs::default();
        for fold in &self.folds {
            let mut pairs = Vec::new();
            for spec in fold {
                let find = |r| find_photo(&index, r);
                match (find(&spec.a), find(&spec.b)) {
                    (Ok(a), Ok(b)) => pairs.push(Pair {
                        a,
                        b,
                        same: spec.same,
                    }),
                    _ if allow_missing => out.skipped += 1,
                    (Err(r), _) | (_, Err(r)) => {
                        return Err(DatasetError::MissingPhoto {
                            path: path.to_path_buf(),
                            line: spec.line,
                            photo: r.clone(),
                        })
                    }
                }
            }
            out.folds.push(pairs);
        }
        Ok(out)
    }
}

fn find_photo<'a>(
    index: &HashMap<(&str, u32), PhotoId>,
    r: &'a PhotoRef,
) -> Result<PhotoId, &'a PhotoRef> {
    index.get(&(r.name.as_str(), r.number)).copied().ok_or(r)
}

/// Pairs for a photo set without a pairs file: `folds` identity-disjoint folds (person k goes to
/// fold k mod `folds`); in each, every same-person pair of its people and as many
/// different-person pairs, drawn with a fixed seed so runs agree.
pub fn generate_pairs(dataset: &Dataset, folds: usize) -> Vec<Vec<Pair>> {
    let folds = folds.max(1);
    let mut rng = SplitMix64(0x5EED_2007);
    (0..folds)
        .map(|f| {
            let members: Vec<usize> = (f..dataset.people.len()).step_by(folds).collect();
            let mut pairs = Vec::new();
            for &p in &members {
                let n = dataset.people[p].photos.len();
                for i in 0..n {
                    for j in i + 1..n {
                        pairs.push(Pair {
                            a: (p, i),
                            b: (p, j),
                            same: true,
                        });
                    }
                }
            }
            let wanted = pairs.len();
            if members.len() >= 2 {
                for _ in 0..wanted {
                    // Two different members, uniformly.
                    let ia = rng.below(members.len());
                    let mut ib = rng.below(members.len() - 1);
                    if ib >= ia {
                        ib += 1;
                    }
                    let (pa, pb) = (members[ia], members[ib]);
                    let a = (pa, rng.below(dataset.people[pa].photos.len()));
                    let b = (pb, rng.below(dataset.people[pb].photos.len()));
                    pairs.push(Pair { a, b, same: false });
                }
            }
            pairs
        })
        .collect()
}

/// A tiny fixed-seed generator: reproducible draws without a dependency.
pub(crate) struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
