//! Values parsed at the edge (HTTP form, CLI flag, database row) into types that cannot be wrong
//! further in: a person's name, an embedding, a similarity threshold, an image format, a day.

use crate::matching;
use chrono::{DateTime, NaiveDate, Utc};
use std::fmt;

/// Why an input value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error("`{0}` is empty")]
    Empty(&'static str),
    #[error("`{field}` is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("`{0}` contains control characters")]
    ControlCharacters(&'static str),
    #[error("`{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// Characters that turn the text around on screen (a right-to-left override makes
    /// "Smith\u{202E}nimda" read as "Smithadmin"): a name could pass for another.
    #[error(
        "`{0}` holds invisible characters that change the direction text is shown in (such as a \
         right-to-left override), so the name could display as someone else's: type it without them"
    )]
    DirectionControls(&'static str),
    /// Only spaces, zero-width or other invisible characters: a person nobody can read.
    #[error("`{0}` has no visible character: type the name with at least one letter or digit")]
    NothingVisible(&'static str),
}

/// Longest name part we store: VARCHAR(255) in MySQL counts characters.
const MAX_NAME_CHARS: usize = 255;

/// One part of a person's name: trimmed, not empty, at most 255 characters, no control
/// characters. Anything else (quotes, SQL, emoji) is kept exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePart(String);

impl NamePart {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidInput> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(InvalidInput::Empty(field));
        }
        if s.chars().count() > MAX_NAME_CHARS {
            return Err(InvalidInput::TooLong {
                field,
                max: MAX_NAME_CHARS,
            });
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidInput::ControlCharacters(field));
        }
        if s.chars().any(is_direction_control) {
            return Err(InvalidInput::DirectionControls(field));
        }
        if s.chars().all(is_invisible) {
            return Err(InvalidInput::NothingVisible(field));
        }
        Ok(NamePart(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) and the
/// implicit marks (U+200E, U+200F, U+061C): each can reorder how the rest of a name is shown.
pub fn is_direction_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// A character that draws nothing: white space, a format character (zero-width space and joiners,
/// soft hyphen, word joiner, byte order mark, tags, …), a variation selector, or one of the
/// letters that are blank by design (Hangul fillers, the braille blank).
pub fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.is_whitespace()
        || c.general_category() == GeneralCategory::Format
        || matches!(
            c,
            '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FFA0}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// A person's first and last name. The last name may be empty: people with one name (Bono,
/// Pelé) are stored with an empty `last_name`, which the database's `NOT NULL` column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName {
    pub first: NamePart,
    pub last: NamePart,
}

impl PersonName {
    /// `last` missing or blank (only white space) is a person with one name; any other last
    /// name follows the same rules as the first.
    pub fn parse(first: &str, last: &str) -> Result<Self, InvalidInput> {
        let last = if last.trim().is_empty() {
            NamePart(String::new())
        } else {
            NamePart::parse("last_name", last)?
        };
        Ok(PersonName {
            first: NamePart::parse("first_name", first)?,
            last,
        })
    }

    /// `First_Last` folder names of an enrolment tree (`Ada_Lovelace`, `Jean_Claude_Van_Damme`):
    /// the first word is the first name, the rest the last name (`Madonna`: one name).
    pub fn from_folder_name(folder: &str) -> Result<Self, InvalidInput> {
        let mut parts = folder.split('_').filter(|p| !p.is_empty());
        let first = parts.next().unwrap_or_default();
        let last = parts.collect::<Vec<_>>().join(" ");
        PersonName::parse(first, &last)
    }
}

/// A person's name as shown: "First Last", or "First" alone for a person with one name.
pub fn display_name(first: &str, last: &str) -> String {
    if last.is_empty() {
        first.to_owned()
    } else {
        format!("{first} {last}")
    }
}

/// Which face of a registration photo is the person: the clear subject (see
/// [`crate::subject`]), or the one the client picked by its index in the list `/detect` and a
/// `several_faces` answer give (largest first), or by a box the detected face overlaps best.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaceChoice {
    Subject,
    Index(usize),
    Box([f32; 4]),
}

impl FaceChoice {
    /// From the form's `face` and `box` fields (absent: the subject; both: refused).
    pub fn parse(face: Option<&str>, bbox: Option<&str>) -> Result<Self, InvalidInput> {
        let invalid = |field, reason: String| InvalidInput::Invalid { field, reason };
        match (face.map(str::trim), bbox.map(str::trim)) {
            (None, None) => Ok(FaceChoice::Subject),
            (Some(_), Some(_)) => Err(invalid(
                "face",
                "send either `face` or `box`, not both".into(),
            )),
            (Some(raw), None) => raw.parse::<usize>().map(FaceChoice::Index).map_err(|_| {
                invalid(
                    "face",
                    format!(
                        "`{raw}` is not a face index (0 for the first face, 1 for the next, …)"
                    ),
                )
            }),
            (None, Some(raw)) => {
                let numbers: Vec<f32> = raw
                    .split(',')
                    .map(|n| n.trim().parse::<f32>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| {
                        invalid("box", format!("`{raw}` is not four numbers x1,y1,x2,y2"))
                    })?;
                let &[x1, y1, x2, y2] = numbers.as_slice() else {
                    return Err(invalid(
                        "box",
                        format!("`{raw}` is not four numbers x1,y1,x2,y2"),
                    ));
                };
                if numbers.iter().any(|n| !n.is_finite() || *n < 0.0) || x2 <= x1 || y2 <= y1 {
                    return Err(invalid(
                        "box",
                        format!("`{raw}`: a box is x1,y1,x2,y2 in pixels, not negative, with x2 > x1 and y2 > y1"),
                    ));
                }
                Ok(FaceChoice::Box([x1, y1, x2, y2]))
            }
        }
    }
}

/// The kiosk a check-in came from: free text, trimmed, at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kiosk(String);

impl Kiosk {
    /// `None` for an absent or blank value.
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidInput> {
        let s = raw.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if s.chars().count() > MAX_NAME_CHARS {
            return Err(InvalidInput::TooLong {
                field: "kiosk",
                max: MAX_NAME_CHARS,
            });
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidInput::ControlCharacters("kiosk"));
        }
        Ok(Some(Kiosk(s.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name an account logs in with: 1 to 64 ASCII letters, digits, `.`, `_` or `-`, starting
/// with a letter or digit, kept in lower case so that `Alice` and `alice` are one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

/// Longest username: a login form field, not a name to read.
const MAX_USERNAME_CHARS: usize = 64;

impl Username {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(InvalidInput::Empty("username"));
        }
        if s.len() > MAX_USERNAME_CHARS {
            return Err(InvalidInput::TooLong {
                field: "username",
                max: MAX_USERNAME_CHARS,
            });
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if !s.chars().all(allowed) || !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(InvalidInput::Invalid {
                field: "username",
                reason: "use letters, digits, `.`, `_` or `-`, starting with a letter or digit"
                    .into(),
            });
        }
        Ok(Username(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as typed: 10 to 1024 characters, kept exactly (spaces included). Its `Debug`
/// never shows it, so it cannot end up in a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Argon2 takes any length; the cap keeps one login from hashing megabytes.
pub const MAX_PASSWORD_CHARS: usize = 1024;

impl Password {
    /// A new password being set: refused unless 10 to 1024 characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let n = raw.chars().count();
        if n == 0 {
            return Err(InvalidInput::Empty("password"));
        }
        if n < MIN_PASSWORD_CHARS {
            return Err(InvalidInput::Invalid {
                field: "password",
                reason: format!("use at least {MIN_PASSWORD_CHARS} characters"),
            });
        }
        if n > MAX_PASSWORD_CHARS {
            return Err(InvalidInput::TooLong {
                field: "password",
                max: MAX_PASSWORD_CHARS,
            });
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// What a machine key is called (`front door`): trimmed, 1 to 100 characters, no control
/// characters. A kiosk's check-ins are recorded under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

const MAX_KEY_NAME_CHARS: usize = 100;

impl KeyName {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(InvalidInput::Empty("name"));
        }
        if s.chars().count() > MAX_KEY_NAME_CHARS {
            return Err(InvalidInput::TooLong {
                field: "name",
                max: MAX_KEY_NAME_CHARS,
            });
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidInput::ControlCharacters("name"));
        }
        Ok(KeyName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Embeddings are made by the vision crate; the rest of rollcall names them from here.
pub use rollcall_vision::embedding::{Embedding, Similarity};

/// The similarity at or above which two faces are the same person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold(f32);

impl Threshold {
    pub fn new(value: f32) -> Result<Self, InvalidInput> {
        if value.is_finite() && (-1.0..=1.0).contains(&value) {
            Ok(Threshold(value))
        } else {
            Err(InvalidInput::Invalid {
                field: "threshold",
                reason: format!("{value} is not a cosine similarity between -1 and 1"),
            })
        }
    }

    pub fn value(self) -> f32 {
        self.0
    }

    /// [`matching::accepts`], the rule `rollcall eval` calibrates with.
    pub fn accepts(self, s: Similarity) -> bool {
        matching::accepts(f64::from(s.0), f64::from(self.0))
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // To the 0.0005 grid derived thresholds lie on, without trailing zeros: 0.9505, 0.962.
        write!(f, "{}", (f64::from(self.0) * 1e4).round() / 1e4)
    }
}

/// The two upload formats, told apart by their first bytes (not by the file name, which a
/// browser or script may get wrong).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
}

impl ImageFormat {
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageFormat::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageFormat::Png)
        } else {
            None
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
        }
    }

    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
            "png" => Some(ImageFormat::Png),
            _ => None,
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
        }
    }
}

/// How many days check-ins are kept (`--retention-days`): at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDays(u32);

impl RetentionDays {
    /// A century: past that, a date calculation would overflow before anything is purged.
    const MAX: u32 = 36_500;

    pub fn new(days: u32) -> Result<Self, InvalidInput> {
        if (1..=Self::MAX).contains(&days) {
            Ok(RetentionDays(days))
        } else {
            Err(InvalidInput::Invalid {
                field: "retention_days",
                reason: format!("{days} is not a number of days from 1 to {}", Self::MAX),
            })
        }
    }

    pub fn days(self) -> u32 {
        self.0
    }

    /// Check-ins before this instant are older than the retention period.
    pub fn cutoff(self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::days(i64::from(self.0))
    }
}

/// The first day a filter may name: MySQL's DATETIME starts here (SQLite's text would sort any
/// four-digit year; one range for both backends).
pub const FIRST_DAY: NaiveDate = NaiveDate::from_ymd_opt(1000, 1, 1).expect("a valid date");
/// The last day a filter may name: DATETIME ends here, and a fifth year digit would sort
/// before every four-digit year in SQLite's text.
pub const LAST_DAY: NaiveDate = NaiveDate::from_ymd_opt(9999, 12, 31).expect("a valid date");

/// A calendar day (UTC), `YYYY-MM-DD`, from [`FIRST_DAY`] to [`LAST_DAY`].
pub fn parse_day(field: &'static str, raw: &str) -> Result<NaiveDate, InvalidInput> {
    let s = raw.trim();
    let malformed = || InvalidInput::Invalid {
        field,
        reason: format!("`{raw}` is not a date like 2026-11-24"),
    };
    // chrono also takes a sign or a fifth year digit: a date, but outside the range.
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| malformed())?;
    if !(FIRST_DAY..=LAST_DAY).contains(&day) {
        return Err(InvalidInput::Invalid {
            field,
            reason: format!("`{s}` is outside the days the log holds, {FIRST_DAY} to {LAST_DAY}"),
        });
    }
    // Inside the range, only the plain spelling (`+2026-01-01` is not one).
    if s.len() != 10 || !s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(malformed());
    }
    Ok(day)
}

/// An inclusive range of UTC days, as the attendance filters take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl DayRange {
    pub const ALL: DayRange = DayRange {
        from: None,
        to: None,
    };

    pub fn new(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Self, InvalidInput> {
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(InvalidInput::Invalid {
                    field: "from",
                    reason: format!("{f} is after {t}"),
                });
            }
        }
        Ok(DayRange { from, to })
    }

    pub fn day(day: NaiveDate) -> Self {
        DayRange {
            from: Some(day),
            to: Some(day),
        }
    }

    /// `[start, end)` instants: midnight of `from`, midnight after `to`.
    pub fn bounds(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let start = self
            .from
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc());
        // No end after the last day: its midnight after (year 10000) is beyond what MySQL stores
        // and would sort first in SQLite's text, matching nothing.
        let end = self
            .to
            .filter(|d| *d < LAST_DAY)
            .and_then(|d| d.succ_opt())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc());
        (start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_kept_intact() {
        let n = PersonName::parse("  Zoë \"Z\" ", "O'Brien; DROP TABLE users;-- 🙂").unwrap();
        assert_eq!(n.first.as_str(), "Zoë \"Z\"");
        assert_eq!(n.last.as_str(), "O'Brien; DROP TABLE users;-- 🙂");
        assert_eq!(
            PersonName::parse(" ", "x"),
            Err(InvalidInput::Empty("first_name"))
        );
        assert!(PersonName::parse("a\u{0}", "x").is_err());
        assert!(PersonName::parse(&"a".repeat(256), "x").is_err());
    }

    #[test]
    fn a_person_may_have_one_name_but_not_a_hidden_last_name() {
        for blank in ["", "  ", "\t"] {
            let n = PersonName::parse("Bono", blank).unwrap();
            assert_eq!((n.first.as_str(), n.last.as_str()), ("Bono", ""));
        }
        assert_eq!(
            PersonName::parse("Pelé", "\u{200B}"),
            Err(InvalidInput::NothingVisible("last_name"))
        );
        assert_eq!(
            PersonName::parse("Pelé", "x\u{202E}"),
            Err(InvalidInput::DirectionControls("last_name"))
        );
        assert_eq!(
            PersonName::parse("", "Bono"),
            Err(InvalidInput::Empty("first_name"))
        );
    }

    #[test]
    fn names_that_would_show_as_something_else_are_refused() {
        for bidi in [
            '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            assert_eq!(
                PersonName::parse("Ada", &format!("Smith{bidi}nimda")),
                Err(InvalidInput::DirectionControls("last_name")),
                "U+{:04X}",
                bidi as u32
            );
        }
        for blank in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}\u{2060}",
            "\u{FEFF} \u{00AD}",
            "\u{3164}",
            "\u{2800}",
            "\u{E0041}",
        ] {
            assert_eq!(
                PersonName::parse(blank, "Smith"),
                Err(InvalidInput::NothingVisible("first_name")),
                "{blank:?}"
            );
        }
        // Joiners inside a visible name are part of how some scripts and emoji are written.
        let n = PersonName::parse("👩\u{200D}💻", "\u{05D3}\u{05D5}\u{05D3}").unwrap();
        assert_eq!(n.first.as_str(), "👩\u{200D}💻");
        assert_eq!(n.last.as_str(), "דוד");
    }

    #[test]
    fn folder_names_split_on_the_first_underscore() {
        let n = PersonName::from_folder_name("Jean_Claude_Van_Damme").unwrap();
        assert_eq!(
            (n.first.as_str(), n.last.as_str()),
            ("Jean", "Claude Van Damme")
        );
        let one = PersonName::from_folder_name("Madonna").unwrap();
        assert_eq!((one.first.as_str(), one.last.as_str()), ("Madonna", ""));
        assert!(PersonName::from_folder_name("_").is_err());
    }

    #[test]
    fn a_face_is_chosen_by_index_or_box_and_nothing_else() {
        assert_eq!(FaceChoice::parse(None, None), Ok(FaceChoice::Subject));
        assert_eq!(
            FaceChoice::parse(Some(" 2 "), None),
            Ok(FaceChoice::Index(2))
        );
        assert_eq!(
            FaceChoice::parse(None, Some("1, 2.5,30,40")),
            Ok(FaceChoice::Box([1.0, 2.5, 30.0, 40.0]))
        );
        for bad in ["-1", "one", "1.5", "", "NaN", "99999999999999999999999"] {
            assert!(FaceChoice::parse(Some(bad), None).is_err(), "face={bad}");
        }
        for bad in [
            "1,2,3",
            "1,2,3,4,5",
            "NaN,0,10,10",
            "-1,0,10,10",
            "10,0,5,10",
            "0,0,inf,10",
            "a,b,c,d",
        ] {
            assert!(FaceChoice::parse(None, Some(bad)).is_err(), "box={bad}");
        }
        assert!(FaceChoice::parse(Some("0"), Some("0,0,1,1")).is_err());
    }

    #[test]
    fn day_ranges_cover_whole_days() {
        let d = parse_day("date", "2026-11-24").unwrap();
        let (s, e) = DayRange::day(d).bounds();
        assert_eq!(s.unwrap().to_rfc3339(), "2026-11-24T00:00:00+00:00");
        assert_eq!(e.unwrap().to_rfc3339(), "2026-11-25T00:00:00+00:00");
        assert!(parse_day("date", "24/11/2026").is_err());
        assert!(DayRange::new(Some(d), d.pred_opt()).is_err());
    }

    #[test]
    fn days_are_four_digit_years_from_1000_to_9999() {
        assert_eq!(parse_day("from", "1000-01-01"), Ok(FIRST_DAY));
        assert_eq!(parse_day("to", " 9999-12-31 "), Ok(LAST_DAY));
        for bad in [
            "0999-12-31",
            "0000-01-01",
            "-9999-01-01",
            "10000-01-01",
            "+2026-01-01",
            "",
        ] {
            assert!(
                matches!(
                    parse_day("to", bad),
                    Err(InvalidInput::Invalid { field: "to", .. })
                ),
                "{bad:?}"
            );
        }
        // The last day has no midnight after it to stop at: the range runs to the end.
        assert_eq!(DayRange::day(LAST_DAY).bounds().1, None);
    }

    #[test]
    fn usernames_are_plain_and_lower_case() {
        assert_eq!(
            Username::parse(" Alice.B-1 ").unwrap().as_str(),
            "alice.b-1"
        );
        for bad in ["", "-alice", "al ice", "alicé", "a/b", &"a".repeat(65)] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Username::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn passwords_have_a_floor_and_a_ceiling_and_stay_hidden() {
        assert!(Password::parse("123456789").is_err());
        assert!(Password::parse("").is_err());
        let p = Password::parse(" ten chars ").unwrap();
        assert_eq!(p.as_str(), " ten chars ");
        assert!(Password::parse(&"x".repeat(1024)).is_ok());
        assert!(Password::parse(&"x".repeat(1025)).is_err());
        assert_eq!(format!("{p:?}"), "Password(***)");
        assert_eq!(
            KeyName::parse(" front door ").unwrap().as_str(),
            "front door"
        );
        assert!(KeyName::parse(" ").is_err());
        assert!(KeyName::parse("a\nb").is_err());
    }

    #[test]
    fn retention_is_whole_days_back_from_now() {
        use chrono::TimeZone;
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 15, 0, 0).unwrap();
        let r = RetentionDays::new(30).unwrap();
        assert_eq!(r.cutoff(now).to_rfc3339(), "2026-10-27T15:00:00+00:00");
        assert!(RetentionDays::new(0).is_err());
        assert!(RetentionDays::new(36_500).is_ok());
        assert!(RetentionDays::new(36_501).is_err());
    }

    #[test]
    fn formats_are_sniffed() {
        assert_eq!(
            ImageFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            ImageFormat::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(ImageFormat::Png)
        );
        assert_eq!(ImageFormat::sniff(b"GIF89a"), None);
    }
}
