//! [`App`]: what every request handler of the hot path shares (configuration, assets, catalogue,
//! key signer, limiters, buffer, metrics, store, journal, console), built once at start. Its own
//! home, so that `server` (routing, start and stop) and `intake` (the vote) both depend on it and
//! not on each other.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use snippet::KeySigner;

use crate::assets::Assets;
use crate::buffer::BufferedVotes;
use crate::catalogue::{Catalogue, Demarche, PrivacyNotice};
use crate::config::Config;
use crate::form;
use crate::http::SharedPage;
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
    /// Blank forms already rendered.
    pub forms: FormCache,
    shutting_down: AtomicBool,
}

/// Most blank forms kept rendered; past it the cache starts again empty (source labels are free,
/// so the keys a client can make are not bounded otherwise).
const FORM_CACHE: usize = 4096;

/// Blank forms already rendered, with their ETag: a form is the same bytes for every citizen who
/// opens the same link until the catalogue changes, so a CDN miss costs a lookup instead of a
/// render and a SHA-256 of the page. Keyed by (URL id, language, source); an entry serves only
/// while the catalogue still holds the very démarche it was rendered from (a refresh, a rename or
/// a merge renders it again).
#[derive(Default)]
pub struct FormCache {
    map: dashmap::DashMap<FormKey, (Arc<Demarche>, Arc<SharedPage>)>,
}

/// A blank form: the id in its URL, its language, its source label.
pub type FormKey = (i64, snippet::Lang, crate::vote::Source);

impl FormCache {
    /// The page of `key` rendered from `demarche`, rendering it with `render` if need be.
    pub fn get_or_render(
        &self,
        key: FormKey,
        demarche: &Arc<Demarche>,
        render: impl FnOnce() -> maud::Markup,
    ) -> Arc<SharedPage> {
        if let Some(hit) = self.map.get(&key).filter(|e| Arc::ptr_eq(&e.0, demarche)) {
            return hit.1.clone();
        }
        let page = Arc::new(SharedPage::new(render()));
        if self.map.len() >= FORM_CACHE {
            self.map.clear();
        }
        self.map.insert(key, (demarche.clone(), page.clone()));
        page
    }
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
            forms: FormCache::default(),
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
