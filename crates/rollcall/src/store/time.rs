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
