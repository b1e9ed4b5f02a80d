use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use scrip_auth::Caller;
use scrip_auth::access::{is_operator, is_owner};
use scrip_auth::guard::{act_as, view_as};
use scrip_domain::{Amount, PrincipalId, RegistryId};
use scrip_governance::store::ProposalRow;
use scrip_governance::{Action, Execute, Gate};
use scrip_http::{
    ApiError, Page, PageQuery, Problem, REPLAYED_HEADER, blocking, idempotency_key,
    idempotent_response, request_hash, rfc3339_from_us,
};
use scrip_ledger::{Ledger, Principal};
use scrip_matching::{OrderId, Side};
use scrip_store::DbConn;

use crate::MarketOpener;
use crate::candles::{BucketSource, Interval, MAX_CANDLES};
use crate::dto::{
    Candle, CandleList, CandlesQuery, DepthQuery, MarketList, MarketView, NewMarket, NewOrder,
    OrderChange, OrderPage, OrderView, OrdersQuery, TradeList, TradeView,
};
use crate::feed::BookView;
use crate::spec::MarketSpec;
use crate::state::{
    Command, IdempotentRequest, OrderStatus, OrderType, PlaceOrder, Reply, parse_side, parse_tif,
};
use crate::store::{self, StoredOrder};
use crate::view::order_view;
use crate::{Exchange, ExchangeError, MarketHandle};

const DEFAULT_DEPTH: u32 = 20;
pub(crate) const MAX_DEPTH: u32 = 500;
const DEFAULT_CANDLES: u32 = 100;
const MAX_CLIENT_ORDER_ID_LEN: usize = 64;

fn market_view(market: &MarketHandle) -> MarketView {
    let spec = &market.spec;
    MarketView {
        symbol: market.feed.symbol().to_owned(),
        base: spec.base_code.to_string(),
        quote: spec.quote_code.to_string(),
        tick_size: spec.price(1).to_string(),
        lot_size: spec.quantity(1).to_string(),
        fee_bps: spec.fee_bps,
        last_price: market
            .feed
            .last_price_ticks()
            .map(|p| spec.price(p).to_string()),
    }
}

/// Stored orders with their fills, as the API shows them.
fn order_views(
    conn: &mut DbConn,
    exchange: &Exchange,
    orders: &[StoredOrder],
) -> Result<Vec<OrderView>, ApiError> {
    let sides: Vec<(OrderId, Side)> = orders
        .iter()
        .map(|o| (o.record.id, o.record.side))
        .collect();
    let mut fills = store::fills_of(conn, &sides)?;
    orders
        .iter()
        .map(|o| {
            let market = exchange
                .market_by_id(o.market)
                .ok_or_else(|| ApiError::Internal(format!("market {} not served", o.market)))?;
            let fills = fills.remove(&o.record.id).unwrap_or_default();
            Ok(order_view(
                &market.spec,
                market.feed.symbol(),
                &o.record,
                &fills,
            ))
        })
        .collect()
}

#[utoipa::path(
    get, path = "/api/v1/markets", tag = "exchange", params(PageQuery),
    responses((status = 200, body = MarketList))
)]
#[get("/api/v1/markets")]
pub async fn list_markets(
    query: web::Query<PageQuery>,
    exchange: web::Data<Exchange>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let after = query.after_id()?;
    // Oldest first: a market's place in the list never changes as markets are added.
    let markets: Vec<_> = exchange
        .markets()
        .into_iter()
        .filter(|m| after.is_none_or(|after| m.spec.id > after))
        .take(usize::try_from(limit).unwrap_or(usize::MAX) + 1)
        .collect();
    let page = Page::from_overfetch(markets, limit, |m| m.spec.id);
    Ok(HttpResponse::Ok().json(MarketList {
        items: page.items.iter().map(|m| market_view(m)).collect(),
        next_cursor: page.next_cursor,
    }))
}

fn step(raw: &str, scale: scrip_domain::Scale, what: &str) -> Result<i64, ApiError> {
    Amount::parse_positive(raw, scale)
        .map(|a| a.atoms())
        .map_err(|e| ApiError::unprocessable("bad_market", format!("{what}: {e}")))
}

#[utoipa::path(
    post, path = "/api/v1/markets", tag = "exchange", request_body = NewMarket,
    security(("bearer" = [])),
    responses(
        (status = 201, body = MarketView),
        (status = 202, body = scrip_governance::Proposed, description = "the issuer's approval rule guards markets: a proposal"),
        (status = 403, body = Problem, description = "not_owner: neither an operator nor an owner of either issuer"),
        (status = 404, body = Problem, description = "unknown_currency"),
        (status = 409, body = Problem, description = "market_exists; market_limit: the issuer already trades in the most markets a business may open"),
        (status = 422, body = Problem, description = "bad_market"),
    )
)]
#[post("/api/v1/markets")]
pub async fn create_market(
    caller: Caller,
    body: scrip_http::Json<NewMarket>,
    ledger: web::Data<Ledger>,
    exchange: web::Data<Exchange>,
) -> Result<HttpResponse, ApiError> {
    let exchange_for_work = exchange.clone();
    let market = blocking(move || {
        let mut conn = ledger.conn()?;
        let currency = |conn: &mut DbConn, raw: &str| {
            scrip_auth::guard::currency(conn, raw, "unknown_currency")
        };
        let base = currency(&mut conn, &body.base)?;
        let quote = currency(&mut conn, &body.quote)?;
        // The issuer the caller opens it for: one whose approval rule guards markets first,
        // so owning a second, one-owner business never lets a market past the first's rule.
        let mut owned_issuer = None;
        for issuer in [base.issuer_id, quote.issuer_id] {
            if !is_owner(&mut conn, issuer, caller.id)? {
                continue;
            }
            let guarded = scrip_governance::gate(&mut conn, issuer, Action::Markets)? != Gate::Proceed;
            if owned_issuer.is_none() || guarded {
                owned_issuer = Some(issuer);
            }
            if guarded {
                break;
            }
        }
        let opener = if is_operator(&mut conn, caller.id)? {
            MarketOpener::Operator
        } else if let Some(issuer) = owned_issuer {
            let handle = scrip_ledger::principal_by_id(&mut conn, issuer)?.handle;
            MarketOpener::OwnerOf {
                issuer,
                handle: handle.to_string(),
            }
        } else {
            return Err(ApiError::forbidden(
                "not_owner",
                "only an operator or an owner of the issuer of the base or quote currency may open a market",
            ));
        };
        let steps = (
            step(&body.tick_size, quote.scale, "tick_size")?,
            step(&body.lot_size, base.scale, "lot_size")?,
        );
        if let MarketOpener::OwnerOf { issuer, .. } = &opener
            && let Some(proposed) = propose_market(&mut conn, *issuer, &body, caller.id)?
        {
            return Ok(Err(proposed));
        }
        let market = exchange_for_work.open_market(
            &mut conn,
            (&base, &quote),
            steps,
            body.fee_bps,
            (caller.id, opener),
        )?;
        Ok(Ok(market))
    })
    .await?;
    match market {
        Ok(market) => Ok(HttpResponse::Created().json(market_view(&market))),
        Err(proposed) => Ok(HttpResponse::Accepted().json(proposed)),
    }
}

/// A proposal for the market when the issuer's approval rule guards markets; under its lock.
fn propose_market(
    conn: &mut DbConn,
    issuer: PrincipalId,
    body: &NewMarket,
    caller: PrincipalId,
) -> Result<Option<scrip_governance::Proposed>, ApiError> {
    let gate = |conn: &mut DbConn| scrip_governance::gate(conn, issuer, Action::Markets);
    scrip_governance::propose_if_guarded(conn, issuer, gate, |conn, required| {
        let business = scrip_ledger::principal_by_id(conn, issuer)?;
        let proposal = scrip_governance::Proposal {
            business: &business,
            action: Action::Markets,
            payload: serde_json::to_value(body).unwrap_or_default(),
            summary: format!("open the market {}-{}", body.base, body.quote),
            proposed_by: caller,
        };
        let proposal = scrip_governance::propose(conn, &proposal, required)?;
        Ok(scrip_governance::Proposed { proposal })
    })
}

/// Opens a market an issuer's owners approved: checked again as an owner's open would be;
/// the exchange serves it at its next discovery.
#[derive(Debug)]
pub struct MarketExecutor;

impl Execute for MarketExecutor {
    fn execute(
        &self,
        conn: &mut DbConn,
        business: &Principal,
        row: &ProposalRow,
    ) -> Result<serde_json::Value, ApiError> {
        let body: NewMarket = serde_json::from_str(&row.payload)
            .map_err(|e| ApiError::Internal(format!("proposal {}: {e}", row.id)))?;
        let base = scrip_auth::guard::currency(conn, &body.base, "unknown_currency")?;
        let quote = scrip_auth::guard::currency(conn, &body.quote, "unknown_currency")?;
        let steps = (
            step(&body.tick_size, quote.scale, "tick_size")?,
            step(&body.lot_size, base.scale, "lot_size")?,
        );
        let opener = MarketOpener::OwnerOf {
            issuer: business.id,
            handle: business.handle.to_string(),
        };
        let by = (PrincipalId::new(row.proposed_by), opener);
        let spec = crate::record_market(conn, (&base, &quote), steps, body.fee_bps, by)?;
        Ok(serde_json::json!({"symbol": spec.symbol(), "id": spec.id.to_string()}))
    }
}

/// The market of `symbol`; one this process does not serve yet (another process opened it a
/// moment ago) is looked up in the database rather than answered 404.
pub(crate) async fn market_named(
    exchange: &web::Data<Exchange>,
    symbol: &str,
) -> Result<std::sync::Arc<crate::MarketHandle>, ApiError> {
    if let Ok(market) = exchange.market(symbol) {
        return Ok(market);
    }
    let (exchange, symbol) = (exchange.clone(), symbol.to_owned());
    blocking(move || Ok(exchange.market_or_discover(&symbol)?)).await
}

pub(crate) fn depth_of(depth: u32) -> Result<usize, ApiError> {
    match depth {
        d @ 1..=MAX_DEPTH => Ok(d as usize),
        _ => Err(ApiError::unprocessable(
            "bad_depth",
            format!("depth must be between 1 and {MAX_DEPTH}"),
        )),
    }
}

#[utoipa::path(
    get, path = "/api/v1/markets/{symbol}/book", tag = "exchange", params(DepthQuery),
    responses((status = 200, body = BookView), (status = 404, body = Problem, description = "unknown_market"))
)]
#[get("/api/v1/markets/{symbol}/book")]
pub async fn book(
    symbol: web::Path<String>,
    query: web::Query<DepthQuery>,
    exchange: web::Data<Exchange>,
) -> Result<HttpResponse, ApiError> {
    let market = market_named(&exchange, &symbol).await?;
    let depth = depth_of(query.depth.unwrap_or(DEFAULT_DEPTH))?;
    market.feed.caught_up(crate::stream::REPLICA_CATCH_UP).await;
    Ok(HttpResponse::Ok().json(market.feed.snapshot(depth)))
}

fn limit_of(limit: Option<u32>, default: u32) -> Result<i64, ApiError> {
    PageQuery {
        limit: Some(limit.unwrap_or(default)),
        cursor: None,
    }
    .limit()
}

#[utoipa::path(
    get, path = "/api/v1/markets/{symbol}/trades", tag = "exchange", params(PageQuery),
    responses((status = 200, body = TradeList), (status = 404, body = Problem, description = "unknown_market"))
)]
#[get("/api/v1/markets/{symbol}/trades")]
pub async fn trades(
    symbol: web::Path<String>,
    query: web::Query<PageQuery>,
    exchange: web::Data<Exchange>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let market = market_named(&exchange, &symbol).await?;
    let limit = query.limit()?;
    let before = query.before_id()?;
    let list = blocking(move || {
        let mut conn = ledger.conn()?;
        let spec = &market.spec;
        let page = Page::from_overfetch(
            store::recent_trades(&mut conn, spec.id, before, limit + 1)?,
            limit,
            |t| t.id,
        );
        let items = page
            .items
            .into_iter()
            .map(|t| TradeView {
                id: t.id.to_string(),
                price: spec.price(t.price_ticks).to_string(),
                quantity: spec.quantity(t.quantity_lots).to_string(),
                taker_side: t.taker_side,
                created_at: rfc3339_from_us(t.created_at_us),
            })
            .collect();
        Ok(TradeList {
            items,
            next_cursor: page.next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// A market's trades as the candle cache reads them.
struct Trades<'a> {
    conn: &'a mut DbConn,
    market: crate::spec::MarketId,
}

impl BucketSource for Trades<'_> {
    type Error = ExchangeError;
    fn buckets(
        &mut self,
        interval: Interval,
        from_us: i64,
        to_us: Option<i64>,
    ) -> Result<Vec<crate::candles::Bucket>, ExchangeError> {
        store::candle_buckets(
            self.conn,
            self.market,
            interval.length_us(),
            (from_us, to_us),
        )
    }
}

#[utoipa::path(
    get, path = "/api/v1/markets/{symbol}/candles", tag = "exchange", params(CandlesQuery),
    responses(
        (status = 200, body = CandleList),
        (status = 404, body = Problem, description = "unknown_market"),
        (status = 422, body = Problem, description = "bad_interval"),
    )
)]
#[get("/api/v1/markets/{symbol}/candles")]
pub async fn candles(
    symbol: web::Path<String>,
    query: web::Query<CandlesQuery>,
    exchange: web::Data<Exchange>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let market = market_named(&exchange, &symbol).await?;
    let interval = Interval::parse(query.interval.as_deref().unwrap_or("1m")).ok_or_else(|| {
        ApiError::unprocessable("bad_interval", "interval is one of 1m, 5m, 1h, 1d")
    })?;
    let limit = limit_of(query.limit, DEFAULT_CANDLES)?.min(MAX_CANDLES);
    let list = blocking(move || {
        let mut conn = ledger.conn()?;
        let spec = &market.spec;
        let mut source = Trades {
            conn: &mut conn,
            market: spec.id,
        };
        let items = market
            .candles
            .candles(
                &mut source,
                (interval, limit),
                scrip_http::now_us(),
                market.feed.sequence(),
            )?
            .into_iter()
            .map(|b| Candle {
                start: rfc3339_from_us(b.start_us),
                open: spec.price(b.open).to_string(),
                high: spec.price(b.high).to_string(),
                low: spec.price(b.low).to_string(),
                close: spec.price(b.close).to_string(),
                volume: spec
                    .quantity(i64::try_from(b.volume).unwrap_or(i64::MAX))
                    .to_string(),
                trades: b.trades,
            })
            .collect();
        Ok(CandleList {
            symbol: market.feed.symbol().to_owned(),
            interval: interval.as_str().to_owned(),
            items,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// A new order of `owner` checked against its market: everything but the funds. Pure.
fn parse_order(
    owner: PrincipalId,
    body: &NewOrder,
    market: &MarketHandle,
) -> Result<PlaceOrder, ApiError> {
    let spec = &market.spec;
    let invalid = |detail: &str| ApiError::unprocessable("invalid_request", detail.to_owned());
    let side = parse_side(&body.side).ok_or_else(|| invalid("side is buy or sell"))?;
    let order_type =
        OrderType::parse(&body.order_type).ok_or_else(|| invalid("type is limit or market"))?;
    let time_in_force = match body.time_in_force.as_deref() {
        None => scrip_matching::TimeInForce::Gtc,
        Some(raw) => parse_tif(raw).ok_or_else(|| invalid("time_in_force is gtc, ioc or fok"))?,
    };
    let post_only = body.post_only.unwrap_or(false);
    let price_ticks = match (order_type, body.price.as_deref()) {
        (OrderType::Limit, Some(raw)) => Some(spec.price_ticks(raw)?),
        (OrderType::Limit, None) => {
            return Err(ExchangeError::BadPrice("a limit order needs a price".into()).into());
        }
        (OrderType::Market, Some(_)) => {
            return Err(ExchangeError::BadPrice("a market order takes no price".into()).into());
        }
        (OrderType::Market, None) => None,
    };
    if order_type == OrderType::Market && post_only {
        return Err(invalid("a market order cannot be post-only"));
    }
    let quantity_lots = spec.quantity_lots(&body.quantity)?;
    let client_order_id = match body.client_order_id.as_deref() {
        Some(id)
            if id.is_empty()
                || id.len() > MAX_CLIENT_ORDER_ID_LEN
                || !id.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            return Err(invalid(
                "client_order_id is 1 to 64 visible ASCII characters",
            ));
        }
        other => other.map(str::to_owned),
    };
    Ok(PlaceOrder {
        owner,
        side,
        order_type,
        price_ticks,
        quantity_lots,
        time_in_force: if order_type == OrderType::Market {
            match time_in_force {
                scrip_matching::TimeInForce::Fok => scrip_matching::TimeInForce::Fok,
                _ => scrip_matching::TimeInForce::Ioc,
            }
        } else {
            time_in_force
        },
        post_only,
        client_order_id,
        idempotency: None,
    })
}

#[utoipa::path(
    post, path = "/api/v1/orders", tag = "exchange", request_body = NewOrder,
    security(("bearer" = [])),
    responses(
        (status = 201, body = OrderView),
        (status = 403, body = Problem, description = "not_owner: trading for someone else"),
        (status = 404, body = Problem, description = "unknown_market"),
        (status = 403, body = Problem, description = "not_owner; needs_approval (a business paying with its own currency while its approval rule guards issuing)"),
        (status = 422, body = Problem, description = "bad_price, bad_quantity, insufficient_funds, would_cross"),
    )
)]
#[post("/api/v1/orders")]
pub async fn place_order(
    request: HttpRequest,
    caller: Caller,
    body: scrip_http::Json<NewOrder>,
    ledger: web::Data<Ledger>,
    exchange: web::Data<Exchange>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let market = market_named(&exchange, &body.market).await?;
    let key = idempotency_key(&request)?;
    let idempotency = match key {
        None => None,
        Some(key) => {
            let hash = request_hash("POST /api/v1/orders", &*body);
            let (reader, scope, lookup_key, lookup_hash) =
                (ledger.clone(), caller.id, key.clone(), hash.clone());
            let stored =
                blocking(move || Ok(reader.idempotent_lookup(scope, &lookup_key, &lookup_hash)?))
                    .await?;
            if let Some(stored) = stored {
                return Ok(idempotent_response(&stored, true));
            }
            Some(IdempotentRequest {
                scope: caller.id,
                key,
                request_hash: hash,
            })
        }
    };
    // Trading for oneself needs no lookup (the token names the caller); for a business, the
    // ownership check reads the database.
    let owner = match body.holder.clone() {
        None => caller.id,
        Some(holder) => {
            // What the order pays with: the base when it sells, the quote when it buys.
            let pays = match body.side.as_str() {
                "sell" => market.spec.base,
                _ => market.spec.quote,
            };
            blocking(move || {
                let mut conn = ledger.conn()?;
                let business = act_as(&mut conn, &caller, Some(&holder), &registry)?;
                let currency = scrip_ledger::currency_by_id(&mut conn, pays)?;
                // Selling the business's own currency issues it: its rule may forbid that alone.
                if scrip_governance::issuing_needs_approval(&mut conn, &business, &currency)? {
                    return Err(scrip_governance::needs_approval(
                        &business,
                        currency.code.as_str(),
                    ));
                }
                Ok(business.id)
            })
            .await?
        }
    };
    let mut order = parse_order(owner, &body, &market)?;
    order.idempotency = idempotency;
    match market.submit(Command::Place(order)).await? {
        Reply::Placed { order, fills } => Ok(HttpResponse::Created()
            .insert_header((REPLAYED_HEADER, "false"))
            .json(order_view(
                &market.spec,
                market.feed.symbol(),
                &order,
                &fills,
            ))),
        Reply::Replayed(stored) => Ok(idempotent_response(&stored, true)),
        Reply::Changed { .. } => Err(ApiError::Internal("a new order changed another".into())),
    }
}

/// Whether the caller may see and manage orders of `owner`: its own, or a business it owns.
fn may_manage(conn: &mut DbConn, caller: &Caller, owner: PrincipalId) -> Result<bool, ApiError> {
    Ok(owner == caller.id || is_owner(conn, owner, caller.id)?)
}

/// The order with this id if the caller may manage it; 404 otherwise.
fn managed_order(
    conn: &mut DbConn,
    caller: &Caller,
    raw_id: &str,
) -> Result<StoredOrder, ApiError> {
    let unknown = || ApiError::not_found("not_found", format!("no order {raw_id:?}"));
    let id: i64 = raw_id
        .parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(unknown)?;
    let order = store::order_by_id(conn, id)?.ok_or_else(unknown)?;
    if may_manage(conn, caller, order.record.owner)? {
        Ok(order)
    } else {
        Err(unknown())
    }
}

#[utoipa::path(
    get, path = "/api/v1/orders", tag = "exchange", params(OrdersQuery),
    security(("bearer" = [])),
    responses((status = 200, body = OrderPage), (status = 404, body = Problem, description = "unknown_market"))
)]
#[get("/api/v1/orders")]
pub async fn list_orders(
    caller: Caller,
    query: web::Query<OrdersQuery>,
    ledger: web::Data<Ledger>,
    exchange: web::Data<Exchange>,
    registry: web::Data<RegistryId>,
) -> Result<HttpResponse, ApiError> {
    let market = query
        .market
        .as_deref()
        .map(|symbol| exchange.market(symbol))
        .transpose()?;
    let statuses: Option<Vec<&'static str>> = match query.status.as_deref() {
        None => None,
        Some("open") => Some(vec!["open", "partially_filled"]),
        // A status of the API that no stored order has: a refused order is answered with its
        // error and never recorded. Filtering by it is valid and finds nothing.
        Some("rejected") => Some(vec!["rejected"]),
        Some(raw) => Some(vec![
            OrderStatus::parse(raw)
                .ok_or_else(|| {
                    ApiError::unprocessable(
                        "bad_status",
                        "status is open, partially_filled, filled, cancelled, rejected or expired",
                    )
                })?
                .as_str(),
        ]),
    };
    let paging = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    };
    let limit = paging.limit()?;
    let before = paging.before_id()?;
    let page = blocking(move || {
        let mut conn = ledger.conn()?;
        let owner = view_as(&mut conn, &caller, query.holder.as_deref(), &registry)?;
        let orders = store::orders_page(
            &mut conn,
            owner.id,
            market.map(|m| m.spec.id),
            statuses.as_deref(),
            before,
            limit,
        )?;
        let views = order_views(&mut conn, &exchange, &orders)?;
        Ok(Page::from_overfetch(views, limit, |v| {
            v.id.parse().unwrap_or_default()
        }))
    })
    .await?;
    Ok(HttpResponse::Ok().json(OrderPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/orders/{id}", tag = "exchange",
    security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 404, body = Problem, description = "not_found: unknown, or not the caller's"))
)]
#[get("/api/v1/orders/{id}")]
pub async fn get_order(
    caller: Caller,
    id: web::Path<String>,
    ledger: web::Data<Ledger>,
    exchange: web::Data<Exchange>,
) -> Result<HttpResponse, ApiError> {
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let order = managed_order(&mut conn, &caller, &id)?;
        let mut views = order_views(&mut conn, &exchange, std::slice::from_ref(&order))?;
        views
            .pop()
            .ok_or_else(|| ApiError::Internal("order vanished".into()))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Sends a cancel or reduce of a stored order to its market, then shows the order as stored.
async fn change(
    caller: Caller,
    raw_id: String,
    ledger: web::Data<Ledger>,
    exchange: web::Data<Exchange>,
    command: impl FnOnce(&StoredOrder, &MarketSpec) -> Result<Command, ApiError> + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let (reader, exchange_for_lookup) = (ledger.clone(), exchange.clone());
    let (order, market, command) = blocking(move || {
        let mut conn = reader.conn()?;
        let order = managed_order(&mut conn, &caller, &raw_id)?;
        let market = exchange_for_lookup
            .market_by_id(order.market)
            .ok_or_else(|| ApiError::Internal(format!("market {} not served", order.market)))?;
        let command = command(&order, &market.spec)?;
        Ok((order, market, command))
    })
    .await?;
    if !matches!(
        order.record.status,
        OrderStatus::Open | OrderStatus::PartiallyFilled
    ) {
        return Err(ExchangeError::OrderClosed.into());
    }
    match market.submit(command).await {
        Ok(_) => {}
        // It existed and was the caller's a moment ago: it has since filled or been cancelled.
        Err(ExchangeError::UnknownOrder) => return Err(ExchangeError::OrderClosed.into()),
        Err(other) => return Err(other.into()),
    }
    let id = order.record.id;
    let view = blocking(move || {
        let mut conn = ledger.conn()?;
        let stored = store::order_by_id(&mut conn, i64::try_from(id).unwrap_or(i64::MAX))?
            .ok_or_else(|| ApiError::Internal("order vanished".into()))?;
        let mut views = order_views(&mut conn, &exchange, std::slice::from_ref(&stored))?;
        views
            .pop()
            .ok_or_else(|| ApiError::Internal("order vanished".into()))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    patch, path = "/api/v1/orders/{id}", tag = "exchange", request_body = OrderChange,
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderView),
        (status = 404, body = Problem, description = "not_found"),
        (status = 409, body = Problem, description = "order_closed"),
        (status = 422, body = Problem, description = "bad_quantity: not a reduction, or off the lot"),
    )
)]
#[patch("/api/v1/orders/{id}")]
pub async fn change_order(
    caller: Caller,
    id: web::Path<String>,
    body: scrip_http::Json<OrderChange>,
    ledger: web::Data<Ledger>,
    exchange: web::Data<Exchange>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    change(
        caller,
        id.into_inner(),
        ledger,
        exchange,
        move |order, spec| {
            let quantity_lots = spec.quantity_lots(&body.quantity)?;
            Ok(Command::Reduce {
                owner: order.record.owner,
                order: order.record.id,
                quantity_lots,
            })
        },
    )
    .await
}

#[utoipa::path(
    delete, path = "/api/v1/orders/{id}", tag = "exchange",
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderView, description = "status cancelled; its hold is released"),
        (status = 404, body = Problem, description = "not_found"),
        (status = 409, body = Problem, description = "order_closed"),
    )
)]
#[delete("/api/v1/orders/{id}")]
pub async fn cancel_order(
    caller: Caller,
    id: web::Path<String>,
    ledger: web::Data<Ledger>,
    exchange: web::Data<Exchange>,
) -> Result<HttpResponse, ApiError> {
    change(caller, id.into_inner(), ledger, exchange, |order, _| {
        Ok(Command::Cancel {
            owner: order.record.owner,
            order: order.record.id,
            reason: crate::state::EndReason::Requested,
        })
    })
    .await
}
