//! `/attendance`: the log (JSON and CSV), who was present on a day, events per day.

use super::error::{ApiError, ErrorCode};
use super::openapi::ErrorBody;
use super::AppState;
use crate::attendance::{daily, summary, write_csv, DayCount, PresentRow};
use crate::audit::{Actor, Entry, Target};
use crate::domain::{parse_day, DayRange};
use crate::store::{AttendanceFilter, AttendanceRecord};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;

/// `date=` or `from=`/`to=`, and `user_id=`; for the log itself also `limit=` and `offset=`
/// (pages, newest first); all optional.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filters {
    /// One day, `YYYY-MM-DD` (UTC), from 1000-01-01 to 9999-12-31 (as `from` and `to`).
    #[param(value_type = Option<chrono::NaiveDate>)]
    date: Option<String>,
    /// The first day, inclusive.
    #[param(value_type = Option<chrono::NaiveDate>)]
    from: Option<String>,
    /// The last day, inclusive.
    #[param(value_type = Option<chrono::NaiveDate>)]
    to: Option<String>,
    /// Only this user's events.
    #[param(value_type = Option<i64>)]
    user_id: Option<String>,
    /// The page size, 1 to 100000 (default: all); the log and its CSV only.
    #[param(value_type = Option<u64>)]
    limit: Option<String>,
    /// How many of the newest events to skip (default 0); the log and its CSV only.
    #[param(value_type = Option<u64>)]
    offset: Option<String>,
}

/// The largest page `limit=` may ask for.
const MAX_PAGE: u64 = 100_000;

/// Days shown by `/attendance/daily` when no range is given.
const DEFAULT_DAILY_DAYS: u64 = 30;

impl Filters {
    fn days(&self) -> Result<DayRange, ApiError> {
        let day = |field, v: &Option<String>| {
            v.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| parse_day(field, s))
                .transpose()
        };
        if let Some(d) = day("date", &self.date)? {
            return Ok(DayRange::day(d));
        }
        Ok(DayRange::new(
            day("from", &self.from)?,
            day("to", &self.to)?,
        )?)
    }

    fn filter(&self) -> Result<AttendanceFilter, ApiError> {
        let (since, before) = self.days()?.bounds();
        let user_id = match self.user_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(super::users::parse_id(raw)?),
        };
        Ok(AttendanceFilter {
            since,
            before,
            user_id,
            ..Default::default()
        })
    }

    /// [`filter`](Self::filter) with the page `limit=` and `offset=` ask for.
    fn page(&self) -> Result<AttendanceFilter, ApiError> {
        let number = |field: &str, v: &Option<String>| -> Result<Option<u64>, ApiError> {
            match v.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(raw) => raw.parse().map(Some).map_err(|_| {
                    ApiError::bad_request(format!("{field} must be a whole number, not `{raw}`"))
                }),
            }
        };
        let limit = number("limit", &self.limit)?;
        if limit.is_some_and(|n| n == 0 || n > MAX_PAGE) {
            return Err(ApiError::bad_request(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        Ok(AttendanceFilter {
            limit,
            offset: number("offset", &self.offset)?.unwrap_or(0),
            ..self.filter()?
        })
    }
}

fn filters(q: Result<Query<Filters>, QueryRejection>) -> Result<Filters, ApiError> {
    q.map(|Query(f)| f)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// Every record the filters match (for the summaries).
async fn records(state: &AppState, f: &Filters) -> Result<Vec<AttendanceRecord>, ApiError> {
    Ok(state.rollcall.attendance(f.filter()?).await?)
}

/// The page of records the filters ask for (for the log and its CSV).
async fn page(state: &AppState, f: &Filters) -> Result<Vec<AttendanceRecord>, ApiError> {
    Ok(state.rollcall.attendance(f.page()?).await?)
}

#[utoipa::path(
    get,
    path = "/attendance",
    tag = "attendance",
    params(Filters),
    responses(
        (status = 200, description = "The events, newest first", body = Vec<AttendanceRecord>),
        (status = 400, description = "A malformed filter or a day outside 1000-01-01 to 9999-12-31 (`bad_request`)", body = ErrorBody),
        (status = 503, description = "The database is unreachable (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    q: Result<Query<Filters>, QueryRejection>,
) -> Result<Json<Vec<AttendanceRecord>>, ApiError> {
    Ok(Json(page(&state, &filters(q)?).await?))
}

#[utoipa::path(
    get,
    path = "/attendance.csv",
    tag = "attendance",
    params(Filters),
    responses(
        (status = 200, description = "The events as CSV with a header row, newest first", body = String, content_type = "text/csv"),
        (status = 400, description = "A malformed filter or a day outside 1000-01-01 to 9999-12-31 (`bad_request`)", body = ErrorBody),
        (status = 503, description = "The database is unreachable (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn csv(
    State(state): State<AppState>,
    actor: Actor,
    q: Result<Query<Filters>, QueryRejection>,
) -> Result<Response, ApiError> {
    let records = page(&state, &filters(q)?).await?;
    let mut body = Vec::new();
    write_csv(&records, &mut body)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let entry = Entry::export(&actor, Target::ATTENDANCE, records.len());
    state.rollcall.audit(&entry).await;
    Ok(super::audit::csv_response(body, "attendance.csv"))
}

/// Who was present on `date` (default: today, UTC).
#[utoipa::path(
    get,
    path = "/attendance/summary",
    tag = "attendance",
    params(Filters),
    responses(
        (status = 200, description = "One row per person present, sorted by name", body = Vec<PresentRow>),
        (status = 400, description = "A malformed filter or a day outside 1000-01-01 to 9999-12-31 (`bad_request`)", body = ErrorBody),
        (status = 503, description = "The database is unreachable (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn day_summary(
    State(state): State<AppState>,
    q: Result<Query<Filters>, QueryRejection>,
) -> Result<Json<Vec<PresentRow>>, ApiError> {
    let mut f = filters(q)?;
    if f.date.is_none() && f.from.is_none() && f.to.is_none() {
        f.date = Some(Utc::now().date_naive().to_string());
    }
    Ok(Json(summary(&records(&state, &f).await?)))
}

/// Present people and events per day, from `from` to `to` (default: the last 30 days).
#[utoipa::path(
    get,
    path = "/attendance/daily",
    tag = "attendance",
    params(Filters),
    responses(
        (status = 200, description = "One row per day, days without events included", body = Vec<DayCount>),
        (status = 400, description = "A malformed filter or a day outside 1000-01-01 to 9999-12-31 (`bad_request`)", body = ErrorBody),
        (status = 503, description = "The database is unreachable (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn per_day(
    State(state): State<AppState>,
    q: Result<Query<Filters>, QueryRejection>,
) -> Result<Json<Vec<DayCount>>, ApiError> {
    let mut f = filters(q)?;
    let range = f.days()?;
    let to = range.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = range.from.unwrap_or_else(|| {
        (to - chrono::Days::new(DEFAULT_DAILY_DAYS - 1)).max(crate::domain::FIRST_DAY)
    });
    if from > to {
        return Err(ApiError::bad_request(format!(
            "from {from} is after to {to}"
        )));
    }
    if (to - from).num_days() > 3660 {
        return Err(ApiError::bad_request("ask for at most ten years of days"));
    }
    (f.date, f.from, f.to) = (None, Some(from.to_string()), Some(to.to_string()));
    Ok(Json(daily(&records(&state, &f).await?, from, to)))
}
