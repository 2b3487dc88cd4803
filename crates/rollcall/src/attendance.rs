//! Check-in rules and the views of the log: a person is checked in at most once per cooldown
//! (even when several kiosks see them at the same moment), per-day summaries, daily counts and
//! the CSV export.

use crate::audit::{Action, Actor, Entry, Target};
use crate::domain::RetentionDays;
use crate::liveness::Liveness;
use crate::store::{AttendanceRecord, CheckIn, NewCheckIn, Store, StoreError};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records check-ins. Two layers keep one event per cooldown: an in-process lock per person
/// (concurrent verifies of one person wait for each other instead of racing to the database),
/// and the database transaction of [`Store::check_in`] (several processes, one database).
pub struct Attendance {
    store: Store,
    cooldown: Duration,
    locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

impl Attendance {
    pub fn new(store: Store, cooldown: Duration) -> Self {
        Attendance {
            store,
            cooldown,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// A check-in from one photo (`liveness` `none`).
    pub async fn check_in(
        &self,
        user_id: i64,
        similarity: f32,
        kiosk: Option<&str>,
        model: &str,
    ) -> Result<CheckIn, StoreError> {
        self.check_in_with(user_id, similarity, kiosk, model, Liveness::None)
            .await
    }

    /// A check-in, recording how liveness was established.
    pub async fn check_in_with(
        &self,
        user_id: i64,
        similarity: f32,
        kiosk: Option<&str>,
        model: &str,
        liveness: Liveness,
    ) -> Result<CheckIn, StoreError> {
        let lock = self.lock_for(user_id);
        let result = {
            let _guard = lock.lock().await;
            // Taken under the lock so that events of one person are in time order.
            let at = now_micros();
            let cooldown =
                chrono::Duration::from_std(self.cooldown).unwrap_or(chrono::Duration::MAX);
            // A cooldown of centuries reaches no further back than the first storable day.
            let first = crate::domain::FIRST_DAY.and_time(NaiveTime::MIN).and_utc();
            let not_since = at.checked_sub_signed(cooldown).unwrap_or(first).max(first);
            self.store
                .check_in_with(
                    NewCheckIn {
                        user_id,
                        at,
                        similarity: f64::from(similarity),
                        kiosk,
                        model,
                        not_since,
                    },
                    liveness,
                )
                .await
        };
        self.release(user_id, lock);
        result
    }

    fn lock_for(&self, user_id: i64) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(user_id).or_default().clone()
    }

    /// Forget the person's lock once nobody else holds or waits for it.
    fn release(&self, user_id: i64, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        drop(lock);
        if locks
            .get(&user_id)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            locks.remove(&user_id);
        }
    }
}

/// Delete the check-ins older than `retention`; returns how many.
pub async fn purge_expired(
    store: &Store,
    retention: RetentionDays,
    by: &Actor,
) -> Result<u64, StoreError> {
    let cutoff = retention.cutoff(now_micros());
    let purged = store.purge_attendance(cutoff).await?;
    if purged > 0 {
        tracing::info!(
            "retention: deleted {purged} check-in(s) older than {} days (before {cutoff})",
            retention.days()
        );
        let entry = Entry::new(by, Action::Purge)
            .target(Target::ATTENDANCE)
            .detail(format!(
                "{purged} check-in(s) older than {} days",
                retention.days()
            ));
        store.audit(&entry).await;
    }
    Ok(purged)
}

/// How often a running server purges expired check-ins.
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Now, to the microsecond: what MySQL's DATETIME(6) keeps, so a stored event reads back equal.
pub fn now_micros() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// Who was present on a day.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct PresentRow {
    pub user_id: i64,
    pub first_name: String,
    pub last_name: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub count: usize,
}

/// One person per row, sorted by name.
pub fn summary(records: &[AttendanceRecord]) -> Vec<PresentRow> {
    let mut by_user: HashMap<i64, PresentRow> = HashMap::new();
    for r in records {
        let row = by_user.entry(r.user_id).or_insert_with(|| PresentRow {
            user_id: r.user_id,
            first_name: r.first_name.clone(),
            last_name: r.last_name.clone(),
            first_seen: r.at,
            last_seen: r.at,
            count: 0,
        });
        row.first_seen = row.first_seen.min(r.at);
        row.last_seen = row.last_seen.max(r.at);
        row.count += 1;
    }
    let mut rows: Vec<_> = by_user.into_values().collect();
    rows.sort_by(|a, b| {
        (&a.last_name, &a.first_name, a.user_id).cmp(&(&b.last_name, &b.first_name, b.user_id))
    });
    rows
}

/// Present people and events of one day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct DayCount {
    pub date: NaiveDate,
    pub present: usize,
    pub events: usize,
}

/// One row per day from `from` to `to` inclusive, days without events included (a chart
/// needs its zeros).
pub fn daily(records: &[AttendanceRecord], from: NaiveDate, to: NaiveDate) -> Vec<DayCount> {
    let mut days: BTreeMap<NaiveDate, (std::collections::HashSet<i64>, usize)> = BTreeMap::new();
    for day in from.iter_days().take_while(|d| *d <= to) {
        days.insert(day, Default::default());
    }
    for r in records {
        if let Some((people, events)) = days.get_mut(&r.at.date_naive()) {
            people.insert(r.user_id);
            *events += 1;
        }
    }
    days.into_iter()
        .map(|(date, (people, events))| DayCount {
            date,
            present: people.len(),
            events,
        })
        .collect()
}

pub const CSV_HEADER: [&str; 8] = [
    "id",
    "user_id",
    "first_name",
    "last_name",
    "at",
    "similarity",
    "kiosk",
    "liveness",
];

/// The log as CSV with a header row; times in RFC 3339 (UTC). Names and kiosks are made safe
/// for spreadsheets ([`crate::csvsafe`]).
pub fn write_csv<W: std::io::Write>(records: &[AttendanceRecord], out: W) -> csv::Result<()> {
    let mut w = crate::csvsafe::Writer::new(out);
    w.row(CSV_HEADER)?;
    for r in records {
        w.row([
            r.id.to_string(),
            r.user_id.to_string(),
            r.first_name.clone(),
            r.last_name.clone(),
            r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            format!("{:.4}", r.similarity),
            r.kiosk.clone().unwrap_or_default(),
            r.liveness.clone(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The per-person locks live only while someone holds or waits for them, so the map does
    /// not grow with every person ever seen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn person_locks_are_forgotten_after_each_check_in() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&crate::config::sqlite_url(&dir.path().join("t.db")))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let attendance = Arc::new(Attendance::new(store, Duration::from_secs(300)));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let attendance = attendance.clone();
                tokio::spawn(async move { attendance.check_in(i % 2, 0.99, None, "m").await })
            })
            .collect();
        for task in tasks {
            // Nobody is registered: every call takes and releases its person's lock.
            assert!(matches!(task.await.unwrap(), Ok(CheckIn::UnknownUser)));
        }
        assert!(attendance.locks.lock().unwrap().is_empty());
        // Alone, too: the last holder forgets the lock.
        let alone = attendance.check_in(7, 0.99, None, "m").await;
        assert!(matches!(alone, Ok(CheckIn::UnknownUser)));
        assert!(attendance.locks.lock().unwrap().is_empty());
    }

    fn rec(id: i64, user_id: i64, at: DateTime<Utc>) -> AttendanceRecord {
        AttendanceRecord {
            id,
            user_id,
            first_name: "Ada".into(),
            last_name: format!("L{user_id}"),
            at,
            similarity: 0.9,
            kiosk: Some("door, \"main\"".into()),
            model: "m".into(),
            liveness: "none".into(),
        }
    }

    #[test]
    fn summaries_and_daily_counts() {
        let t = |d, h| Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap();
        let records = vec![
            rec(1, 1, t(24, 8)),
            rec(2, 1, t(24, 12)),
            rec(3, 2, t(24, 9)),
            rec(4, 2, t(26, 9)),
        ];
        let s = summary(&records[..3]);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].user_id, s[0].count, s[0].first_seen, s[0].last_seen),
            (1, 2, t(24, 8), t(24, 12))
        );

        let from = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let d = daily(&records, from, to);
        let got: Vec<_> = d.iter().map(|c| (c.present, c.events)).collect();
        assert_eq!(got, vec![(2, 3), (0, 0), (1, 1)]);
    }

    #[test]
    fn csv_has_a_header_and_quotes_fields() {
        let mut out = Vec::new();
        write_csv(
            &[rec(
                7,
                1,
                Utc.with_ymd_and_hms(2026, 11, 24, 8, 59, 1).unwrap(),
            )],
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("id,user_id,first_name,last_name,at,similarity,kiosk,liveness")
        );
        assert_eq!(
            lines.next(),
            Some("7,1,Ada,L1,2026-11-24T08:59:01Z,0.9000,\"door, \"\"main\"\"\",none")
        );
    }
}
