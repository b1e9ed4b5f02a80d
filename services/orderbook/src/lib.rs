//! The exchange: markets, order entry with holds and settlement, market data.
//!
//! - [`spec`]: a market's rules and exact conversions (pure);
//! - [`state`]: one market's book and the functional core of order entry (pure);
//! - [`worker`]: the single writer per market that batches commands into transactions;
//! - [`feed`]: committed market data with a gapless sequence, for REST and the WebSocket;
//! - [`store`]: the tables; [`handlers`]: HTTP.

mod candles;
pub mod convert;
mod dto;
mod entry;
mod error;
mod feed;
pub mod frozen;
mod handlers;
pub use handlers::MarketExecutor;
mod metrics;
mod notices;
mod ownership;
mod replica;
pub mod spec;
pub mod state;
mod store;
mod stream;
mod view;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

pub use dto::{MarketView, NewMarket, NewOrder, OrderView};
pub use error::ExchangeError;
pub use feed::{BookView, Level, StreamMessage};
pub use metrics::ExchangeMetrics;
pub use stream::{StreamGate, StreamLimits};
pub use worker::{MAX_BATCH, MarketHandle, WorkerContext};

use actix_web::web;
use scrip_ledger::LedgerError;
use spec::{MarketId, MarketSpec};
use utoipa::OpenApi;

/// Most markets trading the currencies of one issuer, unless an operator opens them: every
/// market is a writer thread and a stream, and anyone may issue a currency.
pub const MAX_MARKETS_PER_ISSUER: i64 = 16;

/// Who a new market counts against.
#[derive(Clone, Debug)]
pub enum MarketOpener {
    /// An operator: no limit.
    Operator,
    /// An owner of this issuer (of the base or the quote currency): at most
    /// [`MAX_MARKETS_PER_ISSUER`] markets trade its currencies.
    OwnerOf {
        issuer: scrip_domain::PrincipalId,
        handle: String,
    },
}

/// Every market this process serves, each with its writer thread.
#[derive(Debug)]
pub struct Exchange {
    context: WorkerContext,
    markets: RwLock<Markets>,
    /// Held while a market is being started.
    starting: Mutex<()>,
    /// The one session on which this process's writers hold their markets' locks.
    locks: Arc<ownership::MarketLocks>,
    /// Whether this process may write markets (order-book service) or only follows them
    /// (a gateway serving market data).
    writes: bool,
    /// Payments converting through the books (and quotes) running at once: each borrows its
    /// markets from their writers, so those that share a market run one after another
    /// anyway; beyond this many the next is refused (503) instead of queueing.
    conversions: Arc<tokio::sync::Semaphore>,
}

/// Most payments converting through the books (and quotes) at once in one process.
pub const MAX_CONVERSIONS_IN_FLIGHT: usize = 8;

#[derive(Debug, Default)]
struct Markets {
    by_symbol: HashMap<String, Arc<MarketHandle>>,
    by_id: HashMap<MarketId, Arc<MarketHandle>>,
}

impl Exchange {
    /// Starts a writer for every market in the database; each rebuilds its book from its
    /// open orders before it takes commands.
    /// Every market, each with a writer that owns it when no other process does.
    pub fn start(context: WorkerContext) -> Result<Self, ExchangeError> {
        Self::with_markets(context, true)
    }

    /// Every market as a replica that follows its owner over the bus: market data only.
    pub fn follow(context: WorkerContext) -> Result<Self, ExchangeError> {
        Self::with_markets(context, false)
    }

    fn with_markets(context: WorkerContext, writes: bool) -> Result<Self, ExchangeError> {
        let exchange = Self {
            locks: Arc::new(ownership::MarketLocks::new(context.database_url.clone())),
            context,
            markets: RwLock::new(Markets::default()),
            starting: Mutex::new(()),
            writes,
            conversions: Arc::new(tokio::sync::Semaphore::new(MAX_CONVERSIONS_IN_FLIGHT)),
        };
        exchange.discover()?;
        Ok(exchange)
    }

    /// Serves the markets opened since the last look (by this process or another); returns
    /// how many are new. Blocking: call it from a blocking thread.
    pub fn discover(&self) -> Result<usize, ExchangeError> {
        let specs = {
            let mut conn = self.context.pool.get().map_err(LedgerError::from)?;
            store::all_markets(&mut conn)?
        };
        let mut new = 0;
        for spec in specs {
            if self.market_by_id(spec.id).is_none() {
                self.serve(spec)?;
                new += 1;
            }
        }
        Ok(new)
    }

    fn serve(&self, spec: MarketSpec) -> Result<Arc<MarketHandle>, ExchangeError> {
        // One market starts at a time (so opening and discovery never start it twice), while
        // readers of `markets` (every order) are not held up by the start's database read.
        let _starting = self.starting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = self.market_by_id(spec.id) {
            return Ok(existing);
        }
        let handle = Arc::new(if self.writes {
            worker::spawn(self.context.clone(), Arc::clone(&self.locks), spec.clone())?
        } else {
            worker::replica(&self.context, spec.clone())?
        });
        let mut markets = self.markets.write().unwrap_or_else(|p| p.into_inner());
        markets.by_symbol.insert(spec.symbol(), Arc::clone(&handle));
        markets.by_id.insert(spec.id, Arc::clone(&handle));
        Ok(handle)
    }

    /// Records a new market and starts serving it. `tick_size_atoms` is in quote atoms per
    /// whole base unit, `lot_size_atoms` in base atoms; [`MarketSpec::new`] checks them.
    pub fn open_market(
        &self,
        conn: &mut scrip_store::DbConn,
        pair: (&scrip_ledger::Currency, &scrip_ledger::Currency),
        steps_atoms: (i64, i64),
        fee_bps: u32,
        by: (scrip_domain::PrincipalId, MarketOpener),
    ) -> Result<Arc<MarketHandle>, ExchangeError> {
        let spec = scrip_store::write_transaction(conn, |conn| {
            record_market(conn, pair, steps_atoms, fee_bps, by)
        })?;
        self.serve(spec)
    }

    /// [`Self::market`], and for a symbol not served here yet, a look in the database: a
    /// market another process opened a moment ago is served at once instead of answering
    /// 404 until the next discovery. Blocking on a miss: call it from a blocking thread.
    pub fn market_or_discover(&self, symbol: &str) -> Result<Arc<MarketHandle>, ExchangeError> {
        if let Ok(market) = self.market(symbol) {
            return Ok(market);
        }
        let spec = {
            let mut conn = self.context.pool.get().map_err(LedgerError::from)?;
            store::market_by_symbol(&mut conn, symbol)?
        };
        match spec {
            Some(spec) => self.serve(spec),
            None => Err(ExchangeError::UnknownMarket(symbol.to_owned())),
        }
    }

    pub fn market(&self, symbol: &str) -> Result<Arc<MarketHandle>, ExchangeError> {
        let markets = self.markets.read().unwrap_or_else(|p| p.into_inner());
        markets
            .by_symbol
            .get(symbol)
            .cloned()
            .ok_or_else(|| ExchangeError::UnknownMarket(symbol.to_owned()))
    }

    pub fn market_by_id(&self, id: MarketId) -> Option<Arc<MarketHandle>> {
        let markets = self.markets.read().unwrap_or_else(|p| p.into_inner());
        markets.by_id.get(&id).cloned()
    }

    /// A slot for one conversion, or 503 at once when [`MAX_CONVERSIONS_IN_FLIGHT`] run.
    pub(crate) fn conversion_slot(
        &self,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, scrip_http::ApiError> {
        Arc::clone(&self.conversions)
            .try_acquire_owned()
            .map_err(|_| scrip_http::ApiError::Overloaded {
                detail: "too many payments are converting through the books right now; try again in a moment".into(),
                retry_after_s: 1,
            })
    }

    /// Tells a payment's recipient (its till, its wallet) that it was paid.
    pub(crate) fn announce_payment(
        &self,
        recipient: scrip_domain::PrincipalId,
        view: &convert::http::PaymentView,
    ) {
        if let Some(notifier) = &self.context.notifier {
            notifier.publish(
                recipient,
                &view.to,
                &scrip_notify::Event::PaymentReceived {
                    transfer_id: view.id.clone(),
                    from: view.from.clone(),
                    currency: view.currency.clone(),
                    amount: view.amount.clone(),
                    memo: view.memo.clone(),
                },
            );
        }
    }

    /// Every market, oldest first.
    /// The database pool the markets write through.
    pub fn pool(&self) -> scrip_store::DbPool {
        self.context.pool.clone()
    }

    pub fn markets(&self) -> Vec<Arc<MarketHandle>> {
        let markets = self.markets.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = markets.by_id.values().cloned().collect();
        all.sort_by_key(|m| m.spec.id);
        all
    }
}

/// Mounts the exchange's routes.
/// Market data only (markets, book, trades, candles, the stream): what a gateway serves from
/// an exchange that follows the owners ([`Exchange::follow`]).
pub fn configure_market_data(cfg: &mut web::ServiceConfig) {
    cfg.service(handlers::list_markets)
        .service(handlers::book)
        .service(handlers::trades)
        .service(handlers::candles)
        .service(stream::stream);
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(handlers::list_markets)
        .service(handlers::create_market)
        .service(handlers::book)
        .service(handlers::trades)
        .service(handlers::candles)
        .service(stream::stream)
        .service(handlers::place_order)
        .service(handlers::list_orders)
        .service(handlers::get_order)
        .service(handlers::change_order)
        .service(handlers::cancel_order)
        .service(convert::http::create_quote)
        .service(convert::http::create_payment)
        .service(convert::http::get_payment);
}

#[derive(OpenApi, Debug)]
#[openapi(
    paths(
        handlers::list_markets, handlers::create_market, handlers::book, handlers::trades,
        handlers::candles, stream::stream, handlers::place_order, handlers::list_orders,
        handlers::get_order, handlers::change_order, handlers::cancel_order,
        convert::http::create_quote, convert::http::create_payment, convert::http::get_payment
    ),
    components(schemas(
        dto::MarketView, dto::MarketList, dto::NewMarket, dto::NewOrder, dto::OrderChange,
        dto::OrderView, dto::OrderPage, dto::FillView, dto::TradeView, dto::TradeList,
        dto::Candle, dto::CandleList, feed::BookView, feed::Level,
        convert::http::NewQuote, convert::http::QuoteView, convert::http::LegView,
        convert::http::NewPayment, convert::http::PaymentView, convert::http::PaymentTradeView
    )),
    tags(
        (name = "exchange", description = "Markets, orders, trades and market data"),
        (name = "payments", description = "Paying with what you hold: converted through the books, atomically")
    )
)]
pub struct ExchangeApi;

/// Checks and records a new market (`steps_atoms`: tick size in quote atoms per whole base
/// unit, lot size in base atoms), in the caller's transaction; the exchange serves it once it
/// is committed (at once when [`Exchange::open_market`] opened it, else at its next
/// discovery).
pub fn record_market(
    conn: &mut scrip_store::DbConn,
    (base, quote): (&scrip_ledger::Currency, &scrip_ledger::Currency),
    (tick_size_atoms, lot_size_atoms): (i64, i64),
    fee_bps: u32,
    (created_by, opener): (scrip_domain::PrincipalId, MarketOpener),
) -> Result<MarketSpec, ExchangeError> {
    if base.id == quote.id {
        return Err(ExchangeError::BadMarket(
            "base and quote must be different currencies".into(),
        ));
    }
    let spec = MarketSpec::new(
        0,
        (base.id, base.code.clone(), base.scale),
        (quote.id, quote.code.clone(), quote.scale),
        tick_size_atoms,
        lot_size_atoms,
        fee_bps,
    )?;
    if let MarketOpener::OwnerOf { issuer, handle } = &opener {
        // Under the issuer's row lock, so concurrent opens cannot pass the count together.
        scrip_store::lock_row(conn, "principals", issuer.get())?;
        if store::markets_of_issuer(conn, *issuer)? >= MAX_MARKETS_PER_ISSUER {
            return Err(ExchangeError::MarketLimit {
                issuer: handle.clone(),
                max: MAX_MARKETS_PER_ISSUER,
            });
        }
    }
    store::create_market(conn, &spec, created_by, scrip_http::now_us())
}
