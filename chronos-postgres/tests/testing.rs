//! `TestDb` cleans up after itself, also when dropped inside a current-thread runtime.

#![allow(clippy::unwrap_used, reason = "tests")]

use chronos_postgres::testing::TestDb;

#[test]
fn a_test_database_is_dropped_even_from_a_current_thread_runtime() {
    chronos::testkit::run(async {
        // Probe: skips loudly when PostgreSQL is unreachable.
        drop(TestDb::create().await);
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (name, admin) = runtime.block_on(async {
        let db = TestDb::create().await;
        sqlx::query("SELECT 1").execute(&db.pool).await.unwrap();
        let admin = db.options.clone().database("postgres");
        (db.name.clone(), admin)
        // `db` drops here, on the runtime's only thread.
    });
    let left: i64 = runtime.block_on(async {
        let pool = sqlx::PgPool::connect_with(admin).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_one(&pool)
            .await
            .unwrap()
    });
    assert_eq!(left, 0, "database {name} was dropped");
}
