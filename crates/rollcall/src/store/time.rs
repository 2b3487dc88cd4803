//! How an instant is sent to the database. Every time the store binds goes through [`DbTime`].
//!
//! sqlx sends a `DateTime<Utc>` to MySQL as a *TIMESTAMP* parameter, and MariaDB/MySQL convert
//! it through TIMESTAMP's range (1970-01-01 to 2038-01-19): outside it the value turns into NULL
//! (an insert fails, a filter `at < NULL` matches nothing). The columns are DATETIME(6)
//! (1000-01-01 to 9999-12-31, microseconds), so [`DbTime`] goes as a DATETIME parameter, which is
//! compared and stored as it is. SQLite keeps sqlx's text, RFC 3339 in UTC (`…T08:59:01+00:00`,
//! `….123456+00:00`): for four-digit years it sorts as the instants do, because `+` sorts below `.`
//! and the digits, and chrono writes the shortest of 0, 3, 6 or 9 fraction digits that holds the
//! value (so one instant has one spelling); the rows already stored keep working as they are.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::mysql::{MySql, MySqlTypeInfo};
use sqlx::sqlite::{Sqlite, SqliteArgumentValue, SqliteTypeInfo};
use sqlx::{Encode, Type};

/// An instant as a query parameter (see the module's note).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbTime(pub DateTime<Utc>);

impl Type<MySql> for DbTime {
    fn type_info() -> MySqlTypeInfo {
        <NaiveDateTime as Type<MySql>>::type_info()
    }
}

impl Encode<'_, MySql> for DbTime {
    fn encode_by_ref(&self, buf: &mut Vec<u8>) -> Result<IsNull, BoxDynError> {
        // DATETIME holds no zone: UTC's wall clock, as the connection's `time_zone` (+00:00).
        Encode::<MySql>::encode(self.0.naive_utc(), buf)
    }
}

impl Type<Sqlite> for DbTime {
    fn type_info() -> SqliteTypeInfo {
        <DateTime<Utc> as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for DbTime {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode_by_ref(&self.0, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    /// SQLite compares the text: instants written with 0, 3, 6 and 9 fraction digits, and years
    /// from 1000 to 9999, must sort and filter as the instants do.
    #[tokio::test]
    async fn sqlite_text_sorts_as_the_instants_do() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (at TEXT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        let second = Utc.with_ymd_and_hms(2026, 11, 24, 8, 59, 1).unwrap();
        let mut instants = vec![
            Utc.with_ymd_and_hms(1000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).unwrap(),
            second,
            second + Duration::nanoseconds(1),
            second + Duration::microseconds(1),
            second + Duration::milliseconds(1),
            second + Duration::milliseconds(120),
            second + Duration::nanoseconds(120_000_001),
            second + Duration::milliseconds(999),
            second + Duration::seconds(1),
            crate::domain::LAST_DAY
                .and_hms_micro_opt(23, 59, 59, 999_999)
                .unwrap()
                .and_utc(),
        ];
        // Inserted in a scrambled order, so that the row order proves nothing.
        instants.reverse();
        instants.swap(2, 7);
        for at in &instants {
            sqlx::query("INSERT INTO t (at) VALUES (?)")
                .bind(DbTime(*at))
                .execute(&pool)
                .await
                .unwrap();
        }
        let sorted: Vec<DateTime<Utc>> = sqlx::query_scalar("SELECT at FROM t ORDER BY at")
            .fetch_all(&pool)
            .await
            .unwrap();
        instants.sort();
        assert_eq!(sorted, instants);
        for (i, bound) in instants.iter().enumerate() {
            let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE at < ?")
                .bind(DbTime(*bound))
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(before, i as i64, "before {bound}");
        }
    }
}
