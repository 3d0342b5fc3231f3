//! monavis `widget-server`: the « Je donne mon avis » buttons, the avis form, vote intake, and
//! the porteurs' console.
//!
//! # Layout
//!
//! A vote travels through these modules, in this order; open them in turn to follow it:
//!
//! - [`http`]: accepts connections (timeouts, body limits, graceful shutdown) and routes each
//!   request with a plain `match` on method and path.
//! - [`form`]: parses and validates the posted form (pure functions) and renders every public
//!   page in French with maud.
//! - [`limit`]: rate limits per client IP and per (client IP, démarche), trusting proxy headers
//!   only from `--trusted-proxies`.
//! - [`intake`]: the vote path glued together: a post from another site refused first (on its
//!   `Sec-Fetch-Site`, before its body is read), then key check, limits, honeypot, hand-over to
//!   the buffer.
//!   On the way, [`privacy`] replaces e-mails, phone numbers, NIRs and IBANs in the comment.
//! - [`journal`]: with `--journal DIR`, each vote is fsynced (group commit) before its 303.
//! - [`buffer`]: [`buffer::BufferedVotes`], the sharded in-memory map that owns accepted votes
//!   until the store commits them; full means 503, never a silent drop.
//! - [`flush`]: [`flush::Flusher`] drains the buffer in batches and retries until the store
//!   confirms; at shutdown, what cannot be stored is spilled to disk and replayed at next start.
//! - [`store`]: the [`store::Store`] trait and its two backends, PostgreSQL and SQLite.
//!
//! Beside the vote path: [`assets`] (embedded buttons and CSS, precompressed, edge-cacheable),
//! [`catalogue`] (the démarches, held in memory), [`metrics`], [`config`] and [`secret`];
//! [`retention`], the daily task that erases comments older than `--retention-months`.
//!
//! Off the vote path: [`console`], the porteurs' pages (accounts, sessions, administration),
//! an axum router that [`server::route`] hands every path it does not serve itself, with its
//! own store connections.
//!
//! # Invariants
//!
//! - The hot path (buttons, form, vote) never touches the database, and never imports the console.
//! - An accepted vote (answered 303) is owned by the buffer, then by the flusher, until the store
//!   commits it; storing is idempotent on the vote's UUIDv7, so a retried batch counts once.
//! - No IP address, user agent or cookie of a citizen is stored or logged; comments are erased
//!   after `--retention-months`.

pub mod app;
pub mod assets;
pub mod buffer;
pub mod catalogue;
pub mod config;
pub mod console;
pub mod flush;
pub mod form;
pub mod http;
pub mod intake;
pub mod journal;
pub mod limit;
pub mod metrics;
pub mod privacy;
pub mod retention;
pub mod search;
pub mod secret;
pub mod server;
pub mod stats;
pub mod store;
pub mod vote;
