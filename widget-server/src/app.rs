//! [`App`]: what every request handler of the hot path shares (configuration, assets, catalogue,
//! key signer, limiters, buffer, metrics, store, journal, console), built once at start. Its own
//! home, so that `server` (routing, start and stop) and `intake` (the vote) both depend on it and
//! not on each other.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use snippet::KeySigner;

use crate::assets::Assets;
use crate::buffer::BufferedVotes;
use crate::catalogue::{Catalogue, PrivacyNotice};
use crate::config::Config;
use crate::form;
use crate::limit::Limits;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every request handler shares. Built once at start.
pub struct App {
    pub config: Config,
    pub assets: Assets,
    /// What every citizen page shows around its content.
    pub chrome: form::Chrome,
    pub catalogue: Arc<Catalogue>,
    pub signer: KeySigner,
    pub limits: Limits,
    pub buffer: Arc<BufferedVotes>,
    pub metrics: Arc<Metrics>,
    pub store: Arc<dyn Store>,
    /// With `--journal`: votes are on disk before their 303.
    pub journal: Option<crate::journal::Journal>,
    /// The porteurs' console: every path that is not a button, a form, a vote or a probe.
    pub console: Option<Arc<crate::console::Console>>,
    shutting_down: AtomicBool,
}

impl App {
    /// Builds the shared state.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        catalogue: Arc<Catalogue>,
        secret: &[u8],
        metrics: Arc<Metrics>,
    ) -> App {
        let assets = Assets::build();
        let chrome = form::Chrome {
            css_href: assets.css_href().to_string(),
            operator: config.operator_name.clone(),
            marianne: config.operator_marianne,
            privacy: PrivacyNotice { controller: config.operator_name.clone(), dpo: config.operator_dpo.clone() },
            retention_months: config.retention_months,
        };
        metrics.buffer_limit.set(config.buffer_max_votes as i64);
        App {
            assets,
            chrome,
            signer: KeySigner::new(secret),
            limits: Limits::new(config.rate_per_minute, config.rate_per_minute_demarche),
            buffer: Arc::new(BufferedVotes::new(config.buffer_max_votes as usize, config.flush_max_votes as usize)),
            metrics,
            catalogue,
            store,
            config,
            journal: None,
            console: None,
            shutting_down: AtomicBool::new(false),
        }
    }
}

impl App {
    /// Whether shutdown has begun (`/readyz` answers 503 from then on).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Marks the start of shutdown.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }
}
