//! One conformance suite, run against both stores: the embedded SQLite and a real PostgreSQL
//! (the ephemeral cluster of scripts/test.sh). Same calls, same answers.

mod common;

use std::sync::Arc;

use chrono::NaiveDate;
use widget_server::catalogue::Demarche;
use widget_server::stats::{self, DailyRow};
use widget_server::store::{self, Store};
use widget_server::vote::{Answers, Level, Source, Vote};

/// Varied votes over `days` days ending at `last_ms`, on démarches 1 and 2, some sources.
fn votes(n: usize, last_ms: i64, seed: u64) -> Vec<Vote> {
    let mut x = seed.max(1);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|_| {
            let r = next();
            let level = |k: u64| Level::ALL[(k % 3) as usize];
            let answers = Answers {
                satisfaction: None,
                facilite: (r % 4 != 0).then(|| level(r >> 3)),
                clarte: (r % 5 != 0).then(|| level(r >> 7)),
                aide: ((r >> 11) % 64) as u8,
                commentaire: (r % 7 == 0).then(|| "Très « bien », merci ; l'agent était aimable.\nÀ bientôt".into()),
            };
            let mut v = Vote::accept(
                1 + (r >> 17) as i64 % 2,
                Source::new(["button", "site", "email"][((r >> 19) % 3) as usize]).unwrap(),
                level(r >> 23),
                answers,
            );
            // Spread over three days, across Paris midnight.
            v.received_at_ms = last_ms - ((r >> 29) % (3 * 86_400_000)) as i64;
            v
        })
        .collect()
}

/// `avis_daily` equals a recount from `avis`, and the observatory's rollup `avis_monthly`
/// equals `avis_daily` by month.
async fn check_aggregates(store: &Arc<dyn Store>, demarche: i64) -> Vec<DailyRow> {
    let daily = common::assert_rollup(store, demarche).await;
    let recount = store.recount(demarche).await.unwrap();
    assert_eq!(daily, recount, "avis_daily equals a recount from avis");
    daily
}

async fn conformance(store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();

    // Catalogue.
    let d = Demarche {
        id: 1,
        name: "Carte grise".into(),
        administration: "ANTS".into(),
        volume_annuel: Some(6_000_000),
        high_volume_approved: false,
        active: true,
        merged_into: None,
        privacy: Default::default(),
    };
    store.upsert_demarche(&d).await.unwrap();
    store.upsert_demarche(&Demarche { id: 2, name: "Autre".into(), active: false, ..d.clone() }).await.unwrap();
    store.upsert_demarche(&Demarche { name: "Carte grise (renommée)".into(), ..d.clone() }).await.unwrap();
    let list = store.demarches().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].name, "Carte grise (renommée)");
    assert_eq!(list[0].volume_annuel, Some(6_000_000));
    assert!(!list[1].active);

    // A batch is stored; its aggregates match a recount.
    let last_ms = 1_767_311_000_000; // 2026-01-01T23:43:20Z, already 2 January in Paris
    let batch = votes(3_000, last_ms, 7);
    assert_eq!(store.store_batch(&batch).await.unwrap(), 3_000);
    assert_eq!(store.count_avis().await.unwrap(), 3_000);
    let daily1 = check_aggregates(&store, 1).await;
    let daily2 = check_aggregates(&store, 2).await;
    assert_eq!(stats::total(&daily1).n + stats::total(&daily2).n, 3_000);
    assert!(stats::per_day(&daily1).len() >= 3, "spread over several Paris days");
    let months: Vec<NaiveDate> = store.monthly(1).await.unwrap().into_iter().map(|(m, _)| m).collect();
    assert_eq!(months, [NaiveDate::from_ymd_opt(2025, 12, 1).unwrap(), NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()]);

    // The same batch again: nothing changes.
    assert_eq!(store.store_batch(&batch).await.unwrap(), 0);
    assert_eq!(store.count_avis().await.unwrap(), 3_000);
    assert_eq!(check_aggregates(&store, 1).await, daily1);

    // A batch overlapping the stored one: only the new votes count.
    let mut mixed = votes(500, last_ms, 99);
    mixed.extend_from_slice(&batch[..700]);
    mixed.extend(votes(10, last_ms, 5));
    assert_eq!(store.store_batch(&mixed).await.unwrap(), 510);
    assert_eq!(store.count_avis().await.unwrap(), 3_510);
    let total = stats::total(&check_aggregates(&store, 1).await).n + stats::total(&check_aggregates(&store, 2).await).n;
    assert_eq!(total, 3_510);

    // Exact content of one vote survives the round trip through the daily counts.
    let mut one = votes(1, last_ms, 1234);
    one[0].demarche_id = 77;
    one[0].satisfaction = Level::Bad;
    one[0].facilite = Some(Level::Medium);
    one[0].clarte = None;
    one[0].aide = 0b100010;
    assert_eq!(store.store_batch(&one).await.unwrap(), 1);
    let rows = check_aggregates(&store, 77).await;
    assert_eq!(rows.len(), 1);
    let c = rows[0].counts;
    assert_eq!(
        (c.n, c.satisfaction, c.facilite, c.clarte, c.aide),
        (1, [0, 0, 1], [0, 1, 0], [0, 0, 0], [0, 1, 0, 0, 0, 1])
    );
    assert_eq!(rows[0].day, one[0].day());
    assert_eq!(rows[0].source, one[0].source.as_str());

    // Empty batches are fine.
    assert_eq!(store.store_batch(&[]).await.unwrap(), 0);
}

#[tokio::test]
async fn sqlite_conformance() {
    let (tmp, url) = common::Server::sqlite_dir();
    conformance(store::open(&url).await.unwrap()).await;
    drop(tmp);
}

#[tokio::test]
async fn postgres_conformance() {
    let url = common::fresh_pg_database("conformance").await;
    conformance(store::open(&url).await.unwrap()).await;
}
