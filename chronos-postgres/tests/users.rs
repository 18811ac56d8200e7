//! [`PgUsers`] on the real server: case folding, lookups, the `CHECK` on emails, and
//! one winner among concurrent registrations of an address.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chronos::testkit::run;
use chronos_postgres::testing::TestDb;
use chronos_postgres::{PgUsers, UserError};
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    // Microseconds, as PostgreSQL stores them.
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

#[test]
fn create_and_look_up() {
    run(async {
        let db = TestDb::create().await;
        let users = PgUsers::new(db.pool.clone());
        let id = Uuid::new_v4();
        let at = now();
        let row = users
            .create(id, "  Alice@Example.COM ", "$argon2id$hash", at)
            .await
            .unwrap();
        assert_eq!(row.id, id);
        assert_eq!(row.email, "alice@example.com");
        assert_eq!(row.password_hash, "$argon2id$hash");
        assert_eq!((row.created_at, row.updated_at), (at, at));

        assert_eq!(users.by_id(id).await.unwrap(), Some(row.clone()));
        assert_eq!(users.by_id(Uuid::new_v4()).await.unwrap(), None);
        for spelling in [
            "alice@example.com",
            "ALICE@EXAMPLE.COM",
            " Alice@example.com",
        ] {
            assert_eq!(
                users.by_email(spelling).await.unwrap(),
                Some(row.clone()),
                "{spelling}"
            );
        }
        assert_eq!(users.by_email("bob@example.com").await.unwrap(), None);
        // The hash never reaches a log through Debug.
        assert!(!format!("{row:?}").contains("argon2"));
    });
}

#[test]
fn an_email_is_unique_whatever_its_case() {
    run(async {
        let db = TestDb::create().await;
        let users = PgUsers::new(db.pool.clone());
        users
            .create(Uuid::new_v4(), "carol@example.com", "h", now())
            .await
            .unwrap();
        for spelling in [
            "carol@example.com",
            "CAROL@example.com",
            " Carol@Example.com ",
        ] {
            let err = users
                .create(Uuid::new_v4(), spelling, "h", now())
                .await
                .unwrap_err();
            assert!(matches!(err, UserError::EmailExists), "{spelling}: {err}");
        }
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(count, 1);
    });
}

#[test]
fn concurrent_registrations_of_one_address_have_one_winner() {
    run(async {
        let db = TestDb::create().await;
        // Separate pools: as separate API processes would.
        let mut handles = Vec::new();
        let start = Arc::new(tokio::sync::Barrier::new(8));
        for i in 0..8 {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect_with(db.options.clone())
                .await
                .unwrap();
            let users = PgUsers::new(pool);
            let start = start.clone();
            let spelling = if i % 2 == 0 {
                "dave@example.com"
            } else {
                "DAVE@example.com"
            };
            handles.push(tokio::spawn(async move {
                start.wait().await;
                users.create(Uuid::new_v4(), spelling, "h", now()).await
            }));
        }
        let mut won = 0;
        for handle in handles {
            match handle.await.unwrap() {
                Ok(row) => {
                    assert_eq!(row.email, "dave@example.com");
                    won += 1;
                }
                Err(UserError::EmailExists) => {}
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(won, 1);
    });
}

#[test]
fn a_failing_database_is_an_error_not_a_panic() {
    run(async {
        let db = TestDb::create().await;
        let users = PgUsers::new(db.pool.clone());
        db.pool.close().await;
        let err = users.by_id(Uuid::new_v4()).await.unwrap_err();
        assert!(matches!(err, UserError::Db { .. }), "{err}");
        assert!(err.to_string().starts_with("cannot look a user up by id"));
    });
}
