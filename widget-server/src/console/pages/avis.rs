//! « Tous les avis » (`/console/demarches/{id}/avis`): every avis of a carried démarche, newest
//! first, in keyset pages of 50 (`?apres=…`: one more row is fetched instead of counting), with
//! filters (period, each answer, source, with comment, words in comments); and the filtered set
//! as `avis.csv` and `avis.xlsx`, streamed as the store reads it, memory bounded whatever the
//! number of rows.

use std::io::Write;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Days, NaiveDate, Utc};
use futures_util::StreamExt;
use maud::{html, Markup};
use serde::Deserialize;

use super::demarche::{carried, header as demarche_header, thousands, Tab};
use super::{Id, Params};
use crate::console::layout::{paris_time, source_label, Errors};
use crate::console::spreadsheet::neutralise;
use crate::console::store::{AvisFilter, AvisRow, Cursor, DemarcheRow};
use crate::console::{Answer, Ctx, Problem};
use crate::form::{LABELS_AIDE, LABELS_CLARTE, LABELS_FACILITE, LABELS_SATISFACTION};
use crate::vote::{paris_day, paris_midnight, Lang, Question, AIDE};

/// Avis per page.
const PAGE: i64 = 50;
/// Rows of an XLSX sheet (Excel's limit), header included.
const SHEET_ROWS: u32 = 1_048_576;

/// The filters as the page's GET form sends them.
#[derive(Deserialize, Default, Clone)]
pub struct AvisQuery {
    du: Option<String>,
    au: Option<String>,
    satisfaction: Option<String>,
    facilite: Option<String>,
    clarte: Option<String>,
    source: Option<String>,
    langue: Option<String>,
    commentaire: Option<String>,
    q: Option<String>,
    apres: Option<String>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The store filter of a query, or French messages per field.
pub fn filter_of(q: &AvisQuery, errors: &mut Errors) -> AvisFilter {
    let mut f = AvisFilter::default();
    let date = |v: &Option<String>, field: &'static str, label: &'static str, errors: &mut Errors| {
        non_empty(v).and_then(|s| match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                errors.add(field, label, "Indiquez une date au format AAAA-MM-JJ, par exemple 2026-01-31.");
                None
            }
        })
    };
    let (du, au) = (date(&q.du, "du", "Du", errors), date(&q.au, "au", "Au", errors));
    if let (Some(a), Some(b)) = (du, au) {
        if a > b {
            errors.add("au", "Au", "La date de fin doit suivre la date de début.");
        }
    }
    f.from = du.map(paris_midnight);
    f.until = au.map(|d| paris_midnight(d + Days::new(1)));
    for (question, value, slot) in [
        (Question::Satisfaction, &q.satisfaction, &mut f.satisfaction),
        (Question::Facilite, &q.facilite, &mut f.facilite),
        (Question::Clarte, &q.clarte, &mut f.clarte),
    ] {
        if let Some(v) = non_empty(value) {
            if question.parse(v).is_some() {
                *slot = Some(v.to_string());
            } else {
                errors.add("filtres", "Réponses", "Choisissez une des réponses proposées.");
            }
        }
    }
    if let Some(s) = non_empty(&q.source) {
        if snippet::is_valid_source(s) {
            f.source = Some(s.to_string());
        } else {
            errors.add(
                "source",
                "Provenance",
                "Une provenance compte de 1 à 32 lettres minuscules, chiffres ou tirets.",
            );
        }
    }
    if let Some(l) = non_empty(&q.langue) {
        match Lang::from_code(l) {
            Some(l) => f.langue = Some(l.code().to_string()),
            None => errors.add("langue", "Langue", "Choisissez une des langues proposées."),
        }
    }
    f.with_comment = non_empty(&q.commentaire).is_some();
    f.text = non_empty(&q.q).map(|t| t.chars().take(200).collect());
    f
}

/// `{milliseconds}_{uuid}`: where the next page starts.
pub fn encode_cursor(c: &Cursor) -> String {
    format!("{}_{}", c.0.timestamp_millis(), c.1.simple())
}

pub fn decode_cursor(s: &str) -> Option<Cursor> {
    let (ms, id) = s.split_once('_')?;
    let at = DateTime::<Utc>::from_timestamp_millis(ms.parse().ok()?)?;
    Some((at, uuid::Uuid::parse_str(id).ok()?))
}

fn label(question: Question, value: &str) -> &'static str {
    let labels = match question {
        Question::Satisfaction => LABELS_SATISFACTION,
        Question::Facilite => LABELS_FACILITE,
        Question::Clarte => LABELS_CLARTE,
    };
    question.parse(value).map_or("", |l| labels[l.index()])
}

/// A stored `langue` named in French (« Anglais »); the code itself if unknown.
pub fn langue_name(code: &str) -> &str {
    match Lang::from_code(code) {
        Some(l) => l.french_name(),
        None => code,
    }
}

fn aides(mask: i64) -> Vec<&'static str> {
    (0..AIDE.len()).filter(|i| mask >> i & 1 == 1).map(|i| LABELS_AIDE[i]).collect()
}

/// The query string of the filters (without the cursor), for links.
fn filters_query(q: &AvisQuery) -> String {
    let pairs: Vec<(&str, &str)> = [
        ("du", &q.du),
        ("au", &q.au),
        ("satisfaction", &q.satisfaction),
        ("facilite", &q.facilite),
        ("clarte", &q.clarte),
        ("source", &q.source),
        ("langue", &q.langue),
        ("commentaire", &q.commentaire),
        ("q", &q.q),
    ]
    .into_iter()
    .filter_map(|(k, v)| non_empty(v).map(|v| (k, v)))
    .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

fn select(id: &'static str, legend: &str, question: Question, labels: [&str; 3], chosen: Option<&str>) -> Markup {
    html! {
        div.champ {
            label for=(id) { (legend) }
            select id=(id) name=(id) {
                option value="" selected[chosen.is_none()] { "Toutes" }
                @for (value, text) in question.values().iter().zip(labels) {
                    option value=(value) selected[chosen == Some(*value)] { (text) }
                }
            }
        }
    }
}

fn filters_form(id: i64, q: &AvisQuery, errors: &Errors, sources: &[String]) -> Markup {
    let chosen = non_empty(&q.source);
    html! {
        (errors.summary("Les filtres n'ont pas pu être appliqués"))
        form.periode #filtres method="get" action={ "/console/demarches/" (id) "/avis" } {
            div.grille {
                div.champ { label for="du" { "Reçus du" } input type="date" id="du" name="du" value=(q.du.as_deref().unwrap_or("")); }
                div.champ { label for="au" { "Au" } input type="date" id="au" name="au" value=(q.au.as_deref().unwrap_or("")); }
                (select("satisfaction", "Satisfaction", Question::Satisfaction, LABELS_SATISFACTION, non_empty(&q.satisfaction)))
                (select("facilite", "Facilité", Question::Facilite, LABELS_FACILITE, non_empty(&q.facilite)))
                (select("clarte", "Clarté", Question::Clarte, LABELS_CLARTE, non_empty(&q.clarte)))
                div.champ {
                    label for="source" { "Provenance" }
                    select id="source" name="source" {
                        option value="" selected[chosen.is_none()] { "Toutes" }
                        @for s in sources { option value=(s) selected[chosen == Some(s.as_str())] { (source_label(s)) } }
                        // A label asked for by a link but not seen yet stays chosen.
                        @if let Some(c) = chosen.filter(|c| !sources.iter().any(|s| s == c)) { option value=(c) selected { (source_label(c)) } }
                    }
                }
                div.champ {
                    label for="langue" { "Langue du formulaire" }
                    select id="langue" name="langue" {
                        option value="" selected[non_empty(&q.langue).is_none()] { "Toutes" }
                        @for l in Lang::ALL { option value=(l.code()) selected[non_empty(&q.langue) == Some(l.code())] { (l.french_name()) } }
                    }
                }
                div.champ {
                    label for="q" { "Mots dans le commentaire" }
                    p.indication #q-aide { "Le début d'un mot suffit, à partir de 3 lettres\u{a0}: «\u{a0}rembours\u{a0}» trouve «\u{a0}remboursement\u{a0}»." }
                    input type="search" id="q" name="q" aria-describedby="q-aide" value=(q.q.as_deref().unwrap_or(""));
                }
            }
            div.case {
                input type="checkbox" id="commentaire" name="commentaire" value="oui" checked[non_empty(&q.commentaire).is_some()];
                label for="commentaire" { "Seulement les avis avec un commentaire" }
            }
            button.bouton-secondaire type="submit" { "Filtrer" }
        }
    }
}

fn avis_list(rows: &[AvisRow]) -> Markup {
    html! {
        ol.avis {
            @for a in rows {
                li {
                    p.indication { (paris_time(a.received_at)) " · provenance «\u{a0}" (source_label(&a.source)) "\u{a0}» · formulaire en " (langue_name(&a.langue).to_lowercase()) }
                    dl {
                        dt { "Satisfaction" } dd { (label(Question::Satisfaction, &a.satisfaction)) }
                        dt { "Facilité" } dd { (a.facilite.as_deref().map_or("Sans réponse", |v| label(Question::Facilite, v))) }
                        dt { "Clarté" } dd { (a.clarte.as_deref().map_or("Sans réponse", |v| label(Question::Clarte, v))) }
                        dt { "Aide" } dd { @let list = aides(a.aide); @if list.is_empty() { "Sans réponse" } @else { (list.join(", ")) } }
                    }
                    @if let Some(c) = &a.commentaire { blockquote { p { (c) } } }
                }
            }
        }
    }
}

pub async fn avis_get(ctx: Ctx, Id(id): Id, Params(q): Params<AvisQuery>) -> Answer {
    let d = carried(&ctx, id).await?;
    let mut errors = Errors::default();
    let filter = filter_of(&q, &mut errors);
    let cursor = non_empty(&q.apres).and_then(decode_cursor);
    let mut rows =
        if errors.is_empty() { ctx.console.store.avis_page(id, filter, cursor, PAGE + 1).await? } else { Vec::new() };
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let sources: Vec<String> = ctx.console.store.sources(id).await?.into_iter().map(|(s, _)| s).collect();
    let count = if !errors.is_empty() {
        None
    } else if cursor.is_none() && !more {
        // The first page holds them all: counted already.
        Some(Count::Exact(rows.len() as i64))
    } else {
        Some(count(&ctx, id, &filter_of(&q, &mut Errors::default())).await?)
    };
    let filters = filters_query(&q);
    let base = format!("/console/demarches/{id}/avis");
    let with = |extra: String| if extra.is_empty() { base.clone() } else { format!("{base}?{extra}") };
    let next = rows.last().filter(|_| more).map(|a| {
        let cursor =
            serde_urlencoded::to_string([("apres", encode_cursor(&(a.received_at, a.id)))]).unwrap_or_default();
        with(if filters.is_empty() { cursor } else { format!("{filters}&{cursor}") })
    });
    let export = |ext: &str| {
        let path = format!("/console/demarches/{id}/avis.{ext}");
        if filters.is_empty() {
            path
        } else {
            format!("{path}?{filters}")
        }
    };
    let main = html! {
        (demarche_header(&d, Some(Tab::Avis)))
        h2 { "Tous les avis" }
        (filters_form(id, &q, &errors, &sources))
        @match count {
            Some(Count::Exact(n)) => p.compte #nombre-resultats role="status" { strong { (thousands(n)) } @if n > 1 { " avis correspondent" } @else { " avis correspond" } @if !filters.is_empty() { " à ces filtres" } "." },
            Some(Count::MoreThan(n)) => p.compte #nombre-resultats role="status" { "Plus de " strong { (thousands(n)) } " avis correspondent à ces filtres." },
            Some(Count::TooLong) => p.compte #nombre-resultats role="status" { "Ces filtres trouvent trop d'avis pour les compter rapidement\u{a0}: affinez-les (période, réponses, mots) pour avoir leur nombre." },
            None => {},
        }
        p.actions {
            a.bouton-secondaire href=(export("csv")) { "Exporter en CSV" }
            a.bouton-secondaire href=(export("xlsx")) { "Exporter en Excel (XLSX)" }
        }
        @if rows.is_empty() {
            p { @if cursor.is_some() { "Aucun autre avis." } @else { "Aucun avis ne correspond." } }
        } @else {
            (avis_list(&rows))
        }
        nav.pagination aria-label="Pages d'avis" {
            @if cursor.is_some() { a href=(with(filters.clone())) { "Premiers avis" } }
            @if let Some(n) = &next { a href=(n) { "Avis suivants" } }
        }
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.render(status, &format!("Tous les avis – {}", d.details.name), main))
}

/// How many avis a filter selects: exact, or past the counting cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Count {
    Exact(i64),
    MoreThan(i64),
    /// Not counted within the budget ([`crate::console::store::COUNT_BUDGET`]).
    TooLong,
}

/// Counted rows at most, when `avis_daily` cannot answer (words, « avec commentaire », two
/// answers at once): bounded work at 10 million avis.
/// 1,000, not more: at 10 million avis a count of 10,000 matches made a filter of two answers
/// 300 times slower than the list it goes with (consolebench, 2026-12-07).
const COUNT_CAP: i64 = 1_000;

/// The number of avis `filter` selects. From `avis_daily` and its monthly rollup (O(months), or
/// O(days) for one source; exact at any size) when their sums answer it: whole Paris days (the
/// date filters are), a source, at most one answer, no words nor « avec commentaire » nor
/// language; otherwise counted in `avis`, up to [`COUNT_CAP`].
async fn count(ctx: &Ctx, id: i64, filter: &AvisFilter) -> Result<Count, Problem> {
    let answers = [&filter.satisfaction, &filter.facilite, &filter.clarte].iter().filter(|a| a.is_some()).count();
    let store = &ctx.console.store;
    if filter.text.is_none() && !filter.with_comment && filter.langue.is_none() && answers <= 1 {
        let first = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
        let from = filter.from.map_or(first, |t| paris_day(t.timestamp_millis()));
        let to = filter.until.map_or_else(
            || paris_day(Utc::now().timestamp_millis()) + Days::new(1),
            |t| paris_day(t.timestamp_millis() - 1),
        );
        let total = match &filter.source {
            // Whole months from the rollup (O(months)).
            None => store.counts(id, from, to).await?,
            Some(source) => {
                let mut total = crate::stats::Counts::default();
                for (_, c) in &store.day_counts(id, from, to, Some(source.clone())).await? {
                    total.add(c);
                }
                total
            }
        };
        let pick = |question: Question, value: &Option<String>, counts: &[i64; 3]| {
            value.as_deref().and_then(|v| question.parse(v)).map(|l| counts[l.index()])
        };
        let n = pick(Question::Satisfaction, &filter.satisfaction, &total.satisfaction)
            .or_else(|| pick(Question::Facilite, &filter.facilite, &total.facilite))
            .or_else(|| pick(Question::Clarte, &filter.clarte, &total.clarte))
            .unwrap_or(total.n);
        return Ok(Count::Exact(n));
    }
    Ok(match store.count_avis(id, filter.clone(), COUNT_CAP).await? {
        None => Count::TooLong,
        Some(n) if n > COUNT_CAP => Count::MoreThan(COUNT_CAP),
        Some(n) => Count::Exact(n),
    })
}

/// The export's columns; « Langue » came last (issue 24), so scripts reading the earlier
/// columns by position go on working.
const COLUMNS: [&str; 9] = [
    "Date (heure de Paris)",
    "Provenance",
    "Satisfaction",
    "Facilité",
    "Clarté",
    "Aide",
    "Commentaire",
    "Identifiant",
    "Langue",
];

/// Widths of [`COLUMNS`] in the XLSX export, in characters.
const WIDTHS: [f64; 9] = [19.0, 14.0, 12.0, 22.0, 18.0, 28.0, 80.0, 38.0, 12.0];

/// The cells of an avis as read: text, as the XLSX export writes them (its first, the date, is
/// written as a date there).
fn cells(a: &AvisRow) -> [String; 9] {
    [
        a.received_at.with_timezone(&chrono_tz::Europe::Paris).format("%Y-%m-%d %H:%M:%S").to_string(),
        source_label(&a.source).to_string(),
        label(Question::Satisfaction, &a.satisfaction).to_string(),
        a.facilite.as_deref().map_or("", |v| label(Question::Facilite, v)).to_string(),
        a.clarte.as_deref().map_or("", |v| label(Question::Clarte, v)).to_string(),
        aides(a.aide).join(", "),
        a.commentaire.as_deref().unwrap_or("").to_string(),
        a.id.hyphenated().to_string(),
        langue_name(&a.langue).to_string(),
    ]
}

/// The cells of an avis in the CSV export: [`cells`], the free texts neutralised.
fn csv_cells(a: &AvisRow) -> [String; 9] {
    let mut c = cells(a);
    c[1] = neutralise(&c[1]);
    c[6] = neutralise(&c[6]);
    c
}

/// The Paris time of an avis as a spreadsheet date.
fn excel_time(at: DateTime<Utc>) -> Result<rust_xlsxwriter::ExcelDateTime, rust_xlsxwriter::XlsxError> {
    use chrono::{Datelike, Timelike};
    let t = at.with_timezone(&chrono_tz::Europe::Paris);
    rust_xlsxwriter::ExcelDateTime::from_ymd(t.year() as u16, t.month() as u8, t.day() as u8)?.and_hms(
        t.hour() as u16,
        t.minute() as u8,
        t.second(),
    )
}

/// `avis-{id}-{name}-{period}.{ext}`, ASCII only.
fn file_name(d: &DemarcheRow, q: &AvisQuery, ext: &str) -> String {
    let slug: String = crate::search::fold(&d.details.name)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let period = match (non_empty(&q.du), non_empty(&q.au)) {
        (None, None) => "tout".to_string(),
        (du, au) => format!("{}-au-{}", du.unwrap_or("debut"), au.unwrap_or("aujourd-hui")),
    };
    let period: String = period.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    format!("avis-{}-{}-{}.{ext}", d.id, slug.trim_matches('-'), period)
}

fn download(content_type: &'static str, name: &str, body: Body) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

async fn export_setup(ctx: &Ctx, id: i64, q: &AvisQuery) -> Result<(DemarcheRow, AvisFilter), Problem> {
    let d = carried(ctx, id).await?;
    let mut errors = Errors::default();
    let filter = filter_of(q, &mut errors);
    if !errors.is_empty() {
        return Err(Problem {
            link: Some(("Tous les avis", "/console")),
            ..Problem::new(
                StatusCode::BAD_REQUEST,
                "Filtres illisibles",
                "Les filtres de cet export n'ont pas pu être lus.",
            )
        });
    }
    Ok((d, filter))
}

/// `avis.csv`: UTF-8 with BOM, `;`, CRLF (what French spreadsheet software opens right),
/// written 500 rows at a time as the store streams them.
pub async fn csv_get(ctx: Ctx, Id(id): Id, Params(q): Params<AvisQuery>) -> Answer {
    let (d, filter) = export_setup(&ctx, id, &q).await?;
    let header_row = {
        let mut w = csv_writer(Vec::from(&b"\xEF\xBB\xBF"[..]));
        let _ = w.write_record(COLUMNS);
        w.into_inner().unwrap_or_default()
    };
    let rows = ctx.console.store.avis_export(id, filter).chunks(500).map(|chunk| {
        let mut w = csv_writer(Vec::with_capacity(chunk.len() * 160));
        for row in chunk {
            let row = row.map_err(|e| std::io::Error::other(e.to_string()))?;
            w.write_record(csv_cells(&row)).map_err(std::io::Error::other)?;
        }
        w.into_inner().map(Bytes::from).map_err(|e| std::io::Error::other(e.to_string()))
    });
    let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(header_row)) }).chain(rows);
    Ok(download("text/csv; charset=utf-8", &file_name(&d, &q, "csv"), Body::from_stream(body)))
}

fn csv_writer(into: Vec<u8>) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new().delimiter(b';').terminator(csv::Terminator::CRLF).from_writer(into)
}

/// Sends what it is given as body chunks, 64 KiB at a time.
struct ChunkSender {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::other("the client left"))?;
        }
        Ok(())
    }
}

/// `avis.xlsx`: rust_xlsxwriter in constant-memory mode (rows go to a temporary file as they
/// come), then the workbook is zipped straight into the response.
pub async fn xlsx_get(ctx: Ctx, Id(id): Id, Params(q): Params<AvisQuery>) -> Answer {
    let (d, filter) = export_setup(&ctx, id, &q).await?;
    let mut rows = ctx.console.store.avis_export(id, filter);
    // A store error ends the download with an error, never with a file silently cut short.
    let (row_tx, mut row_rx) = tokio::sync::mpsc::channel::<Result<AvisRow, String>>(1024);
    let (body_tx, mut body_rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::spawn(async move {
        while let Some(row) = rows.next().await {
            let failed = row.is_err();
            if row_tx.send(row.map_err(|e| e.to_string())).await.is_err() || failed {
                return;
            }
        }
    });
    let error_tx = body_tx.clone();
    tokio::task::spawn_blocking(move || {
        let result = (|| -> Result<(), rust_xlsxwriter::XlsxError> {
            use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
            let mut workbook = Workbook::new();
            let bold = Format::new().set_bold();
            let date = Format::new().set_num_format("dd/mm/yyyy hh:mm:ss");
            let wrap = Format::new().set_text_wrap();
            // A header row in bold, frozen, columns sized to what they hold.
            let start = |sheet: &mut Worksheet| -> Result<(), XlsxError> {
                for (c, (title, width)) in COLUMNS.iter().zip(WIDTHS).enumerate() {
                    sheet.set_column_width(c as u16, width)?;
                    sheet.write_string_with_format(0, c as u16, *title, &bold)?;
                }
                sheet.set_freeze_panes(1, 0)?;
                Ok(())
            };
            // Filters on the header row, over the rows written.
            let finish = |sheet: &mut Worksheet, rows: u32| -> Result<(), XlsxError> {
                sheet.autofilter(0, 0, rows.saturating_sub(1).max(1), COLUMNS.len() as u16 - 1).map(drop)
            };
            // A sheet holds 1,048,576 rows: past that, the avis go on in « Avis (2) », and so on,
            // each sheet with its header row. Nothing is cut.
            let mut sheets = 0u32;
            let mut r = SHEET_ROWS;
            while let Some(row) = row_rx.blocking_recv() {
                let row = row.map_err(|e| XlsxError::ParameterError(format!("store: {e}")))?;
                if r == SHEET_ROWS {
                    if sheets > 0 {
                        finish(workbook.worksheet_from_index(sheets as usize - 1)?, r)?;
                    }
                    sheets += 1;
                    let sheet = workbook.add_worksheet_with_constant_memory()?;
                    sheet.set_name(if sheets == 1 { "Avis".to_string() } else { format!("Avis ({sheets})") })?;
                    start(sheet)?;
                    r = 1;
                }
                let sheet = workbook.worksheet_from_index(sheets as usize - 1)?;
                sheet.write_datetime_with_format(r, 0, excel_time(row.received_at)?, &date)?;
                for (c, cell) in cells(&row).iter().enumerate().skip(1) {
                    if c == 6 && !cell.is_empty() {
                        sheet.write_string_with_format(r, c as u16, cell, &wrap)?;
                    } else if !cell.is_empty() {
                        sheet.write_string(r, c as u16, cell)?;
                    }
                }
                r += 1;
            }
            if sheets == 0 {
                let sheet = workbook.add_worksheet_with_constant_memory()?;
                sheet.set_name("Avis")?;
                start(sheet)?;
                finish(sheet, 1)?;
            } else {
                finish(workbook.worksheet_from_index(sheets as usize - 1)?, r)?;
            }
            let mut out = ChunkSender { buf: Vec::new(), tx: body_tx };
            workbook.save_to_writer(&mut out)?;
            out.flush()?;
            Ok(())
        })();
        if let Err(e) = result {
            tracing::warn!(error = %e, "console: XLSX export failed");
            let _ = error_tx.blocking_send(Err(std::io::Error::other("export failed")));
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| body_rx.poll_recv(cx));
    Ok(download(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &file_name(&d, &q, "xlsx"),
        Body::from_stream(body),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = (DateTime::<Utc>::from_timestamp_millis(1_763_900_000_123).unwrap(), uuid::Uuid::now_v7());
        assert_eq!(decode_cursor(&encode_cursor(&c)), Some(c));
        for bad in ["", "_", "abc_def", "123", "123_zz", "99999999999999999999_0"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn filters_are_checked() {
        let mut e = Errors::default();
        let q = AvisQuery {
            du: Some("2026-01-01".into()),
            au: Some("2026-01-31".into()),
            satisfaction: Some("pas-bien".into()),
            commentaire: Some("oui".into()),
            q: Some("  agent  ".into()),
            langue: Some("ar".into()),
            ..AvisQuery::default()
        };
        let f = filter_of(&q, &mut e);
        assert!(e.is_empty());
        assert_eq!(f.from.unwrap().to_rfc3339(), "2025-12-31T23:00:00+00:00");
        assert_eq!(f.until.unwrap().to_rfc3339(), "2026-01-31T23:00:00+00:00");
        assert_eq!(
            (f.satisfaction.as_deref(), f.with_comment, f.text.as_deref()),
            (Some("pas-bien"), true, Some("agent"))
        );
        assert_eq!(f.langue.as_deref(), Some("ar"));
        let bad = AvisQuery {
            du: Some("hier".into()),
            facilite: Some("bof".into()),
            source: Some("A B".into()),
            langue: Some("klingon".into()),
            ..AvisQuery::default()
        };
        let mut e = Errors::default();
        filter_of(&bad, &mut e);
        for field in ["du", "filtres", "source", "langue"] {
            assert!(e.get(field).is_some(), "{field}");
        }
    }
}
