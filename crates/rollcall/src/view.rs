//! How people, faces and check-ins are shown: the JSON shapes of the API (`docs/api.md`) and the
//! CLI's lines. The HTTP handlers and the CLI both print these, so a script sees the same
//! fields from `GET /users` and `rollcall users list --json`.

use crate::auth::{Caller, Role, Scope};
use crate::domain::display_name;
use crate::service::VerifiedFace;
use crate::store::{AccountRecord, CheckIn, FaceRecord, KeyRecord, UserRecord};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// A user as the API shows them.
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct UserJson {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub image_url: String,
    pub model: String,
    pub faces: i64,
    pub created_at: DateTime<Utc>,
}

impl From<UserRecord> for UserJson {
    fn from(u: UserRecord) -> Self {
        UserJson {
            image_url: format!("/users/{}/photo", u.id),
            id: u.id,
            first_name: u.first_name,
            last_name: u.last_name,
            model: u.model,
            faces: u.faces,
            created_at: u.created_at,
        }
    }
}

/// One reference face of a person (`GET /users/{id}/faces`).
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ReferenceJson {
    /// 0 for the reference held in the person's own row (the one `/users/{id}/photo` shows);
    /// the others by a number of their own. Deleting face 0 makes the oldest other face 0.
    pub id: i64,
    /// `upload`, `webcam`, `kiosk` or `cli`.
    #[schema(example = "upload")]
    pub source: String,
    pub model: String,
    pub created_at: DateTime<Utc>,
    pub photo_url: String,
}

impl From<FaceRecord> for ReferenceJson {
    fn from(f: FaceRecord) -> Self {
        ReferenceJson {
            photo_url: format!("/users/{}/faces/{}/photo", f.user_id, f.id),
            id: f.id,
            source: f.source.as_str().to_owned(),
            model: f.model,
            created_at: f.created_at,
        }
    }
}

/// One face of the frame as `/verify` answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FaceJson {
    /// `[x1, y1, x2, y2]` in pixels of the decoded image, not clipped to it.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub probability: f32,
    #[serde(rename = "match")]
    pub matched: Option<MatchJson>,
    pub checked_in: bool,
    /// The most similar registered person's similarity; null when nobody is registered.
    pub best_similarity: Option<f64>,
    /// The next most similar person's, when the margin rule compared them (the best reached
    /// the threshold); shown to admins only.
    pub runner_up_similarity: Option<f64>,
}

/// The registered person a face matched.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchJson {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub similarity: f64,
}

/// A check-in as `/verify` refers to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventRef {
    pub id: i64,
    pub at: DateTime<Utc>,
}

/// The 200 of `/verify`: the largest face matched this person.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recognised {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub similarity: f64,
    /// The threshold in force.
    pub threshold: f64,
    /// How much the best person must beat the next by (0: the best alone decides).
    pub margin: f64,
    /// The false-accept rate per attempt the threshold was derived for.
    pub false_accept_rate: f64,
    /// `sampled`, `model`, `gallery`, `configured` or `default`: see docs/accuracy.md.
    #[schema(value_type = String, example = "sampled")]
    pub threshold_source: &'static str,
    pub model: String,
    /// False when the person was already checked in within the cooldown.
    pub checked_in: bool,
    /// The check-in just recorded, or the earlier one within the cooldown.
    pub attendance: Option<EventRef>,
    /// Every face of the frame, largest first.
    pub faces: Vec<FaceJson>,
    /// The frame was kept as one more reference face of the person (`kiosk_adds_references`).
    pub reference_added: bool,
    /// How liveness was established: `none` (one photo) or `challenge` (a sequence of frames
    /// that followed a challenge).
    #[schema(value_type = String, example = "challenge")]
    pub liveness: &'static str,
    /// Why a recognised person was not checked in: `liveness_required` (the server checks in
    /// only from a challenge); null otherwise.
    #[schema(value_type = Option<String>)]
    pub reason: Option<&'static str>,
}

/// A margin to 6 decimals (it is a difference of f32 similarities, or a tabulated value).
pub fn round_margin(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Similarities to 6 decimals: an f32 printed as f64 shows noise digits (0.9200000166893005).
pub fn round(x: f32) -> f64 {
    (f64::from(x) * 1e6).round() / 1e6
}

impl From<&VerifiedFace> for FaceJson {
    fn from(f: &VerifiedFace) -> Self {
        FaceJson {
            bbox: f.detection.bbox,
            probability: f.detection.probability,
            matched: f.best.as_ref().filter(|_| f.matched).map(|c| MatchJson {
                id: c.user_id,
                first_name: c.first_name.clone(),
                last_name: c.last_name.clone(),
                similarity: round(c.similarity.0),
            }),
            checked_in: matches!(f.check_in, Some(CheckIn::Recorded(_))),
            best_similarity: f.best.as_ref().map(|c| round(c.similarity.0)),
            runner_up_similarity: f.runner_up.map(|s| round(s.0)),
        }
    }
}

/// `POST /detect`'s answer: the image size and its faces, largest first (serialised directly,
/// so coordinates print as the f32 they are, as in `/verify`).
#[derive(Debug, Serialize)]
pub struct DetectJson {
    pub width: u32,
    pub height: u32,
    pub faces: Vec<rollcall_vision::Face>,
    /// The index of the face `/register` takes without `face` or `box` (the clear subject);
    /// null when there is none, or no clear one.
    pub subject: Option<usize>,
}

/// A user on one line of the CLI's output.
pub struct UserLine<'a>(pub &'a UserRecord);

impl fmt::Display for UserLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = self.0;
        write!(
            f,
            "{:>5}  {}  ({} face{}, model {}, registered {})",
            u.id,
            display_name(&u.first_name, &u.last_name),
            u.faces,
            if u.faces == 1 { "" } else { "s" },
            u.model,
            u.created_at.format("%Y-%m-%d %H:%M")
        )
    }
}

/// A machine key as listed (`GET /keys`, `rollcall keys list --json`): never the key itself.
#[derive(Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct KeyJson {
    pub id: i64,
    pub name: String,
    #[schema(value_type = String, example = "verify")]
    pub scope: Scope,
    pub created_at: DateTime<Utc>,
    /// To the minute; null when never used.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Null while the key works.
    pub revoked_at: Option<DateTime<Utc>>,
    /// A single photo sent with the key is recognised but checks nobody in.
    pub require_liveness: bool,
}

impl From<KeyRecord> for KeyJson {
    fn from(k: KeyRecord) -> Self {
        KeyJson {
            id: k.id,
            name: k.name,
            scope: k.scope,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            require_liveness: k.require_liveness,
        }
    }
}

/// A key just created (`POST /keys`): the only answer that ever holds the key.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewKeyJson {
    pub id: i64,
    pub name: String,
    #[schema(value_type = String, example = "verify")]
    pub scope: Scope,
    /// `rc_` and 43 base64url characters; shown once, only its SHA-256 is kept.
    pub key: String,
    pub created_at: DateTime<Utc>,
    /// A single photo sent with the key is recognised but checks nobody in.
    pub require_liveness: bool,
}

impl NewKeyJson {
    pub fn new(k: KeyRecord, key: String) -> Self {
        NewKeyJson {
            id: k.id,
            name: k.name,
            scope: k.scope,
            key,
            created_at: k.created_at,
            require_liveness: k.require_liveness,
        }
    }
}

/// Who is logged in (`POST /login`, `POST /setup`).
#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedIn {
    pub username: String,
    #[schema(value_type = String, example = "admin")]
    pub role: Role,
}

impl From<AccountRecord> for LoggedIn {
    fn from(a: AccountRecord) -> Self {
        LoggedIn {
            username: a.username,
            role: a.role,
        }
    }
}

/// `GET /me`: what the server takes the caller for.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeJson {
    /// `account`, `key` or `anonymous`.
    #[schema(example = "account")]
    pub kind: &'static str,
    /// The username or the key's name; null for anonymous.
    pub name: Option<String>,
    /// Accounts only: `admin` or `viewer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
    /// Keys only: `verify`, `register` or `admin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub scope: Option<Scope>,
    /// The server lets callers without credentials use `/verify` and `/detect`.
    pub anonymous_verify: bool,
}

impl MeJson {
    pub fn new(caller: &Caller, anonymous_verify: bool) -> Self {
        let (kind, name, role, scope) = match caller {
            Caller::Anonymous => ("anonymous", None, None, None),
            Caller::Account { username, role, .. } => {
                ("account", Some(username.clone()), Some(*role), None)
            }
            Caller::Key { name, scope, .. } => ("key", Some(name.clone()), None, Some(*scope)),
            Caller::Cli { user } => ("cli", Some(user.clone()), None, None),
        };
        MeJson {
            kind,
            name,
            role,
            scope,
            anonymous_verify,
        }
    }
}

/// A key on one line of the CLI's output.
pub struct KeyLine<'a>(pub &'a KeyRecord);

impl fmt::Display for KeyLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = self.0;
        let when = |t: Option<DateTime<Utc>>| {
            t.map_or_else(
                || "never".to_owned(),
                |t| t.format("%Y-%m-%d %H:%M").to_string(),
            )
        };
        write!(
            f,
            "{:>5}  {:<8}  {}  (created {}, last used {}{}{})",
            k.id,
            k.scope.as_str(),
            k.name,
            k.created_at.format("%Y-%m-%d %H:%M"),
            when(k.last_used_at),
            if k.require_liveness {
                ", liveness required"
            } else {
                ""
            },
            k.revoked_at
                .map(|t| format!(", REVOKED {}", t.format("%Y-%m-%d %H:%M")))
                .unwrap_or_default()
        )
    }
}

/// An account on one line of the CLI's output.
pub struct AccountLine<'a>(pub &'a AccountRecord);

impl fmt::Display for AccountLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0;
        write!(
            f,
            "{:>5}  {:<6}  {}  (created {})",
            a.id,
            a.role.as_str(),
            a.username,
            a.created_at.format("%Y-%m-%d %H:%M")
        )
    }
}
