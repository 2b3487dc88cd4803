//! The settings an admin changes while the server runs (`GET /settings`, `PUT /settings`), as
//! opposed to [`crate::config`], read once at start. Each has a default; only changed values are
//! stored. A change is validated whole before anything is stored: an unknown name, a value of
//! the wrong type or out of range names its field.

use serde::Serialize;
use serde_json::{Map, Value};

/// `kiosk_adds_references`: a kiosk check-in accepted with a clear margin may become a reference.
pub const KIOSK_ADDS_REFERENCES: &str = "kiosk_adds_references";
/// `max_references_per_person`: a kiosk check-in adds no reference to a person who has this many.
pub const MAX_REFERENCES_PER_PERSON: &str = "max_references_per_person";

/// The range of `max_references_per_person`.
pub const REFERENCES_RANGE: std::ops::RangeInclusive<u32> = 1..=20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SiteSettings {
    /// Off by default: a reference photo is a choice an admin makes.
    pub kiosk_adds_references: bool,
    pub max_references_per_person: u32,
}

impl Default for SiteSettings {
    fn default() -> Self {
        SiteSettings {
            kiosk_adds_references: false,
            max_references_per_person: 5,
        }
    }
}

/// A value refused, naming its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {reason}")]
pub struct SettingError {
    pub field: String,
    pub reason: String,
}

fn refuse(field: &str, reason: impl Into<String>) -> SettingError {
    SettingError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// One setting changed: its name, the value before and after (as stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub name: &'static str,
    pub old: String,
    pub new: String,
}

impl SiteSettings {
    /// The settings from stored `(name, value)` rows. A row that does not parse (written by hand,
    /// or by another version) leaves its default, with a warning.
    pub fn from_stored(rows: &[(String, String)]) -> SiteSettings {
        let mut settings = SiteSettings::default();
        for (name, value) in rows {
            let parsed = Value::from(value.as_str());
            let json = serde_json::from_str(value).unwrap_or(parsed);
            if let Err(e) = settings.set(name, &json) {
                tracing::warn!("stored setting ignored: {e}");
            }
        }
        settings
    }

    /// Apply `patch` (a JSON object of some settings) to a copy: the new settings and what
    /// changed, or the first field refused (nothing applied).
    pub fn apply(&self, patch: &Value) -> Result<(SiteSettings, Vec<Change>), SettingError> {
        let Some(patch) = patch.as_object() else {
            return Err(refuse(
                "body",
                "send a JSON object of settings, e.g. {\"kiosk_adds_references\": true}",
            ));
        };
        let mut next = *self;
        for (name, value) in patch {
            next.set(name, value)?;
        }
        let changes = self.changes_to(&next);
        Ok((next, changes))
    }

    fn set(&mut self, name: &str, value: &Value) -> Result<(), SettingError> {
        match name {
            KIOSK_ADDS_REFERENCES => {
                self.kiosk_adds_references = value
                    .as_bool()
                    .ok_or_else(|| refuse(name, format!("{value} is not true or false")))?;
            }
            MAX_REFERENCES_PER_PERSON => {
                let range = format!(
                    "a whole number from {} to {}",
                    REFERENCES_RANGE.start(),
                    REFERENCES_RANGE.end()
                );
                let n = value
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| REFERENCES_RANGE.contains(n))
                    .ok_or_else(|| refuse(name, format!("{value} is not {range}")))?;
                self.max_references_per_person = n;
            }
            other => {
                return Err(refuse(
                    other,
                    format!(
                        "no such setting (there are `{KIOSK_ADDS_REFERENCES}` and \
                         `{MAX_REFERENCES_PER_PERSON}`)"
                    ),
                ))
            }
        }
        Ok(())
    }

    fn as_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    fn changes_to(&self, next: &SiteSettings) -> Vec<Change> {
        let (before, after) = (self.as_map(), next.as_map());
        [KIOSK_ADDS_REFERENCES, MAX_REFERENCES_PER_PERSON]
            .into_iter()
            .filter(|name| before.get(*name) != after.get(*name))
            .map(|name| Change {
                name,
                old: before.get(name).map(Value::to_string).unwrap_or_default(),
                new: after.get(name).map(Value::to_string).unwrap_or_default(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_patch_changes_what_it_names_and_says_so() {
        let start = SiteSettings::default();
        let (next, changes) = start
            .apply(&json!({ "kiosk_adds_references": true, "max_references_per_person": 5 }))
            .unwrap();
        assert!(next.kiosk_adds_references);
        assert_eq!(
            changes,
            vec![Change {
                name: KIOSK_ADDS_REFERENCES,
                old: "false".into(),
                new: "true".into()
            }]
        );
        let stored: Vec<(String, String)> = changes
            .iter()
            .map(|c| (c.name.to_owned(), c.new.clone()))
            .collect();
        assert_eq!(SiteSettings::from_stored(&stored), next);
    }

    #[test]
    fn hostile_values_name_their_field() {
        let s = SiteSettings::default();
        for (patch, field) in [
            (
                json!({ "kiosk_adds_references": "yes" }),
                "kiosk_adds_references",
            ),
            (
                json!({ "kiosk_adds_references": 1 }),
                "kiosk_adds_references",
            ),
            (
                json!({ "max_references_per_person": 0 }),
                "max_references_per_person",
            ),
            (
                json!({ "max_references_per_person": 21 }),
                "max_references_per_person",
            ),
            (
                json!({ "max_references_per_person": 2.5 }),
                "max_references_per_person",
            ),
            (
                json!({ "max_references_per_person": -1 }),
                "max_references_per_person",
            ),
            (
                json!({ "max_references_per_person": 4294967297u64 }),
                "max_references_per_person",
            ),
            (json!({ "threshold": 0.5 }), "threshold"),
            (json!([1, 2]), "body"),
        ] {
            assert_eq!(s.apply(&patch).unwrap_err().field, field, "{patch}");
        }
        // The first bad field refuses the whole patch.
        assert!(s
            .apply(&json!({ "kiosk_adds_references": true, "nope": 1 }))
            .is_err());
        assert_eq!(
            SiteSettings::from_stored(&[("max_references_per_person".into(), "99".into())]),
            s
        );
    }
}
