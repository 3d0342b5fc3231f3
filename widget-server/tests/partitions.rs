//! `avis` partitioned by month on PostgreSQL (DESIGN §14): the migration moves the rows of an
//! unpartitioned table into monthly partitions and loses nothing; the server keeps the coming
//! months' partitions ready; a vote of a month without partition makes the flusher create it;
//! a role that may not create one gets an error that says what to run; retention reads only
//! the months before its cut-off; and exactly-once holds across all of it.

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Months, TimeDelta, TimeZone, Utc};
use widget_server::store::postgres::{partition_name, PgStore, PARTITIONS_AHEAD, UNPARTITIONED_VERSION};
use widget_server::store::Store;
use widget_server::vote::{Answers, Level, Source, Vote};

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).single().unwrap()
}

fn vote(demarche: i64, when: DateTime<Utc>, i: usize) -> Vote {
    let answers = Answers {
        satisfaction: None,
        facilite: Some(Level::ALL[i % 3]),
        clarte: (!i.is_multiple_of(2)).then_some(Level::ALL[(i / 2) % 3]),
        aide: (i % 64) as u8,
        commentaire: i.is_multiple_of(3).then(|| format!("Commentaire numéro {i}").into_boxed_str()),
    };
    let mut v = Vote::accept(demarche, Source::new("button").unwrap(), Level::ALL[i % 3], answers);
    v.received_at_ms = when.timestamp_millis();
    v
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

async fn partitions(url: &str) -> BTreeSet<String> {
    client(url)
        .await
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'avis'::regclass",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn rows_in(url: &str, table: &str) -> i64 {
    client(url).await.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0)
}

fn month_of(t: DateTime<Utc>) -> chrono::NaiveDate {
    t.date_naive().with_day(1).unwrap()
}

#[tokio::test]
async fn migration_moves_rows_and_partitions_follow_the_votes() {
    let url = common::fresh_pg_database("partitions_migration").await;
    let store = PgStore::connect(&url).await.unwrap();

    // Before: the unpartitioned table of migration 6, with votes over three months of 2025
    // (one on each side of a UTC month boundary) and this month.
    store.migrate_up_to(UNPARTITIONED_VERSION).await.unwrap();
    let boundary = Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).single().unwrap();
    let mut old = Vec::new();
    for i in 0..30 {
        old.push(vote(1 + (i % 3) as i64, at(2025, 1, 10) + TimeDelta::hours(i as i64), i));
    }
    old.push(vote(1, boundary - TimeDelta::milliseconds(1), 30));
    old.push(vote(1, boundary, 31));
    for i in 32..50 {
        old.push(vote(2, Utc::now() - TimeDelta::minutes(i as i64), i));
    }
    assert_eq!(store.store_batch(&old).await.unwrap(), old.len() as u64);
    let daily_before = (store.daily(1, at(2000, 1, 1).date_naive(), at(2100, 1, 1).date_naive()).await.unwrap(),);

    // The migration proper.
    store.migrate().await.unwrap();
    assert_eq!(store.count_avis().await.unwrap(), old.len() as i64, "every row moved");
    let parts = partitions(&url).await;
    for expected in ["avis_2025_01", "avis_2025_02", "avis_2025_03"] {
        assert!(parts.contains(expected), "{expected} in {parts:?}");
    }
    assert_eq!(rows_in(&url, "avis_2025_02").await, 1, "the last millisecond of February");
    assert_eq!(rows_in(&url, "avis_2025_03").await, 1, "the first millisecond of March (UTC)");
    for k in 0..=PARTITIONS_AHEAD {
        let m = month_of(Utc::now()).checked_add_months(Months::new(k)).unwrap();
        assert!(parts.contains(&partition_name(m)), "{} ahead in {parts:?}", partition_name(m));
    }
    assert!(parts.contains("avis_2025_05"), "every month from the first avis on, even one without avis");
    assert_eq!(rows_in(&url, "ONLY avis").await, 0, "the parent holds no row");
    let pk: String = client(&url)
        .await
        .query_one(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'avis'::regclass AND contype = 'p'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pk, "PRIMARY KEY (demarche_id, received_at, id)", "migration 15's key, on every partition");
    for table in ["avis", "avis_2025_01"] {
        let indexes: Vec<String> = client(&url)
            .await
            .query("SELECT indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname", &[&table])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        // The key, the commented avis', the comments' GIN: avis_demarche_received_id is gone.
        assert_eq!(indexes.len(), 3, "{table}: {indexes:?}");
    }
    // avis_daily is untouched and still agrees with the rows.
    assert_eq!(
        (store.daily(1, at(2000, 1, 1).date_naive(), at(2100, 1, 1).date_naive()).await.unwrap(),),
        daily_before
    );
    for d in 1..=3 {
        assert_eq!(
            store.recount(d).await.unwrap(),
            store.daily(d, at(2000, 1, 1).date_naive(), at(2100, 1, 1).date_naive()).await.unwrap()
        );
    }

    // Exactly once across the migration: the same votes again (a replayed spill file) add
    // nothing, through the staging path.
    assert_eq!(store.store_batch(&old).await.unwrap(), 0);
    assert_eq!(store.count_avis().await.unwrap(), old.len() as i64);

    // A vote of a month without partition (a journal replayed after years, say): the flusher
    // creates the partition and stores it, with new votes of this month in the same batch.
    let mut mixed = vec![vote(3, at(2019, 7, 14), 60), vote(3, at(2019, 7, 15), 61)];
    mixed.extend((62..70).map(|i| vote(3, Utc::now(), i)));
    assert_eq!(store.store_batch(&mixed).await.unwrap(), mixed.len() as u64);
    assert!(partitions(&url).await.contains("avis_2019_07"));
    assert_eq!(rows_in(&url, "avis_2019_07").await, 2);
    assert_eq!(store.store_batch(&mixed).await.unwrap(), 0, "still exactly once");
    assert_eq!(
        store.recount(3).await.unwrap(),
        store.daily(3, at(2000, 1, 1).date_naive(), at(2100, 1, 1).date_naive()).await.unwrap()
    );

    // Several replicas preparing the same months at once: each month created once, no error.
    let far = Utc::now().checked_add_months(Months::new(24)).unwrap();
    let stores: Vec<PgStore> = futures_util::future::join_all((0..3).map(|_| PgStore::connect(&url)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let made = futures_util::future::join_all(stores.iter().map(|s| s.prepare_partitions(far, 2))).await;
    let mut created: Vec<String> = made.into_iter().flat_map(Result::unwrap).collect();
    created.sort();
    let expected: Vec<String> =
        (0..=2).map(|k| partition_name(month_of(far).checked_add_months(Months::new(k)).unwrap())).collect();
    assert_eq!(created, expected, "each month created by exactly one replica");

    // Retention reads only the partitions before its cut-off: erasing before 2025-02-01 erases
    // the January comments (and July 2019's) and leaves February's (one vote, i = 30) alone.
    let cut = at(2025, 2, 1).date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let before_cut = old
        .iter()
        .chain(&mixed)
        .filter(|v| v.received_at_ms < cut.timestamp_millis() && v.commentaire.is_some())
        .count();
    assert!(before_cut > 10);
    let erased = store.erase_comments_before(cut, 4).await.unwrap();
    assert_eq!(erased, before_cut as u64);
    let february_left: i64 =
        client(&url).await.query_one("SELECT count(commentaire) FROM avis_2025_02", &[]).await.unwrap().get(0);
    assert_eq!(february_left, 1);
}

/// A role that may write `avis` but not create tables: this month's partition exists (made by
/// the owner), so votes go in; a vote of a month without partition is refused with an error
/// naming the partition and the statement to run, and stays out (the flusher keeps it) until
/// the owner runs that statement.
#[tokio::test]
async fn a_role_that_cannot_create_partitions_gets_a_clear_error() {
    let url = common::fresh_pg_database("partitions_rights").await;
    let owner = PgStore::connect(&url).await.unwrap();
    owner.migrate().await.unwrap();
    let admin = client(&url).await;
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS monavis_writer; CREATE ROLE monavis_writer LOGIN; \
             REVOKE CREATE ON SCHEMA public FROM PUBLIC; \
             GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO monavis_writer;",
        )
        .await
        .unwrap();
    let writer_url = url.replacen("postgres@", "monavis_writer@", 1);
    let writer = PgStore::connect(&writer_url).await.unwrap();
    assert_eq!(writer.store_batch(&[vote(1, Utc::now(), 0)]).await.unwrap(), 1);

    let lost_month = vec![vote(1, at(2018, 4, 2), 1)];
    let err = writer.store_batch(&lost_month).await.unwrap_err().to_string();
    assert!(err.contains("avis_2018_04"), "{err}");
    assert!(err.contains("SELECT monavis_avis_partition('2018-04-01')"), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    let err = writer.prepare_partitions(at(2018, 4, 2), 0).await.unwrap_err().to_string();
    assert!(err.contains("avis_2018_04"), "{err}");

    admin.batch_execute("SELECT monavis_avis_partition('2018-04-01')").await.unwrap();
    admin.batch_execute("GRANT SELECT, INSERT, UPDATE ON avis_2018_04 TO monavis_writer").await.unwrap();
    assert_eq!(writer.store_batch(&lost_month).await.unwrap(), 1);
    assert_eq!(owner.count_avis().await.unwrap(), 2);
}

/// Creating a partition does not wait for reads or flushes on `avis` (ATTACH PARTITION takes a
/// lock that does not conflict with them), so a long export never holds up the task, nor does
/// the task queue flushes behind itself.
#[tokio::test]
async fn creating_a_partition_does_not_wait_for_a_long_reader() {
    let url = common::fresh_pg_database("partitions_locks").await;
    let store = PgStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let mut reader = client(&url).await;
    let tx = reader.transaction().await.unwrap();
    tx.query("SELECT count(*) FROM avis", &[]).await.unwrap();
    let writer = client(&url).await;
    let copy_tx = writer.simple_query("BEGIN; INSERT INTO avis (id, demarche_id, source, received_at, satisfaction) VALUES (gen_random_uuid(), 1, 'button', now(), 'bien')");
    copy_tx.await.unwrap();
    let later = Utc::now().checked_add_months(Months::new(40)).unwrap();
    let created = tokio::time::timeout(std::time::Duration::from_secs(10), store.prepare_partitions(later, 0))
        .await
        .expect("partition created while a reader and a writer hold avis")
        .unwrap();
    assert_eq!(created, vec![partition_name(month_of(later))]);
    tx.commit().await.unwrap();
    writer.batch_execute("COMMIT").await.unwrap();
}

/// `monavis_partitions_ready` tells operators what the log says: 1 while this month and the next
/// three have their partitions, 0 when a month ahead is missing and cannot be made (here a
/// session holds a lock that ATTACH PARTITION waits for, past the server's lock_timeout); the
/// server still starts and takes votes, this month's partition being there.
#[tokio::test]
async fn partitions_ready_metric_follows_the_months_ahead() {
    let url = common::fresh_pg_database("partitions_metric").await;
    let tmp = tempfile::tempdir().unwrap();
    common::cli(tmp.path(), &url, &["demarche", "add", "--id", "1", "--name", "Partitions"]);
    let mut first = common::Server::start_in(&tmp.path().join("first"), &url, &[]);
    assert_eq!(ready_metric(&first).await, 1.0);
    assert!(first.terminate().success());

    let last = partition_name(month_of(Utc::now()).checked_add_months(Months::new(PARTITIONS_AHEAD)).unwrap());
    client(&url).await.batch_execute(&format!("DROP TABLE {last}")).await.unwrap();
    let blocker = client(&url).await;
    // Reads and COPY go on (they do not conflict with this mode); ATTACH PARTITION waits.
    blocker.batch_execute("BEGIN; LOCK TABLE avis IN SHARE UPDATE EXCLUSIVE MODE").await.unwrap();
    let mut server = common::Server::start_logged(&tmp.path().join("second"), &url, &[]);
    assert_eq!(ready_metric(&server).await, 0.0, "a month ahead is missing: {}", server.log());
    assert!(server.log().contains(&last), "the log names the missing partition: {}", server.log());
    let key = server.signer().sign(1);
    assert_eq!(common::post_vote(&server, 1, &common::varied_vote(&key, 0)).await.0, 303);
    blocker.batch_execute("COMMIT").await.unwrap();
    assert!(server.terminate().success());
    assert_eq!(rows_in(&url, "avis").await, 1);
    assert!(!partitions(&url).await.contains(&last), "nothing made it meanwhile");
}

/// `monavis_partitions_ready` once the server's first check has set it (-1 until then).
async fn ready_metric(server: &common::Server) -> f64 {
    for _ in 0..200 {
        let v = server.metric("monavis_partitions_ready").await;
        if v != -1.0 {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("monavis_partitions_ready still -1 after 10 s")
}
