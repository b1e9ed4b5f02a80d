//! Wires the services into one actix-web server: shared state, middleware, routes, the
//! OpenAPI document, background audits, graceful shutdown.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::{App, HttpServer, web};
use scrip_auth::{KeyPair, TokenIssuer, TokenVerifier, load_or_create_keys, load_public_key};
use scrip_bus::{Bus, InProcessBus, RedisBus};
use scrip_domain::RegistryId;
use scrip_gateway::GatewayContext;
use scrip_http::{RateLimiter, configure_extractors};
use scrip_issuer::IssuerPolicy;
use scrip_ledger::{Committer, Ledger};
use scrip_orderbook::{Exchange, ExchangeMetrics, WorkerContext};
use scrip_store::{DatabaseUrl, connect_and_migrate};
use scrip_telemetry::Metrics;
use scrip_wallet::WalletContext;
use tracing::Instrument as _;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::cli::Config;

/// How often the background audit re-checks every invariant for the `ledger_audit_ok` gauge.
const AUDIT_INTERVAL: Duration = Duration::from_secs(60);
/// How often a process looks for markets opened by another process.
const MARKET_DISCOVERY_INTERVAL: Duration = Duration::from_secs(3);

/// What connects this process to the others: the event bus and, with Redis, the shared
/// rate-limit counters. In-process (one process, nothing shared) without a Redis URL.
#[derive(Clone)]
pub struct Backplane {
    pub bus: Arc<dyn Bus>,
    pub limits: Option<redis::aio::ConnectionManager>,
    /// Prefix of this deployment's keys and channels in Redis.
    pub prefix: String,
}

impl std::fmt::Debug for Backplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backplane")
            .field("bus", &self.bus.kind())
            .field("shared_limits", &self.limits.is_some())
            .finish()
    }
}

impl Backplane {
    /// Connects to Redis when a URL is given; fails (rather than run alone) when it does not
    /// answer, because a process that cannot reach the others must not pretend to be one of them.
    pub async fn connect(
        redis_url: Option<&str>,
        prefix: &str,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let Some(url) = redis_url else {
            return Ok(Self {
                bus: Arc::new(InProcessBus::new()),
                limits: None,
                prefix: prefix.to_owned(),
            });
        };
        let bus = RedisBus::connect(url, &format!("{prefix}bus:"))
            .await
            .map_err(|e| format!("cannot reach Redis at {url}: {e}"))?;
        let limits = redis::aio::ConnectionManager::new(redis::Client::open(url)?)
            .await
            .map_err(|e| format!("cannot reach Redis at {url}: {e}"))?;
        Ok(Self {
            bus: Arc::new(bus),
            limits: Some(limits),
            prefix: prefix.to_owned(),
        })
    }

    /// The bus, where other processes may be listening (Redis); `None` in one process.
    fn shared_bus(&self) -> Option<Arc<dyn Bus>> {
        self.limits.as_ref().map(|_| Arc::clone(&self.bus))
    }

    fn limiter(&self, name: &'static str, per_minute: u32) -> RateLimiter {
        let limiter = RateLimiter::new(name, per_minute);
        match &self.limits {
            Some(redis) => limiter.shared(redis.clone(), &self.prefix),
            None => limiter,
        }
    }
}

/// Which services this process serves. System endpoints are always served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Services {
    pub gateway: bool,
    pub issuer: bool,
    pub wallet: bool,
    pub clearing: bool,
    pub orderbook: bool,
}

impl Services {
    const NONE: Self = Self {
        gateway: false,
        issuer: false,
        wallet: false,
        clearing: false,
        orderbook: false,
    };

    pub const fn all() -> Self {
        Self {
            gateway: true,
            issuer: true,
            wallet: true,
            clearing: true,
            orderbook: true,
        }
    }
    pub const fn only_gateway() -> Self {
        Self {
            gateway: true,
            ..Self::NONE
        }
    }
    pub const fn only_issuer() -> Self {
        Self {
            issuer: true,
            ..Self::NONE
        }
    }
    pub const fn only_wallet() -> Self {
        Self {
            wallet: true,
            ..Self::NONE
        }
    }
    pub const fn only_clearing() -> Self {
        Self {
            clearing: true,
            ..Self::NONE
        }
    }
    pub const fn only_orderbook() -> Self {
        Self {
            orderbook: true,
            ..Self::NONE
        }
    }
}

/// Everything the server needs, resolved from flags and environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: DatabaseUrl,
    pub db_pool_size: u32,
    pub registry: RegistryId,
    pub keys: KeySource,
    pub token_ttl_s: u64,
    pub policy: IssuerPolicy,
    pub login_per_minute: u32,
    pub login_per_address_per_minute: u32,
    pub signup_per_minute: u32,
    pub payments_per_minute: u32,
    pub services: Services,
    pub demo: bool,
    /// Scheduled clearing: every this many seconds (0: off) in this unit.
    pub clearing_interval_s: u64,
    pub clearing_unit: scrip_domain::UnitCode,
    /// Redis for the bus and shared rate limits; `None`: in-process.
    pub redis_url: Option<String>,
    /// Prefix of this deployment's keys and channels in Redis.
    pub redis_prefix: String,
    /// Load balancers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Bounds on the market data streams.
    pub streams: scrip_orderbook::StreamLimits,
    /// Where `/metrics` is served instead of `listen` (an internal address); `None`: `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// New coinage (`--onboarding-*`); `None`: off.
    pub onboarding: Option<scrip_marketplace::onboarding::Settings>,
}

/// Where the token keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Generated on first start and kept in this directory (embedded mode).
    DataDir(PathBuf),
    /// Supplied by configuration (production); the private key only where the gateway runs.
    Files {
        private: Option<PathBuf>,
        public: PathBuf,
    },
}

impl Settings {
    pub fn from_config(
        config: &Config,
        database_url: DatabaseUrl,
        services: Services,
        demo: bool,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let keys = match (&config.jwt_private_key_file, &config.jwt_public_key_file) {
            (None, None) => KeySource::DataDir(config.data_dir.clone()),
            (private, Some(public)) => KeySource::Files {
                private: private.clone(),
                public: public.clone(),
            },
            (Some(_), None) => {
                return Err("--jwt-private-key-file needs --jwt-public-key-file too".into());
            }
        };
        Ok(Self {
            listen: config.listen,
            database_url,
            db_pool_size: config.db_pool_size,
            registry: RegistryId::parse(&config.registry)?,
            keys,
            token_ttl_s: config.token_ttl_s,
            policy: IssuerPolicy {
                max_credit_limit_units: config.max_credit_limit,
            },
            login_per_minute: config.login_per_minute,
            login_per_address_per_minute: config.login_per_address_per_minute,
            signup_per_minute: config.signup_per_minute,
            payments_per_minute: config.payments_per_minute,
            services,
            demo,
            clearing_interval_s: config.clearing_interval_s,
            clearing_unit: scrip_domain::UnitCode::parse(&config.clearing_unit)?,
            redis_url: config.redis_url.clone(),
            redis_prefix: config.redis_prefix.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            metrics_listen: config.metrics_listen,
            onboarding: onboarding_settings(config)?,
            streams: scrip_orderbook::StreamLimits {
                total: config.max_streams,
                per_address: config.max_streams_per_address,
                ..scrip_orderbook::StreamLimits::default()
            },
        })
    }
}

/// `--onboarding-currency` and `--onboarding-credit` together turn new coinage on.
fn onboarding_settings(
    config: &Config,
) -> Result<Option<scrip_marketplace::onboarding::Settings>, Box<dyn std::error::Error>> {
    match (&config.onboarding_currency, &config.onboarding_credit) {
        (None, None) => Ok(None),
        (Some(currency), Some(credit)) => Ok(Some(scrip_marketplace::onboarding::Settings::parse(
            currency,
            credit,
            &config.onboarding_min_reputation,
        )?)),
        _ => Err("new coinage needs both --onboarding-currency and --onboarding-credit".into()),
    }
}

/// The shared state every worker of the server clones.
#[derive(Clone)]
struct State {
    ledger: web::Data<Ledger>,
    registry: web::Data<RegistryId>,
    verifier: web::Data<TokenVerifier>,
    gateway: Option<web::Data<GatewayContext>>,
    wallet: web::Data<WalletContext>,
    /// The markets this process writes (order-book service only).
    exchange: Option<web::Data<Exchange>>,
    /// Whether `/metrics` is served beside the API (no internal address for it).
    metrics_public: bool,
    streams: web::Data<Arc<scrip_orderbook::StreamGate>>,
    policy: web::Data<IssuerPolicy>,
    /// The per-caller budget of converted payments and quotes.
    conversions: web::Data<scrip_orderbook::convert::http::ConversionLimiter>,
    /// New coinage, for the marketplace's deals.
    onboarding: web::Data<scrip_marketplace::onboarding::Onboarding>,
    /// The marketplace's bound on searches running at once.
    searches: web::Data<scrip_marketplace::listings::SearchGate>,
    /// Recent liabilities trees, shared by the issuer (roots, health) and the wallet (proofs).
    liabilities: web::Data<scrip_proofs::Liabilities>,
    /// What runs an approved proposal, by action (the issuer's and the exchange's).
    executors: web::Data<scrip_governance::Executors>,
    metrics: web::Data<Metrics>,
    openapi: utoipa::openapi::OpenApi,
    services: Services,
    bus: web::Data<dyn Bus>,
    trusted_proxies: web::Data<scrip_http::TrustedProxies>,
}

fn load_keys(
    source: &KeySource,
    gateway: bool,
) -> Result<(Option<KeyPair>, String), Box<dyn std::error::Error>> {
    match source {
        KeySource::DataDir(dir) => {
            let pair = load_or_create_keys(dir)?;
            let public = pair.public_pem.clone();
            Ok((Some(pair), public))
        }
        KeySource::Files { private, public } => {
            let public_pem = load_public_key(public)?;
            let pair = match private {
                Some(path) if gateway => Some(KeyPair {
                    private_pem: load_public_key(path)?,
                    public_pem: public_pem.clone(),
                }),
                _ => None,
            };
            Ok((pair, public_pem))
        }
    }
}

fn build_state(
    settings: &Settings,
    backplane: &Backplane,
) -> Result<State, Box<dyn std::error::Error>> {
    let pool = connect_and_migrate(&settings.database_url, settings.db_pool_size)?;
    let ledger = Ledger::new(pool);
    if settings.demo {
        crate::demo::seed(&ledger, &settings.registry)?;
    }
    let (pair, public_pem) = load_keys(&settings.keys, settings.services.gateway)?;
    // One verifier per process, shared by the extractor and by what ends sessions here.
    let verifier = TokenVerifier::new(&public_pem)?;
    let gateway = match (&pair, settings.services.gateway) {
        (Some(pair), true) => Some(web::Data::new(GatewayContext {
            tokens: TokenIssuer::new(pair, settings.token_ttl_s)?,
            login_limiter: backplane.limiter("login", settings.login_per_minute),
            login_address_limiter: backplane
                .limiter("login_address", settings.login_per_address_per_minute),
            signup_limiter: backplane.limiter("signup", settings.signup_per_minute),
            hasher: scrip_auth::password::Hasher::for_this_machine()?,
            revocation: scrip_auth::revocation::Revocation::new(
                Arc::clone(&backplane.bus),
                verifier.clone(),
            ),
        })),
        (None, true) => {
            return Err("the gateway needs the token signing key (--jwt-private-key-file)".into());
        }
        _ => None,
    };
    let metrics = Metrics::new();
    // The order-book service writes markets; a gateway without it follows them over the bus
    // to serve market data (streams, books) on every instance.
    let follows = settings.services.gateway && backplane.shared_bus().is_some();
    if settings.services.gateway && !settings.services.orderbook && !follows {
        tracing::warn!(
            "a gateway without the order-book service serves market data only with REDIS_URL; \
             market data routes are not mounted here"
        );
    }
    let exchange = if settings.services.orderbook || follows {
        let registry_principal = ledger.read(|conn| {
            let handle = scrip_domain::Handle::parse(scrip_ledger::REGISTRY_HANDLE)?;
            scrip_ledger::principal_by_handle(conn, &handle)
        })?;
        let context = WorkerContext {
            pool: ledger.pool().clone(),
            database_url: settings.database_url.clone(),
            registry: registry_principal.id,
            metrics: ExchangeMetrics::new(&metrics),
            bus: backplane.shared_bus(),
            notifier: Some(scrip_notify::Notifier::new(Arc::clone(&backplane.bus))),
        };
        let exchange = if settings.services.orderbook {
            Exchange::start(context)?
        } else {
            Exchange::follow(context)?
        };
        if settings.demo && settings.services.orderbook {
            crate::demo::seed_exchange(&ledger, &exchange)?;
        }
        Some(web::Data::new(exchange))
    } else {
        None
    };
    Ok(State {
        exchange,
        metrics_public: settings.metrics_listen.is_none(),
        streams: web::Data::new(scrip_orderbook::StreamGate::new(settings.streams)),
        registry: web::Data::new(settings.registry.clone()),
        verifier: web::Data::new(verifier),
        gateway,
        wallet: web::Data::new(WalletContext {
            committer: Committer::start(ledger.clone()),
            payment_limiter: backplane.limiter("payments", settings.payments_per_minute),
            metrics: metrics.clone(),
            notifier: scrip_notify::Notifier::new(Arc::clone(&backplane.bus)),
        }),
        policy: web::Data::new(settings.policy),
        conversions: web::Data::new(scrip_orderbook::convert::http::ConversionLimiter(
            backplane.limiter("payments", settings.payments_per_minute),
        )),
        executors: web::Data::new(
            scrip_issuer::executors(settings.policy, settings.registry.clone()).with(
                scrip_governance::Action::Markets,
                Arc::new(scrip_orderbook::MarketExecutor),
            ),
        ),
        metrics: web::Data::new(metrics),
        liabilities: web::Data::new(scrip_proofs::Liabilities::new(
            ledger.clone(),
            settings.registry.clone(),
        )),
        searches: web::Data::new(scrip_marketplace::listings::SearchGate::default()),
        onboarding: web::Data::new(scrip_marketplace::onboarding::Onboarding(
            settings.onboarding.clone(),
        )),
        ledger: web::Data::new(ledger),
        openapi: openapi(),
        services: settings.services,
        bus: web::Data::from(Arc::clone(&backplane.bus)),
        trusted_proxies: web::Data::new(scrip_http::TrustedProxies(
            settings.trusted_proxies.clone(),
        )),
    })
}

/// The OpenAPI document of the whole public API, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
    let mut doc = scrip_gateway::GatewayApi::openapi();
    doc.merge(scrip_issuer::IssuerApi::openapi());
    doc.merge(scrip_wallet::WalletApi::openapi());
    doc.merge(scrip_clearing::ClearingApi::openapi());
    doc.merge(scrip_orderbook::ExchangeApi::openapi());
    doc.merge(scrip_notify::NotifyApi::openapi());
    doc.merge(scrip_marketplace::MarketplaceApi::openapi());
    doc.info.title = "Scrip API".into();
    doc.info.version = "1".into();
    doc.info.description =
        Some("Exchange and clearing house for business-issued currencies".into());
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    doc
}

fn configure_app(cfg: &mut web::ServiceConfig, state: &State) {
    cfg.app_data(state.ledger.clone())
        .app_data(state.registry.clone())
        .app_data(state.verifier.clone())
        .app_data(state.wallet.clone())
        .app_data(state.policy.clone())
        .app_data(state.metrics.clone())
        .app_data(state.bus.clone())
        .app_data(state.streams.clone())
        .app_data(state.trusted_proxies.clone())
        .app_data(state.liabilities.clone());
    configure_extractors(cfg);
    scrip_gateway::configure_system(cfg, state.metrics_public);
    if let Some(gateway) = &state.gateway {
        cfg.app_data(gateway.clone());
        scrip_gateway::configure(cfg);
        cfg.service(scrip_notify::me_stream);
        scrip_gateway::configure_web(cfg);
        cfg.service(
            SwaggerUi::new("/api/docs/{_:.*}").url("/api/v1/openapi.json", state.openapi.clone()),
        );
    }
    if state.services.issuer {
        cfg.app_data(state.executors.clone());
        scrip_issuer::configure(cfg);
    }
    if state.services.wallet {
        scrip_wallet::configure(cfg);
    }
    if state.services.clearing {
        scrip_clearing::configure(cfg);
    }
    if let Some(exchange) = &state.exchange {
        cfg.app_data(exchange.clone())
            .app_data(state.conversions.clone())
            .app_data(state.onboarding.clone())
            .app_data(state.searches.clone());
        if state.services.orderbook {
            scrip_orderbook::configure(cfg);
            // Deals pay through the markets, so the marketplace is served beside them.
            scrip_marketplace::configure(cfg);
            scrip_marketplace::configure_payments(cfg);
        } else {
            scrip_orderbook::configure_market_data(cfg);
        }
    }
}

/// A started server: where it listens and how to stop it.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    /// The internal `/metrics` server, when it has an address of its own.
    pub metrics: Option<(SocketAddr, ServerHandle)>,
}

/// Builds the server on an already bound listener (port 0 in tests).
pub fn start(
    settings: &Settings,
    listener: TcpListener,
    backplane: &Backplane,
) -> Result<(Server, Running), Box<dyn std::error::Error>> {
    let state = build_state(settings, backplane)?;
    scrip_auth::revocation::spawn_listener(state.bus.get_ref(), state.verifier.get_ref().clone());
    spawn_audits(state.ledger.clone(), state.metrics.clone());
    if state.services.wallet {
        spawn_demurrage(state.ledger.clone());
    }
    if let Some(exchange) = &state.exchange {
        spawn_market_discovery(exchange.clone());
        if state.services.orderbook {
            scrip_orderbook::frozen::spawn_listener(
                state.bus.get_ref(),
                &exchange.clone().into_inner(),
            );
        }
    }
    if state.services.clearing && settings.clearing_interval_s > 0 {
        scrip_clearing::spawn_schedule(
            state.ledger.get_ref().clone(),
            state.metrics.get_ref().clone(),
            settings.clearing_unit.clone(),
            Duration::from_secs(settings.clearing_interval_s),
        );
    }
    let addr = listener.local_addr()?;
    let metrics_registry = state.metrics.clone();
    let server = HttpServer::new(move || {
        let state = state.clone();
        let metrics = state.metrics.clone();
        App::new()
            // One span and the request metrics per request. The route is read after routing
            // (a lookup then); before it, actix matches the path against every route's
            // pattern, which cost more CPU than the order handler itself.
            .wrap_fn(move |request, service| {
                let span = tracing::info_span!(
                    "http request",
                    http.method = %request.method(),
                    http.target = %request.path(),
                    http.status_code = tracing::field::Empty,
                );
                let started = Instant::now();
                let metrics = metrics.clone();
                let response = span.in_scope(|| service.call(request));
                let recorded = span.clone();
                async move {
                    let response = response.await?;
                    let request = response.request();
                    let route = request
                        .match_pattern()
                        .unwrap_or_else(|| "unmatched".into());
                    let (method, status) = (method_label(request.method()), response.status());
                    recorded.record("http.status_code", status.as_u16());
                    metrics
                        .http_requests
                        .with_label_values(&[method, &route, status.as_str()])
                        .inc();
                    metrics
                        .http_duration
                        .with_label_values(&[method, &route])
                        .observe(started.elapsed().as_secs_f64());
                    Ok(response)
                }
                .instrument(span)
            })
            .configure(|cfg| configure_app(cfg, &state))
            .default_service(web::to(scrip_gateway::not_found))
    })
    .listen(listener)?
    .shutdown_timeout(10)
    .run();
    let handle = server.handle();
    let metrics = match settings.metrics_listen {
        Some(address) => Some(serve_metrics(address, metrics_registry)?),
        None => None,
    };
    Ok((
        server,
        Running {
            addr,
            handle,
            metrics,
        },
    ))
}

/// `/metrics` on an internal address of its own, one worker: Prometheus is its only client.
fn serve_metrics(
    address: SocketAddr,
    metrics: web::Data<Metrics>,
) -> Result<(SocketAddr, ServerHandle), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(address)
        .map_err(|e| format!("cannot listen for metrics on {address}: {e}"))?;
    let bound = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .configure(scrip_gateway::configure_metrics)
    })
    .workers(1)
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((bound, handle))
}

/// The request's method as a metrics label: the standard methods by name, any other as
/// `other`. HTTP lets a client invent methods, and each new label value is a new series kept
/// for the life of the process.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// Every this many audits, one reads the whole journal again instead of only what is new.
const FULL_AUDIT_EVERY: u32 = 60;

/// Audits the ledger now and every [`AUDIT_INTERVAL`], exporting the result as metrics and to
/// the public monitor. The first audit and every [`FULL_AUDIT_EVERY`]th read the whole
/// journal; the others only what was written since ([`scrip_ledger::audit_since`]), so an
/// audit does not cost more as the journal grows.
fn spawn_audits(ledger: web::Data<Ledger>, metrics: web::Data<Metrics>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(AUDIT_INTERVAL);
        let mut checkpoint = scrip_ledger::Checkpoint::default();
        let mut runs: u32 = 0;
        let mut last_full_at_us = 0;
        loop {
            ticks.tick().await;
            let full = runs.is_multiple_of(FULL_AUDIT_EVERY);
            runs = runs.wrapping_add(1);
            if full {
                checkpoint = scrip_ledger::Checkpoint::default();
            }
            let ledger = ledger.clone();
            let mut carried = std::mem::take(&mut checkpoint);
            let started = std::time::Instant::now();
            let outcome = tokio::task::spawn_blocking(move || {
                let now = scrip_http::now_us();
                let report = ledger.read(|conn| scrip_ledger::audit_since(conn, &mut carried, now));
                (report, carried)
            })
            .await;
            match outcome {
                Ok((Ok(report), carried)) => {
                    checkpoint = carried;
                    let now = scrip_http::now_us();
                    if full {
                        last_full_at_us = now;
                    }
                    record_audit(
                        &metrics,
                        &report,
                        (full, now, last_full_at_us),
                        started.elapsed(),
                    );
                }
                Ok((Err(error), _)) => tracing::warn!(%error, "ledger audit could not run"),
                Err(error) => tracing::warn!(%error, "ledger audit task failed"),
            }
        }
    });
}

/// Exports an audit's result as metrics and to the public monitor.
fn record_audit(
    metrics: &Metrics,
    report: &scrip_ledger::AuditReport,
    (full, ran_at_us, last_full_at_us): (bool, i64, i64),
    took: Duration,
) {
    metrics.audit_ok.set(i64::from(report.is_clean()));
    let mut checks = Vec::new();
    for check in scrip_ledger::Violation::CHECKS {
        // What the violations are goes to the log below; the public monitor shows counts.
        let found = report
            .violations
            .iter()
            .filter(|v| v.check() == check)
            .count();
        metrics
            .audit_check_violations
            .with_label_values(&[check])
            .set(i64::try_from(found).unwrap_or(i64::MAX));
        checks.push(scrip_telemetry::CheckStatus {
            name: check,
            about: scrip_ledger::Violation::describe(check),
            violations: found,
        });
    }
    metrics
        .audit_violations
        .set(i64::try_from(report.violations.len()).unwrap_or(i64::MAX));
    metrics.record_audit(scrip_telemetry::AuditStatus {
        ran_at_us,
        kind: if full { "full" } else { "incremental" },
        last_full_at_us,
        duration_us: i64::try_from(took.as_micros()).unwrap_or(i64::MAX),
        accounts: report.accounts,
        journal_lines: report.transfers,
        checks,
    });
    if !report.is_clean() {
        tracing::error!(violations = ?report.violations, "LEDGER AUDIT FAILED");
    }
}

/// How often the server looks for demurrage periods that have ended (one cheap query when
/// none has).
const DEMURRAGE_INTERVAL: Duration = Duration::from_secs(60);

/// Charges demurrage as periods end ([`scrip_ledger::demurrage::run_due`]): safe in every
/// process at once, each account pays each period at most once.
fn spawn_demurrage(ledger: web::Data<Ledger>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(DEMURRAGE_INTERVAL);
        loop {
            ticks.tick().await;
            let ledger = ledger.clone();
            let run = tokio::task::spawn_blocking(move || {
                scrip_ledger::demurrage::run_due(&ledger, scrip_http::now_us())
            });
            match run.await {
                Ok(Ok(report)) if report.periods > 0 => tracing::info!(
                    periods = report.periods,
                    accounts = report.accounts_charged,
                    "demurrage charged"
                ),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "demurrage could not run"),
                Err(error) => tracing::warn!(%error, "demurrage task failed"),
            }
        }
    });
}

/// Serves markets opened by other processes soon after they are opened. Holds the exchange
/// weakly, so a stopped server's markets (and their locks) are released, not kept alive here.
fn spawn_market_discovery(exchange: web::Data<Exchange>) {
    let exchange = Arc::downgrade(&exchange.into_inner());
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(MARKET_DISCOVERY_INTERVAL);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(exchange) = exchange.upgrade() else {
                return;
            };
            match tokio::task::spawn_blocking(move || exchange.discover()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(new)) => tracing::info!(new, "serving markets opened elsewhere"),
                Ok(Err(error)) => tracing::warn!(%error, "cannot look for new markets"),
                Err(error) => tracing::warn!(%error, "market discovery task failed"),
            }
        }
    });
}

/// `scrip serve`: runs until SIGINT/SIGTERM, then drains in-flight requests.
pub fn run_blocking(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(settings.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
        let backplane =
            Backplane::connect(settings.redis_url.as_deref(), &settings.redis_prefix).await?;
        let (server, running) = start(&settings, listener, &backplane)?;
        println!(
            "Scrip is serving on http://{}  (API docs: http://{}/api/docs/)",
            running.addr, running.addr
        );
        server.await?;
        println!("Scrip stopped");
        Ok(())
    })
}
