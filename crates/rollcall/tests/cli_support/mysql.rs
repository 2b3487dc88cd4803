//! A fresh MariaDB database per test.

use super::runtime;

/// MariaDB of the test machine (`.ci/run` starts it); `ROLLCALL_TEST_MYSQL` overrides.
pub fn mysql_server_url() -> String {
    std::env::var("ROLLCALL_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// A fresh, empty MariaDB database, dropped when this goes out of scope.
pub struct MysqlDatabase {
    name: String,
}

impl MysqlDatabase {
    pub fn create() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .subsec_nanos();
        let name = format!("rollcall_cli_{}_{nanos}", std::process::id());
        Self::admin(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"));
        MysqlDatabase { name }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", mysql_server_url(), self.name)
    }

    pub fn admin(sql: &str) {
        runtime().block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::MySqlConnection::connect(&mysql_server_url())
                .await
                .expect("connecting to MariaDB");
            sqlx::query(sql)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let _ = conn.close().await;
        });
    }
}

impl Drop for MysqlDatabase {
    fn drop(&mut self) {
        Self::admin(&format!("DROP DATABASE IF EXISTS {}", self.name));
    }
}
