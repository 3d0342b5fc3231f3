//! The JSON API (DESIGN §10), for programs of porteurs: read with a Bearer key created in
//! « Mon compte » (`Authorization: Bearer mav_…`), scoped to the démarches the key's account
//! carries (every démarche for an administrator's key).
//!
//! - `GET /api/v1/demarches`: the démarches the key reads, with their last 365 days.
//! - `GET /api/v1/demarches/{id}/stats?from=&to=&interval=day|week|month&source=`: counts per
//!   answer, indexes /10 and autonomy, per interval and for the whole period, from `avis_daily`
//!   (O(days), like the dashboard, and cut into intervals the same way: [`chart::buckets`]).
//! - `GET /api/v1/demarches/{id}/avis?since=&limit=`: every avis, oldest first, after an opaque
//!   cursor (`next` of the previous page), through the `(demarche_id, received_at, id)` index.
//!
//! Every answer is JSON with `Cache-Control: no-store`; errors are `{"error": "…"}` in English:
//! 401 (with `WWW-Authenticate: Bearer`) without a live key, 404 for a démarche the account
//! does not carry or an unknown path, 400 naming the bad parameter, 503 when the store is down.
//! The session and CSRF layers let `/api` paths through: no cookie is read or set here.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, Days, Months, NaiveDate, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::chart::{buckets, Grain};
use super::secret;
use super::store::{Account, AccountStatus, AvisRow, Cursor, DemarcheRow};
use super::Console;
use crate::stats::{indicative, round1, round_share, Counts};
use crate::vote::{paris_day, Question, AIDE};

/// What every API key starts with, so that a leaked key is recognisable (secret scanners).
pub const API_KEY_PREFIX: &str = "mav_";

/// Avis per page when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 100;
/// Largest `limit`.
pub const MAX_LIMIT: i64 = 1000;
/// Longest period of `stats`, in days (five years, as on the dashboard).
pub const MAX_DAYS: i64 = 5 * 366;
/// Most intervals one `stats` answer holds (what [`buckets`] cuts at most).
pub const MAX_INTERVALS: i64 = 400;

/// Whether a path belongs to the API (no session, no CSRF, JSON answers).
pub fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The account of the key that authenticated the request, put in its extensions by
/// [`require_key`].
#[derive(Clone, Debug)]
pub struct ApiAccount(pub Account);

/// An error answer: `{"error": message}` with the status and, for 401 and 503, the headers that
/// go with it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// 401 only: the key was sent but is not valid (`error="invalid_token"`, RFC 6750).
    invalid_token: bool,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), invalid_token: false }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    fn unauthorized(message: &str, invalid_token: bool) -> ApiError {
        ApiError { invalid_token, ..ApiError::new(StatusCode::UNAUTHORIZED, message) }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        tracing::warn!(error = %e, "api: store unavailable");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable for the moment; retry later")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = json_response(self.status, &json!({ "error": self.message }));
        let h = res.headers_mut();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                let value = if self.invalid_token {
                    r#"Bearer realm="monavis", error="invalid_token""#
                } else {
                    r#"Bearer realm="monavis""#
                };
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            }
            _ => {}
        }
        res
    }
}

/// A JSON answer, never cached.
fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The key of `Authorization: Bearer mav_…`, if well formed (the prefix and 64 lower-case hex
/// characters); anything else is refused without a store lookup.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::unauthorized(
            "missing API key: send the header `Authorization: Bearer mav_…` with a key created in « Mon compte »",
            false,
        ));
    };
    let malformed = || {
        ApiError::unauthorized(
            "malformed API key: expected `Authorization: Bearer mav_` followed by 64 hexadecimal characters",
            true,
        )
    };
    let value = value.to_str().map_err(|_| malformed())?.trim();
    let (scheme, key) = value.split_once(' ').ok_or_else(malformed)?;
    let key = key.trim();
    let well_formed = scheme.eq_ignore_ascii_case("bearer")
        && key.strip_prefix(API_KEY_PREFIX).is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    if well_formed {
        Ok(key)
    } else {
        Err(malformed())
    }
}

/// The API's guard: a live key of an active account, or 401. Records the key's use.
pub async fn require_key(State(console): State<Arc<Console>>, mut req: Request, next: Next) -> Response {
    let hash = match bearer(req.headers()) {
        Ok(key) => secret::hash(key),
        Err(e) => return e.into_response(),
    };
    match console.store.use_api_key(hash, Utc::now()).await {
        Ok(Some((_, account))) if account.status == AccountStatus::Active => {
            req.extensions_mut().insert(ApiAccount(account));
            next.run(req).await
        }
        Ok(_) => ApiError::unauthorized("unknown or revoked API key", true).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Unknown paths under `/api`.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no such endpoint: {}; the API has GET /api/v1/demarches/{{id}}/stats and GET /api/v1/demarches/{{id}}/avis",
        uri.path()
    ))
}

/// Another method than GET (or HEAD) on an endpoint.
pub async fn method_not_allowed() -> Response {
    let mut res = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "this endpoint only answers GET").into_response();
    res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    res
}

/// The démarche of the path if the key's account carries it (or is an administrator's); the
/// same 404 otherwise, so a key does not tell which démarches exist.
async fn carried(
    console: &Console,
    account: &Account,
    path: Result<Path<String>, PathRejection>,
) -> Result<DemarcheRow, ApiError> {
    let raw = path.map(|Path(p)| p).unwrap_or_default();
    let not_carried =
        || ApiError::not_found(format!("démarche {raw} not found among those this key's account carries"));
    let id: i64 = match raw.parse() {
        Ok(id) if raw.bytes().all(|b| b.is_ascii_digit()) => id,
        _ => return Err(not_carried()),
    };
    let Some(d) = console.store.demarche(id).await? else { return Err(not_carried()) };
    if account.is_admin || console.store.is_porteur(account.id, id).await? {
        Ok(d)
    } else {
        Err(not_carried())
    }
}

/// The query string's pairs; `name=` counts as absent.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>) -> Result<Query, ApiError> {
        serde_urlencoded::from_str(raw.unwrap_or(""))
            .map(Query)
            .map_err(|_| ApiError::bad_request("the query string cannot be read (bad percent-encoding?)"))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }
}

/// What `stats` was asked for.
#[derive(Debug, PartialEq, Eq)]
pub struct StatsParams {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub grain: Grain,
    pub source: Option<String>,
}

fn grain_name(g: Grain) -> &'static str {
    match g {
        Grain::Day => "day",
        Grain::Week => "week",
        Grain::Month => "month",
    }
}

/// The last day of the interval of `g` that starts on `start`.
fn interval_end(g: Grain, start: NaiveDate) -> NaiveDate {
    match g {
        Grain::Day => start,
        Grain::Week => start + Days::new(6),
        Grain::Month => start + Months::new(1) - Days::new(1),
    }
}

/// How many intervals of `g` cut `from..=to`.
fn interval_count(g: Grain, from: NaiveDate, to: NaiveDate) -> i64 {
    let (a, b) = (g.start_of(from), g.start_of(to));
    match g {
        Grain::Day => (b - a).num_days() + 1,
        Grain::Week => (b - a).num_days() / 7 + 1,
        Grain::Month => {
            use chrono::Datelike;
            i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month()) + 1
        }
    }
}

fn date(q: &Query, name: &str) -> Result<Option<NaiveDate>, ApiError> {
    q.get(name)
        .map(|v| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d").ok().filter(|_| v.len() == 10).ok_or_else(|| {
                ApiError::bad_request(format!("`{name}`: expected a date as YYYY-MM-DD (e.g. 2026-01-31), got {v:?}"))
            })
        })
        .transpose()
}

/// `source`, if given: `[a-z0-9-]{1,32}`, as the snippet's `nd_source`.
fn source(q: &Query) -> Result<Option<String>, ApiError> {
    match q.get("source") {
        None => Ok(None),
        Some(s) if snippet::is_valid_source(s) => Ok(Some(s.to_string())),
        Some(s) => Err(ApiError::bad_request(format!(
            "`source`: expected 1 to 32 characters among a-z, 0-9 and '-' (a source label), got {s:?}"
        ))),
    }
}

impl StatsParams {
    /// Reads the query against `today` (Europe/Paris): by default the 12 months ending today
    /// (365 days, as the dashboard), cut by month.
    fn parse(q: &Query, today: NaiveDate) -> Result<StatsParams, ApiError> {
        let to = date(q, "to")?.unwrap_or(today);
        let from = date(q, "from")?.unwrap_or(to - Days::new(364));
        if from > to {
            return Err(ApiError::bad_request(format!("`from` ({from}) is after `to` ({to})")));
        }
        if (to - from).num_days() >= MAX_DAYS {
            return Err(ApiError::bad_request(format!(
                "`from`..`to`: the period is longer than {MAX_DAYS} days; ask for a shorter one"
            )));
        }
        let grain = match q.get("interval") {
            None | Some("month") => Grain::Month,
            Some("week") => Grain::Week,
            Some("day") => Grain::Day,
            Some(other) => {
                return Err(ApiError::bad_request(format!("`interval`: expected day, week or month, got {other:?}")))
            }
        };
        if interval_count(grain, from, to) > MAX_INTERVALS {
            return Err(ApiError::bad_request(format!(
                "`interval`: {} cuts this period into more than {MAX_INTERVALS} intervals; ask for a longer interval or a shorter period",
                grain_name(grain)
            )));
        }
        Ok(StatsParams { from, to, grain, source: source(q)? })
    }
}

/// Counts, indexes and autonomy, as the API writes them. Answer keys are the stored values
/// with `_` for `-` (`pas_bien`, `pas_clair`).
pub fn counts_json(c: &Counts) -> Map<String, Value> {
    let answers = |values: &[&str], counts: &[i64]| -> Value {
        Value::Object(values.iter().zip(counts).map(|(v, n)| (v.replace('-', "_"), json!(n))).collect())
    };
    let mut m = Map::new();
    m.insert("n".into(), json!(c.n));
    m.insert("satisfaction".into(), answers(&Question::Satisfaction.values(), &c.satisfaction));
    m.insert("facilite".into(), answers(&Question::Facilite.values(), &c.facilite));
    m.insert("clarte".into(), answers(&Question::Clarte.values(), &c.clarte));
    m.insert("aide".into(), answers(&AIDE, &c.aide));
    // Rounded as the pages show them (6.25 → 6.3; a share to the whole percent), and marked
    // indicative under 100 avis: one rule for every figure (`crate::stats::indicative`).
    m.insert("satisfaction_index".into(), json!(c.satisfaction_index().map(round1)));
    m.insert("facilite_index".into(), json!(c.facilite_index().map(round1)));
    m.insert("clarte_index".into(), json!(c.clarte_index().map(round1)));
    m.insert("autonomy".into(), json!(c.autonomy().map(round_share)));
    m.insert("indicative".into(), json!(indicative(c.n)));
    m
}

fn demarche_json(d: &DemarcheRow) -> Value {
    json!({ "id": d.id, "name": d.details.name })
}

/// `GET /api/v1/demarches`: the démarches this key reads (those its account carries; every active
/// one for an administrator's key), by id, with their satisfaction over the last 365 days.
pub async fn list_get(
    State(console): State<Arc<Console>>,
    Extension(ApiAccount(account)): Extension<ApiAccount>,
) -> Result<Response, ApiError> {
    let today = paris_day(Utc::now().timestamp_millis());
    let from = today - Days::new(364);
    // An administrator's key reads every démarche open to citizens: one statement over
    // `avis_daily` (the observatory's); a porteur's, the few it carries.
    let mut rows = if account.is_admin {
        console.store.observatory(from, today).await?
    } else {
        let mut rows = Vec::new();
        for d in console.store.carried_by(account.id).await? {
            let c = console.store.counts(d.id, from, today).await?;
            rows.push((d, c));
        }
        rows
    };
    rows.sort_by_key(|(d, _)| d.id);
    let mut list = Vec::with_capacity(rows.len());
    for (d, c) in rows {
        list.push(json!({
            "id": d.id,
            "name": d.details.name,
            "administration": d.details.administration,
            "active": d.active,
            "last_365_days": counts_json(&c),
            "stats": format!("/api/v1/demarches/{}/stats", d.id),
            "avis": format!("/api/v1/demarches/{}/avis", d.id),
        }));
    }
    let body = json!({ "from": from.to_string(), "to": today.to_string(), "demarches": list });
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /api/v1/demarches/{id}/stats`.
pub async fn stats_get(
    State(console): State<Arc<Console>>,
    Extension(ApiAccount(account)): Extension<ApiAccount>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let d = carried(&console, &account, path).await?;
    let q = Query::parse(raw.as_deref())?;
    let p = StatsParams::parse(&q, paris_day(Utc::now().timestamp_millis()))?;
    let days = console.store.day_counts(d.id, p.from, p.to, p.source.clone()).await?;
    let mut total = Counts::default();
    for (_, c) in &days {
        total.add(c);
    }
    let intervals: Vec<Value> = buckets(&days, p.from, p.to, p.grain)
        .iter()
        .map(|b| {
            let mut m = Map::new();
            m.insert("start".into(), json!(b.start.max(p.from).to_string()));
            m.insert("end".into(), json!(interval_end(p.grain, b.start).min(p.to).to_string()));
            m.extend(counts_json(&b.counts));
            Value::Object(m)
        })
        .collect();
    let body = json!({
        "demarche": demarche_json(&d),
        "from": p.from.to_string(),
        "to": p.to.to_string(),
        "interval": grain_name(p.grain),
        "source": p.source,
        "total": counts_json(&total),
        "intervals": intervals,
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// The cursor of a row as `next` carries it: `{received_at in µs since 1970}_{id}`.
pub fn cursor_string(row: &AvisRow) -> String {
    format!("{}_{}", row.received_at.timestamp_micros(), row.id.hyphenated())
}

/// The inverse of [`cursor_string`].
pub fn parse_cursor(s: &str) -> Option<Cursor> {
    let (micros, id) = s.split_once('_')?;
    if micros.is_empty() || !micros.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let at = DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, uuid::Uuid::try_parse(id).ok()?))
}

/// What `avis` was asked for.
fn avis_params(q: &Query) -> Result<(Option<Cursor>, i64), ApiError> {
    let cursor = match q.get("since") {
        None => None,
        Some(s) => Some(parse_cursor(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`since`: not a cursor of this API (use the `next` of a previous answer), got {s:?}"
            ))
        })?),
    };
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l.parse::<i64>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
            ApiError::bad_request(format!("`limit`: expected an integer from 1 to {MAX_LIMIT}, got {l:?}"))
        })?,
    };
    Ok((cursor, limit))
}

/// One avis as the API writes it.
pub fn avis_json(a: &AvisRow) -> Value {
    let aide: Vec<&str> = AIDE.iter().enumerate().filter(|(i, _)| a.aide >> i & 1 == 1).map(|(_, v)| *v).collect();
    json!({
        "id": a.id.hyphenated().to_string(),
        "received_at": a.received_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "source": a.source,
        "satisfaction": a.satisfaction,
        "facilite": a.facilite,
        "clarte": a.clarte,
        "aide": aide,
        "commentaire": a.commentaire,
    })
}

/// `GET /api/v1/demarches/{id}/avis`.
pub async fn avis_get(
    State(console): State<Arc<Console>>,
    Extension(ApiAccount(account)): Extension<ApiAccount>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let d = carried(&console, &account, path).await?;
    let q = Query::parse(raw.as_deref())?;
    let (cursor, limit) = avis_params(&q)?;
    let rows = console.store.avis_after(d.id, cursor, limit).await?;
    let next = (rows.len() as i64 >= limit).then(|| rows.last().map(cursor_string)).flatten();
    let body = json!({
        "demarche": demarche_json(&d),
        "avis": rows.iter().map(avis_json).collect::<Vec<_>>(),
        "next": next,
    });
    Ok(json_response(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn q(s: &str) -> Query {
        Query::parse(Some(s)).unwrap()
    }

    #[test]
    fn stats_parameters_and_defaults() {
        let today = d("2026-11-23");
        let p = StatsParams::parse(&q(""), today).unwrap();
        assert_eq!((p.from, p.to, p.grain, p.source), (d("2025-11-24"), today, Grain::Month, None));
        let p = StatsParams::parse(&q("from=2026-01-01&to=2026-01-31&interval=day&source=guichet"), today).unwrap();
        assert_eq!(
            (p.from, p.to, p.grain, p.source.as_deref()),
            (d("2026-01-01"), d("2026-01-31"), Grain::Day, Some("guichet"))
        );
        assert_eq!(StatsParams::parse(&q("source=&interval="), today).unwrap().grain, Grain::Month);
        for (query, names) in [
            ("from=2026-13-01", "`from`"),
            ("to=31/01/2026", "`to`"),
            ("from=2026-1-5", "`from`"),
            ("from=2026-02-01&to=2026-01-01", "`from`"),
            ("from=2010-01-01&to=2026-01-01", "`from`..`to`"),
            ("interval=year", "`interval`"),
            ("from=2025-01-01&interval=day", "`interval`"),
            ("source=Bouton", "`source`"),
            ("source=a%20b", "`source`"),
        ] {
            let e = StatsParams::parse(&q(query), today).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{query}");
            assert!(e.message.starts_with(names), "{query}: {}", e.message);
        }
    }

    #[test]
    fn intervals_are_counted_and_ended() {
        assert_eq!(interval_count(Grain::Day, d("2026-01-01"), d("2026-01-31")), 31);
        assert_eq!(interval_count(Grain::Week, d("2026-11-02"), d("2026-11-15")), 2);
        assert_eq!(interval_count(Grain::Week, d("2026-11-04"), d("2026-11-16")), 3);
        assert_eq!(interval_count(Grain::Month, d("2025-11-24"), d("2026-11-23")), 13);
        assert_eq!(interval_end(Grain::Month, d("2026-02-01")), d("2026-02-28"));
        assert_eq!(interval_end(Grain::Week, d("2026-11-02")), d("2026-11-08"));
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let row = AvisRow {
            id: uuid::Uuid::now_v7(),
            received_at: DateTime::from_timestamp_millis(1_790_000_000_123).unwrap(),
            source: "button".into(),
            satisfaction: "bien".into(),
            facilite: None,
            clarte: Some("pas-clair".into()),
            aide: 0b100001,
            commentaire: None,
        };
        let c = cursor_string(&row);
        assert_eq!(parse_cursor(&c), Some((row.received_at, row.id)));
        for bad in ["", "_", "12", "x_y", "-1_00000000-0000-0000-0000-000000000000", "1_zz"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
        assert!(avis_params(&q("since=nope")).unwrap_err().message.starts_with("`since`"));
        for l in ["0", "1001", "-5", "dix", "1.5"] {
            assert!(avis_params(&q(&format!("limit={l}"))).unwrap_err().message.starts_with("`limit`"), "{l}");
        }
        assert_eq!(avis_params(&q("")).unwrap(), (None, DEFAULT_LIMIT));
        assert_eq!(avis_params(&q("limit=1000")).unwrap().1, 1000);
        let v = avis_json(&row);
        assert_eq!(v["aide"], json!(["aucune", "autre"]));
        assert_eq!(v["facilite"], Value::Null);
        assert!(v["received_at"].as_str().unwrap().ends_with(".123Z"));
    }

    #[test]
    fn bearer_keys_are_checked_before_any_lookup() {
        let key = format!("mav_{}", "ab".repeat(32));
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(bearer(&h(&format!("Bearer {key}"))).unwrap(), key);
        assert_eq!(bearer(&h(&format!("bearer  {key} "))).unwrap(), key);
        assert!(!bearer(&HeaderMap::new()).unwrap_err().invalid_token);
        for bad in [
            format!("Basic {key}"),
            "Bearer".to_string(),
            format!("Bearer {}", &key[4..]),
            format!("Bearer {}", key.to_uppercase()),
            format!("Bearer {key}0"),
        ] {
            let e = bearer(&h(&bad)).unwrap_err();
            assert_eq!((e.status, e.invalid_token), (StatusCode::UNAUTHORIZED, true), "{bad}");
        }
    }

    #[test]
    fn counts_are_written_with_snake_case_answers() {
        let c =
            Counts { n: 4, satisfaction: [2, 1, 1], facilite: [0, 0, 0], clarte: [0, 0, 2], aide: [1, 0, 0, 0, 0, 3] };
        let v = Value::Object(counts_json(&c));
        assert_eq!(v["satisfaction"], json!({"bien": 2, "moyen": 1, "pas_bien": 1}));
        assert_eq!(v["clarte"]["pas_clair"], 2);
        assert_eq!(v["aide"]["autre"], 3);
        assert_eq!(v["satisfaction_index"], json!(6.3), "6.25 rounded as the pages show it (6,3)");
        assert_eq!(v["facilite_index"], Value::Null);
        assert_eq!(v["autonomy"], json!(0.25));
        assert_eq!(v["indicative"], json!(true), "4 avis: indicative");
    }
}
