//! `--check-postgres`: after the run, every vote answered 303 must be in the store, once, and
//! `avis_daily` must agree with the `avis` rows it summarises.
//!
//! Before the run the tool notes how many `avis` rows and how much `avis_daily.n` the démarches
//! have. After it, it polls until `avis` has grown by the votes answered 303 (the server writes
//! in batches, a second or so later), waits a little longer to catch rows that should not be
//! there, then reads in one snapshot: the growth of both tables, and every (démarche, day,
//! source) group of `avis_daily` beside a recount from `avis`.
//!
//! A vote whose answer was lost (timeout, broken connection) may or may not have been stored;
//! such votes widen the accepted range of growth instead of failing the check.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, IsolationLevel, NoTls};

use crate::target::is_loopback;

/// Both totals in one statement, so they come from one snapshot.
const TOTALS_SQL: &str = "SELECT (SELECT count(*) FROM avis WHERE demarche_id = ANY($1)), \
                                 (SELECT coalesce(sum(n), 0)::bigint FROM avis_daily WHERE demarche_id = ANY($1))";

/// How often the store is polled while waiting for the votes to land.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// The counter columns of `avis_daily` and how each is recounted from an `avis` row.
const COUNTERS: [(&str, &str); 16] = [
    ("n", "true"),
    ("sat_bien", "satisfaction = 'bien'"),
    ("sat_moyen", "satisfaction = 'moyen'"),
    ("sat_pas_bien", "satisfaction = 'pas-bien'"),
    ("fac_facile", "facilite = 'facile'"),
    ("fac_moyen", "facilite = 'moyen'"),
    ("fac_difficile", "facilite = 'difficile'"),
    ("cla_clair", "clarte = 'clair'"),
    ("cla_moyen", "clarte = 'moyen'"),
    ("cla_pas_clair", "clarte = 'pas-clair'"),
    ("aide_aucune", "aide & 1 <> 0"),
    ("aide_proche", "aide & 2 <> 0"),
    ("aide_association", "aide & 4 <> 0"),
    ("aide_agent", "aide & 8 <> 0"),
    ("aide_internet", "aide & 16 <> 0"),
    ("aide_autre", "aide & 32 <> 0"),
];

/// Refuses a database URL whose hosts are not loopback addresses, `localhost` or Unix sockets:
/// like the HTTP target, the store checked must be on this machine.
pub fn ensure_local(url: &str) -> Result<(), String> {
    let config = tokio_postgres::Config::from_str(url).map_err(|e| format!("--check-postgres: {e}"))?;
    for host in config.get_hosts() {
        if let Host::Tcp(name) = host {
            let local = name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(is_loopback);
            if !local {
                return Err(format!("--check-postgres: host {name:?} is not a loopback address"));
            }
        }
    }
    if let Some(ip) = config.get_hostaddrs().iter().find(|ip| !is_loopback(**ip)) {
        return Err(format!("--check-postgres: hostaddr {ip} is not a loopback address"));
    }
    Ok(())
}

/// The store's totals for the checked démarches at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    /// `count(*)` of `avis`.
    pub avis: i64,
    /// `sum(n)` of `avis_daily`.
    pub daily_n: i64,
}

/// One (démarche, day, source) group where `avis_daily` and the recount differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub demarche_id: i64,
    pub day: String,
    pub source: String,
    /// The 16 counters in [`COUNTERS`] order; zeros where the row is missing.
    pub daily: Vec<i64>,
    pub recount: Vec<i64>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "démarche {} {} {}:", self.demarche_id, self.day, self.source)?;
        for (i, (name, _)) in COUNTERS.iter().enumerate() {
            let (d, r) = (self.daily.get(i).copied().unwrap_or(0), self.recount.get(i).copied().unwrap_or(0));
            if d != r {
                write!(f, " {name} avis_daily {d} vs avis {r};")?;
            }
        }
        Ok(())
    }
}

/// What the check found.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub before: Totals,
    pub after: Totals,
    /// Votes answered 303.
    pub accepted: u64,
    /// Votes whose fate is unknown to the client.
    pub uncertain: u64,
    /// How long until `avis` had grown enough, or the timeout.
    pub waited: Duration,
    /// Groups compared.
    pub groups: usize,
    pub mismatches: Vec<Mismatch>,
}

impl Verdict {
    /// Every problem found, in words; empty when the store is consistent.
    pub fn problems(&self) -> Vec<String> {
        let avis_grew = self.after.avis - self.before.avis;
        let daily_grew = self.after.daily_n - self.before.daily_n;
        let (low, high) = (self.accepted as i64, (self.accepted + self.uncertain) as i64);
        let mut problems = Vec::new();
        if avis_grew < low {
            problems.push(format!(
                "avis grew by {avis_grew} rows but {low} votes were answered 303: {} are missing",
                low - avis_grew
            ));
        } else if avis_grew > high {
            problems.push(format!(
                "avis grew by {avis_grew} rows, more than the {low} votes answered 303{}",
                if high > low { format!(" and {} unanswered ones", high - low) } else { String::new() }
            ));
        }
        if daily_grew != avis_grew {
            problems.push(format!("avis_daily.n grew by {daily_grew} but avis by {avis_grew}"));
        }
        if !self.mismatches.is_empty() {
            problems.push(format!(
                "{} of {} (démarche, day, source) groups differ from a recount of avis",
                self.mismatches.len(),
                self.groups
            ));
        }
        problems
    }

    /// Prints the outcome.
    pub fn print(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let problems = self.problems();
        writeln!(
            out,
            "check: avis +{} rows, avis_daily.n +{}, {} votes answered 303{}, {} groups compared, after {:.1} s: {}",
            self.after.avis - self.before.avis,
            self.after.daily_n - self.before.daily_n,
            self.accepted,
            if self.uncertain > 0 { format!(" (+ up to {} unanswered)", self.uncertain) } else { String::new() },
            self.groups,
            self.waited.as_secs_f64(),
            if problems.is_empty() { "OK" } else { "FAILED" }
        )?;
        for p in &problems {
            writeln!(out, "  {p}")?;
        }
        for m in self.mismatches.iter().take(10) {
            writeln!(out, "  {m}")?;
        }
        Ok(())
    }

    /// The outcome as JSON.
    pub fn json(&self) -> Value {
        json!({
            "passed": self.problems().is_empty(),
            "problems": self.problems(),
            "accepted": self.accepted,
            "uncertain": self.uncertain,
            "avis_grew": self.after.avis - self.before.avis,
            "avis_daily_n_grew": self.after.daily_n - self.before.daily_n,
            "groups": self.groups,
            "mismatches": self.mismatches.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            "waited_s": self.waited.as_secs_f64(),
        })
    }
}

/// A connection to the store, scoped to some démarches.
pub struct StoreCheck {
    client: Client,
    demarches: Vec<i64>,
}

impl StoreCheck {
    /// Connects to `url` (checked with [`ensure_local`] first).
    pub async fn connect(url: &str, demarches: &[u64]) -> anyhow::Result<StoreCheck> {
        ensure_local(url).map_err(anyhow::Error::msg)?;
        let (client, connection) =
            tokio_postgres::connect(url, NoTls).await.context("--check-postgres: cannot connect")?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("check: connection to PostgreSQL lost: {e}");
            }
        });
        let demarches = demarches
            .iter()
            .map(|&id| i64::try_from(id).context("démarche id out of range"))
            .collect::<anyhow::Result<_>>()?;
        Ok(StoreCheck { client, demarches })
    }

    /// Both totals now.
    pub async fn totals(&self) -> anyhow::Result<Totals> {
        let row = self
            .client
            .query_one(TOTALS_SQL, &[&self.demarches])
            .await
            .context("reading the totals (is this the server's database?)")?;
        Ok(Totals { avis: row.try_get(0)?, daily_n: row.try_get(1)? })
    }

    async fn count_avis(&self) -> anyhow::Result<i64> {
        let row = self
            .client
            .query_one("SELECT count(*) FROM avis WHERE demarche_id = ANY($1)", &[&self.demarches])
            .await
            .context("counting avis")?;
        Ok(row.try_get(0)?)
    }

    /// Waits for the votes of a run to land, then compares. `settle` is how long to keep
    /// watching once they have, for rows that should not be there.
    pub async fn verify(
        &mut self,
        before: Totals,
        accepted: u64,
        uncertain: u64,
        timeout: Duration,
        settle: Duration,
    ) -> anyhow::Result<Verdict> {
        let started = Instant::now();
        let expected = before.avis + accepted as i64;
        loop {
            if self.count_avis().await? >= expected || started.elapsed() >= timeout {
                break;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
        let waited = started.elapsed();
        if waited < timeout {
            tokio::time::sleep(settle).await;
        }
        let (after, groups, mismatches) = self.snapshot().await?;
        Ok(Verdict { before, after, accepted, uncertain, waited, groups, mismatches })
    }

    /// Totals and the per-group comparison in one repeatable-read snapshot, so a flush landing
    /// in between cannot make consistent tables look inconsistent.
    async fn snapshot(&mut self) -> anyhow::Result<(Totals, usize, Vec<Mismatch>)> {
        let tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let totals_row = tx.query_one(TOTALS_SQL, &[&self.demarches]).await?;
        let totals = Totals { avis: totals_row.try_get(0)?, daily_n: totals_row.try_get(1)? };
        let rows =
            tx.query(compare_sql().as_str(), &[&self.demarches]).await.context("comparing avis_daily with avis")?;
        tx.commit().await?;
        let mut mismatches = Vec::new();
        for row in &rows {
            let daily: Option<Vec<i64>> = row.try_get(3)?;
            let recount: Option<Vec<i64>> = row.try_get(4)?;
            let zeros = || vec![0; COUNTERS.len()];
            let (daily, recount) = (daily.unwrap_or_else(zeros), recount.unwrap_or_else(zeros));
            if daily != recount {
                mismatches.push(Mismatch {
                    demarche_id: row.try_get(0)?,
                    day: row.try_get(1)?,
                    source: row.try_get(2)?,
                    daily,
                    recount,
                });
            }
        }
        Ok((totals, rows.len(), mismatches))
    }
}

/// Every group of `avis_daily` beside the same group recounted from `avis`, missing on either
/// side included (full join); days are Paris days, as the server counts them.
fn compare_sql() -> String {
    let daily: Vec<String> = COUNTERS.iter().map(|(col, _)| col.to_string()).collect();
    let recount: Vec<String> = COUNTERS.iter().map(|(_, cond)| format!("count(*) FILTER (WHERE {cond})")).collect();
    format!(
        "WITH daily AS ( \
             SELECT demarche_id, day, source, ARRAY[{daily}]::bigint[] AS counters \
             FROM avis_daily WHERE demarche_id = ANY($1)), \
         recount AS ( \
             SELECT demarche_id, (received_at AT TIME ZONE 'Europe/Paris')::date AS day, source, \
                    ARRAY[{recount}]::bigint[] AS counters \
             FROM avis WHERE demarche_id = ANY($1) GROUP BY 1, 2, 3) \
         SELECT demarche_id, day::text, source, daily.counters, recount.counters \
         FROM daily FULL JOIN recount USING (demarche_id, day, source) \
         ORDER BY 1, 2, 3",
        daily = daily.join(", "),
        recount = recount.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(accepted: u64, uncertain: u64, avis_grew: i64, daily_grew: i64) -> Verdict {
        Verdict {
            before: Totals { avis: 100, daily_n: 100 },
            after: Totals { avis: 100 + avis_grew, daily_n: 100 + daily_grew },
            accepted,
            uncertain,
            waited: Duration::ZERO,
            groups: 3,
            mismatches: Vec::new(),
        }
    }

    #[test]
    fn judges_growth() {
        assert!(verdict(50, 0, 50, 50).problems().is_empty());
        assert_eq!(verdict(50, 0, 49, 49).problems().len(), 1, "a 303 vote is missing");
        assert_eq!(verdict(50, 0, 51, 51).problems().len(), 1, "a vote too many");
        assert!(verdict(50, 2, 52, 52).problems().is_empty(), "unanswered votes may be stored");
        assert!(verdict(50, 2, 50, 50).problems().is_empty(), "or not");
        assert_eq!(verdict(50, 0, 50, 49).problems().len(), 1, "avis_daily behind avis");
        let mut v = verdict(1, 0, 1, 1);
        v.mismatches.push(Mismatch {
            demarche_id: 42,
            day: "2026-05-01".into(),
            source: "button".into(),
            daily: vec![1; 16],
            recount: [vec![2], vec![1; 15]].concat(),
        });
        assert_eq!(v.problems().len(), 1);
        assert_eq!(v.mismatches[0].to_string(), "démarche 42 2026-05-01 button: n avis_daily 1 vs avis 2;");
    }

    #[test]
    fn only_local_databases() {
        for ok in [
            "postgres://postgres@127.0.0.1:55432/monavis",
            "postgres://u:p@localhost/db",
            "postgres://[::1]:5432/db",
            "host=/tmp port=55432 dbname=x user=postgres",
            "postgresql:///db?host=/var/run/postgresql",
        ] {
            assert!(ensure_local(ok).is_ok(), "{ok}");
        }
        for bad in
            ["postgres://db.example.fr/monavis", "postgres://10.0.0.5/db", "host=127.0.0.1 hostaddr=10.0.0.1 dbname=x"]
        {
            assert!(ensure_local(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn comparison_covers_every_counter() {
        let sql = compare_sql();
        for (col, _) in COUNTERS {
            assert!(sql.contains(col));
        }
        assert!(sql.contains("AT TIME ZONE 'Europe/Paris'"));
    }
}
