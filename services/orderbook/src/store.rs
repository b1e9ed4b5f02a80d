//! The exchange's tables: markets, orders, trades. Batch writes are set-based (one statement
//! per kind of row), reads serve the REST endpoints and the rebuild of books on start.

use std::collections::HashMap;
use std::fmt::Write as _;

use diesel::prelude::*;
use scrip_domain::{CurrencyCode, CurrencyId, HoldId, PrincipalId, Scale};
use scrip_ledger::{HoldRef, LedgerError};
use scrip_matching::{OrderId, Side};
use scrip_store::schema::{currencies, holds, markets, orders, trades};
use scrip_store::{Column, Columns, DbConn};

use crate::ExchangeError;
use crate::candles::Bucket;
use crate::spec::{MarketId, MarketSpec};
use crate::state::{
    Changes, EndReason, Fill, Noticed, OpenOrder, OrderNotice, OrderRecord, OrderStatus, OrderType,
    Resting, parse_side, parse_tif, side_str, tif_str,
};

#[derive(Queryable, Selectable, Debug)]
#[diesel(table_name = markets)]
struct MarketRow {
    id: i64,
    base_currency_id: i64,
    quote_currency_id: i64,
    tick_size_atoms: i64,
    lot_size_atoms: i64,
    fee_bps: i32,
}

fn corrupt(what: &str) -> ExchangeError {
    ExchangeError::Ledger(LedgerError::Store(
        diesel::result::Error::DeserializationError(format!("corrupt value in {what}").into()),
    ))
}

fn currency_of(
    conn: &mut DbConn,
    id: i64,
) -> Result<(CurrencyId, CurrencyCode, Scale), ExchangeError> {
    let (code, scale): (String, i32) = currencies::table
        .find(id)
        .select((currencies::code, currencies::scale))
        .first(conn)?;
    let code = CurrencyCode::parse(&code).map_err(|_| corrupt("currencies.code"))?;
    let scale = Scale::new(i64::from(scale)).map_err(|_| corrupt("currencies.scale"))?;
    Ok((CurrencyId::new(id), code, scale))
}

fn spec_of(conn: &mut DbConn, row: &MarketRow) -> Result<MarketSpec, ExchangeError> {
    let base = currency_of(conn, row.base_currency_id)?;
    let quote = currency_of(conn, row.quote_currency_id)?;
    MarketSpec::new(
        row.id,
        base,
        quote,
        row.tick_size_atoms,
        row.lot_size_atoms,
        u32::try_from(row.fee_bps).map_err(|_| corrupt("markets.fee_bps"))?,
    )
}

pub fn all_markets(conn: &mut DbConn) -> Result<Vec<MarketSpec>, ExchangeError> {
    let rows: Vec<MarketRow> = markets::table
        .order(markets::id)
        .select(MarketRow::as_select())
        .load(conn)?;
    rows.iter().map(|row| spec_of(conn, row)).collect()
}

/// The market of this symbol, if one was opened (by any process).
pub fn market_by_symbol(
    conn: &mut DbConn,
    symbol: &str,
) -> Result<Option<MarketSpec>, ExchangeError> {
    let row: Option<MarketRow> = markets::table
        .filter(markets::symbol.eq(symbol))
        .select(MarketRow::as_select())
        .first(conn)
        .optional()?;
    row.map(|row| spec_of(conn, &row)).transpose()
}

/// How many markets trade a currency issued by `issuer` (as base or quote).
pub fn markets_of_issuer(conn: &mut DbConn, issuer: PrincipalId) -> Result<i64, ExchangeError> {
    use scrip_store::schema::currencies;
    let issued = currencies::table
        .filter(currencies::issuer_id.eq(issuer.get()))
        .select(currencies::id);
    Ok(markets::table
        .filter(
            markets::base_currency_id
                .eq_any(issued)
                .or(markets::quote_currency_id.eq_any(issued)),
        )
        .count()
        .get_result(conn)?)
}

/// Inserts a market checked by [`MarketSpec::new`]; `MarketExists` when the pair is taken.
pub fn create_market(
    conn: &mut DbConn,
    spec: &MarketSpec,
    created_by: PrincipalId,
    now_us: i64,
) -> Result<MarketSpec, ExchangeError> {
    let symbol = spec.symbol();
    let taken = markets::table
        .filter(
            markets::symbol.eq(&symbol).or(markets::base_currency_id
                .eq(spec.base.get())
                .and(markets::quote_currency_id.eq(spec.quote.get()))),
        )
        .count()
        .get_result::<i64>(conn)?;
    if taken > 0 {
        return Err(ExchangeError::MarketExists(symbol));
    }
    let id: i64 = diesel::insert_into(markets::table)
        .values((
            markets::symbol.eq(&symbol),
            markets::base_currency_id.eq(spec.base.get()),
            markets::quote_currency_id.eq(spec.quote.get()),
            markets::tick_size_atoms.eq(spec.tick_size_atoms),
            markets::lot_size_atoms.eq(spec.lot_size_atoms),
            markets::fee_bps.eq(i32::try_from(spec.fee_bps).unwrap_or(i32::MAX)),
            markets::created_by.eq(created_by.get()),
            markets::created_at_us.eq(now_us),
        ))
        .returning(markets::id)
        .get_result(conn)
        .map_err(|e| match e {
            // Two concurrent creations of one pair both passed the check: the constraint
            // decides, and the loser is told the market exists.
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => ExchangeError::MarketExists(symbol.clone()),
            other => other.into(),
        })?;
    let mut created = spec.clone();
    created.id = id;
    Ok(created)
}

/// `(id, owner, side, price, quantity, filled, hold, hold remaining)`.
type OpenOrderRow = (
    i64,
    i64,
    String,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

/// The open orders of a market with what their holds still reserve, for rebuilding its book.
pub fn open_orders(conn: &mut DbConn, market: MarketId) -> Result<Vec<OpenOrder>, ExchangeError> {
    let rows: Vec<OpenOrderRow> = orders::table
        .left_join(holds::table.on(holds::id.nullable().eq(orders::hold_id)))
        .filter(orders::market_id.eq(market))
        .filter(orders::status.eq_any(["open", "partially_filled"]))
        .order(orders::id)
        .select((
            orders::id,
            orders::owner_id,
            orders::side,
            orders::price_ticks,
            orders::quantity_lots,
            orders::filled_lots,
            orders::hold_id,
            holds::remaining_atoms.nullable(),
        ))
        .load(conn)?;
    rows.into_iter()
        .map(
            |(id, owner, side, price, quantity, filled, hold, remaining)| {
                Ok(OpenOrder {
                    id: order_id(id)?,
                    resting: Resting {
                        owner: PrincipalId::new(owner),
                        side: parse_side(&side).ok_or_else(|| corrupt("orders.side"))?,
                        price_ticks: price.ok_or_else(|| corrupt("orders.price_ticks"))?,
                        quantity_lots: quantity,
                        filled_lots: filled,
                        hold: HoldRef::Existing(HoldId::new(
                            hold.ok_or_else(|| corrupt("orders.hold_id"))?,
                        )),
                        hold_remaining_atoms: remaining.ok_or_else(|| corrupt("holds"))?,
                    },
                })
            },
        )
        .collect()
}

fn order_id(raw: i64) -> Result<OrderId, ExchangeError> {
    OrderId::try_from(raw).map_err(|_| corrupt("orders.id"))
}

fn db_id(id: OrderId) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

/// The highest order and trade ids the market ever used.
pub fn last_ids(
    conn: &mut DbConn,
    market: MarketId,
) -> Result<(Option<i64>, Option<i64>), ExchangeError> {
    let order: Option<i64> = orders::table
        .filter(orders::market_id.eq(market))
        .select(diesel::dsl::max(orders::id))
        .first(conn)?;
    let trade: Option<i64> = trades::table
        .filter(trades::market_id.eq(market))
        .select(diesel::dsl::max(trades::id))
        .first(conn)?;
    Ok((order, trade))
}

#[derive(Insertable)]
#[diesel(table_name = orders)]
struct NewOrderRow<'a> {
    id: i64,
    market_id: i64,
    owner_id: i64,
    side: &'static str,
    order_type: &'static str,
    price_ticks: Option<i64>,
    quantity_lots: i64,
    filled_lots: i64,
    status: &'static str,
    time_in_force: &'static str,
    post_only: i32,
    client_order_id: Option<&'a str>,
    hold_id: Option<i64>,
    created_at_us: i64,
    updated_at_us: i64,
}

#[derive(Insertable)]
#[diesel(table_name = trades)]
struct NewTradeRow {
    id: i64,
    market_id: i64,
    taker_order_id: i64,
    maker_order_id: i64,
    taker_side: &'static str,
    price_ticks: i64,
    quantity_lots: i64,
    buyer_fee_atoms: i64,
    seller_fee_atoms: i64,
    created_at_us: i64,
}

/// Writes a batch's orders and trades (after the ledger part, whose new hold ids it needs).
pub fn write_changes(
    conn: &mut DbConn,
    market: MarketId,
    changes: &Changes,
    new_hold_ids: &[HoldId],
    now_us: i64,
) -> Result<(), ExchangeError> {
    let inserts: Vec<NewOrderRow> = changes
        .inserted
        .iter()
        .map(|o| NewOrderRow {
            id: db_id(o.id),
            market_id: market,
            owner_id: o.owner.get(),
            side: side_str(o.side),
            order_type: o.order_type.as_str(),
            price_ticks: o.price_ticks,
            quantity_lots: o.quantity_lots,
            filled_lots: o.filled_lots,
            status: o.status.as_str(),
            time_in_force: tif_str(o.time_in_force),
            post_only: i32::from(o.post_only),
            client_order_id: o.client_order_id.as_deref(),
            hold_id: o
                .hold
                .and_then(|h| h.resolve(new_hold_ids))
                .map(HoldId::get),
            created_at_us: o.created_at_us,
            updated_at_us: o.updated_at_us,
        })
        .collect();
    insert_orders(conn, &inserts)?;
    update_orders(conn, changes, now_us)?;
    record_end_reasons(conn, &changes.notices)?;
    let trade_rows: Vec<NewTradeRow> = changes
        .trades
        .iter()
        .map(|t| NewTradeRow {
            id: t.id,
            market_id: market,
            taker_order_id: db_id(t.taker_order),
            maker_order_id: db_id(t.maker_order),
            taker_side: side_str(t.taker_side),
            price_ticks: t.price_ticks,
            quantity_lots: t.quantity_lots,
            buyer_fee_atoms: t.buyer_fee_atoms,
            seller_fee_atoms: t.seller_fee_atoms,
            created_at_us: t.created_at_us,
        })
        .collect();
    insert_trades(conn, &trade_rows)?;
    Ok(())
}

// PostgreSQL gets one statement text per kind of row whatever the batch size (see
// `scrip_store::bulk`); SQLite gets multi-row `INSERT`s.

fn insert_orders(conn: &mut DbConn, rows: &[NewOrderRow]) -> Result<(), ExchangeError> {
    let DbConn::Postgres(pg) = conn else {
        scrip_store::insert_rows!(conn, orders::table, rows)?;
        return Ok(());
    };
    if rows.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&NewOrderRow) -> &'static str| Column::Text(rows.iter().map(f).collect());
    let big = |f: fn(&NewOrderRow) -> i64| Column::BigInt(rows.iter().map(f).collect());
    Columns::new(
        "INSERT INTO orders (id, market_id, owner_id, side, order_type, price_ticks, quantity_lots, \
         filled_lots, status, time_in_force, post_only, client_order_id, hold_id, created_at_us, \
         updated_at_us) SELECT * FROM unnest(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(big(|r| r.id))
    .bind(big(|r| r.market_id))
    .bind(big(|r| r.owner_id))
    .bind(text(|r| r.side))
    .bind(text(|r| r.order_type))
    .bind(Column::NullableBigInt(rows.iter().map(|r| r.price_ticks).collect()))
    .bind(big(|r| r.quantity_lots))
    .bind(big(|r| r.filled_lots))
    .bind(text(|r| r.status))
    .bind(text(|r| r.time_in_force))
    .bind(Column::Integer(rows.iter().map(|r| r.post_only).collect()))
    .bind(Column::NullableText(rows.iter().map(|r| r.client_order_id).collect()))
    .bind(Column::NullableBigInt(rows.iter().map(|r| r.hold_id).collect()))
    .bind(big(|r| r.created_at_us))
    .bind(big(|r| r.updated_at_us))
    .execute(pg)?;
    Ok(())
}

fn insert_trades(conn: &mut DbConn, rows: &[NewTradeRow]) -> Result<(), ExchangeError> {
    let DbConn::Postgres(pg) = conn else {
        scrip_store::insert_rows!(conn, trades::table, rows)?;
        return Ok(());
    };
    if rows.is_empty() {
        return Ok(());
    }
    let big = |f: fn(&NewTradeRow) -> i64| Column::BigInt(rows.iter().map(f).collect());
    Columns::new(
        "INSERT INTO trades (id, market_id, taker_order_id, maker_order_id, taker_side, price_ticks, \
         quantity_lots, buyer_fee_atoms, seller_fee_atoms, created_at_us) \
         SELECT * FROM unnest(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(big(|r| r.id))
    .bind(big(|r| r.market_id))
    .bind(big(|r| r.taker_order_id))
    .bind(big(|r| r.maker_order_id))
    .bind(Column::Text(rows.iter().map(|r| r.taker_side).collect()))
    .bind(big(|r| r.price_ticks))
    .bind(big(|r| r.quantity_lots))
    .bind(big(|r| r.buyer_fee_atoms))
    .bind(big(|r| r.seller_fee_atoms))
    .bind(big(|r| r.created_at_us))
    .execute(pg)?;
    Ok(())
}

/// One statement for every order that existed before the batch and changed in it.
fn update_orders(conn: &mut DbConn, changes: &Changes, now_us: i64) -> Result<(), ExchangeError> {
    if changes.updated.is_empty() {
        return Ok(());
    }
    if let DbConn::Postgres(pg) = conn {
        let updated = &changes.updated;
        Columns::new(
            "UPDATE orders SET quantity_lots = u.quantity, filled_lots = u.filled, status = u.status, \
             updated_at_us = u.at FROM unnest(?, ?, ?, ?, ?) AS u (id, quantity, filled, status, at) \
             WHERE orders.id = u.id",
        )
        .replanned()
        .bind(Column::BigInt(updated.keys().map(|id| db_id(*id)).collect()))
        .bind(Column::BigInt(updated.values().map(|u| u.quantity_lots).collect()))
        .bind(Column::BigInt(updated.values().map(|u| u.filled_lots).collect()))
        .bind(Column::Text(updated.values().map(|u| u.status.as_str()).collect()))
        .bind(Column::BigInt(vec![now_us; updated.len()]))
        .execute(pg)?;
        return Ok(());
    }
    let mut values = String::new();
    for (id, update) in &changes.updated {
        let sep = if values.is_empty() { "" } else { ", " };
        // Only integers and the fixed status words are inlined, never client text.
        let _ = write!(
            values,
            "{sep}(CAST({} AS BIGINT), CAST({} AS BIGINT), CAST({} AS BIGINT), '{}')",
            db_id(*id),
            update.quantity_lots,
            update.filled_lots,
            update.status.as_str()
        );
    }
    let sql = format!(
        "WITH u (id, quantity, filled, status) AS (VALUES {values}) \
         UPDATE orders SET quantity_lots = u.quantity, filled_lots = u.filled, \
         status = u.status, updated_at_us = {now_us} \
         FROM u WHERE orders.id = u.id"
    );
    diesel::sql_query(sql).execute(conn)?;
    Ok(())
}

/// Writes why the batch's ended orders ended, in one statement (none when nothing ended).
fn record_end_reasons(conn: &mut DbConn, notices: &[OrderNotice]) -> Result<(), ExchangeError> {
    let mut values = String::new();
    for notice in notices {
        if let Noticed::Ended { reason, .. } = notice.what {
            let sep = if values.is_empty() { "" } else { ", " };
            // Only integers and the fixed reason words are inlined, never client text.
            let _ = write!(
                values,
                "{sep}(CAST({} AS BIGINT), '{}')",
                db_id(notice.order),
                reason.as_str()
            );
        }
    }
    if values.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "WITH u (id, reason) AS (VALUES {values}) \
         UPDATE orders SET end_reason = u.reason FROM u WHERE orders.id = u.id"
    );
    diesel::sql_query(sql).execute(conn)?;
    Ok(())
}

/// A stored order as the API shows it.
#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub market: MarketId,
    pub record: OrderRecord,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = orders)]
struct OrderRow {
    id: i64,
    market_id: i64,
    owner_id: i64,
    side: String,
    order_type: String,
    price_ticks: Option<i64>,
    quantity_lots: i64,
    filled_lots: i64,
    status: String,
    time_in_force: String,
    post_only: i32,
    client_order_id: Option<String>,
    created_at_us: i64,
    updated_at_us: i64,
    end_reason: Option<String>,
}

fn stored_order(row: OrderRow) -> Result<StoredOrder, ExchangeError> {
    Ok(StoredOrder {
        market: row.market_id,
        record: OrderRecord {
            id: order_id(row.id)?,
            owner: PrincipalId::new(row.owner_id),
            side: parse_side(&row.side).ok_or_else(|| corrupt("orders.side"))?,
            order_type: OrderType::parse(&row.order_type)
                .ok_or_else(|| corrupt("orders.order_type"))?,
            price_ticks: row.price_ticks,
            quantity_lots: row.quantity_lots,
            filled_lots: row.filled_lots,
            status: OrderStatus::parse(&row.status).ok_or_else(|| corrupt("orders.status"))?,
            time_in_force: parse_tif(&row.time_in_force)
                .ok_or_else(|| corrupt("orders.time_in_force"))?,
            post_only: row.post_only != 0,
            client_order_id: row.client_order_id,
            hold: None,
            created_at_us: row.created_at_us,
            updated_at_us: row.updated_at_us,
            // An unknown word (a newer version's) reads as no reason rather than failing.
            end_reason: row.end_reason.as_deref().and_then(EndReason::parse),
        },
    })
}

/// The order with this id (the caller checks who may see it).
pub fn order_by_id(conn: &mut DbConn, id: i64) -> Result<Option<StoredOrder>, ExchangeError> {
    let row: Option<OrderRow> = orders::table
        .filter(orders::id.eq(id))
        .select(OrderRow::as_select())
        .first(conn)
        .optional()?;
    row.map(stored_order).transpose()
}

/// The caller's orders, newest first.
pub fn orders_page(
    conn: &mut DbConn,
    owner: PrincipalId,
    market: Option<MarketId>,
    statuses: Option<&[&str]>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<StoredOrder>, ExchangeError> {
    let mut query = orders::table
        .filter(orders::owner_id.eq(owner.get()))
        .select(OrderRow::as_select())
        .order(orders::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(market) = market {
        query = query.filter(orders::market_id.eq(market));
    }
    if let Some(statuses) = statuses {
        query = query.filter(
            orders::status.eq_any(statuses.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        );
    }
    if let Some(before) = before_id {
        query = query.filter(orders::id.lt(before));
    }
    let rows: Vec<OrderRow> = query.load(conn)?;
    rows.into_iter().map(stored_order).collect()
}

/// A trade as stored.
#[derive(Debug, Clone, Queryable)]
pub struct StoredTrade {
    pub id: i64,
    pub taker_order_id: i64,
    pub maker_order_id: i64,
    pub taker_side: String,
    pub price_ticks: i64,
    pub quantity_lots: i64,
    pub buyer_fee_atoms: i64,
    pub seller_fee_atoms: i64,
    pub created_at_us: i64,
}

fn trade_columns() -> (
    trades::id,
    trades::taker_order_id,
    trades::maker_order_id,
    trades::taker_side,
    trades::price_ticks,
    trades::quantity_lots,
    trades::buyer_fee_atoms,
    trades::seller_fee_atoms,
    trades::created_at_us,
) {
    (
        trades::id,
        trades::taker_order_id,
        trades::maker_order_id,
        trades::taker_side,
        trades::price_ticks,
        trades::quantity_lots,
        trades::buyer_fee_atoms,
        trades::seller_fee_atoms,
        trades::created_at_us,
    )
}

/// Every fill of the given orders, oldest first, from each order's side.
pub fn fills_of(
    conn: &mut DbConn,
    orders_by_side: &[(OrderId, Side)],
) -> Result<HashMap<OrderId, Vec<Fill>>, ExchangeError> {
    let mut fills: HashMap<OrderId, Vec<Fill>> = HashMap::new();
    if orders_by_side.is_empty() {
        return Ok(fills);
    }
    let ids: Vec<i64> = orders_by_side.iter().map(|(id, _)| db_id(*id)).collect();
    let sides: HashMap<OrderId, Side> = orders_by_side.iter().copied().collect();
    let rows: Vec<StoredTrade> = trades::table
        .filter(
            trades::taker_order_id
                .eq_any(&ids)
                .or(trades::maker_order_id.eq_any(&ids)),
        )
        .order(trades::id)
        .select(trade_columns())
        .load(conn)?;
    for trade in rows {
        for raw in [trade.taker_order_id, trade.maker_order_id] {
            let Ok(id) = order_id(raw) else { continue };
            let Some(&side) = sides.get(&id) else {
                continue;
            };
            let fee_atoms = match side {
                Side::Buy => trade.buyer_fee_atoms,
                Side::Sell => trade.seller_fee_atoms,
            };
            fills.entry(id).or_default().push(Fill {
                trade_id: trade.id,
                price_ticks: trade.price_ticks,
                quantity_lots: trade.quantity_lots,
                fee_atoms,
                at_us: trade.created_at_us,
            });
        }
    }
    Ok(fills)
}

/// The market's trades newest first, below the trade id `before` when given.
pub fn recent_trades(
    conn: &mut DbConn,
    market: MarketId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<StoredTrade>, ExchangeError> {
    let mut query = trades::table
        .filter(trades::market_id.eq(market))
        .order(trades::id.desc())
        .limit(limit)
        .select(trade_columns())
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(trades::id.lt(before));
    }
    Ok(query.load(conn)?)
}

/// The market's trades stamped in `[from_us, to_us)` (`None`: no end), aggregated by the
/// database into one row per interval of `length_us`, oldest first: what a candle needs, never
/// the trades themselves. Open and close are the prices of the first and last trade by id.
pub fn candle_buckets(
    conn: &mut DbConn,
    market: MarketId,
    length_us: i64,
    (from_us, to_us): (i64, Option<i64>),
) -> Result<Vec<Bucket>, ExchangeError> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        start_us: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        open: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        high: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        low: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        close: i64,
        /// Text: a sum of lots may pass 64 bits.
        #[diesel(sql_type = diesel::sql_types::Text)]
        volume: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        trades: i64,
    }
    assert!(
        length_us > 0 && from_us >= 0,
        "intervals and times are positive"
    );
    let until = to_us.map_or(String::new(), |to| format!(" AND created_at_us < {to}"));
    // Only integers are inlined. Integer division floors for the positive times stored.
    let sql = format!(
        "SELECT g.start_us, o.price_ticks AS open, g.high, g.low, c.price_ticks AS close,          g.volume, g.trades FROM (           SELECT (created_at_us / {length_us}) * {length_us} AS start_us,            MAX(price_ticks) AS high, MIN(price_ticks) AS low,            CAST(SUM(quantity_lots) AS TEXT) AS volume, COUNT(*) AS trades,            MIN(id) AS first_id, MAX(id) AS last_id            FROM trades WHERE market_id = {market} AND created_at_us >= {from_us}{until}            GROUP BY (created_at_us / {length_us}) * {length_us}         ) g JOIN trades o ON o.id = g.first_id JOIN trades c ON c.id = g.last_id          ORDER BY g.start_us"
    );
    let rows: Vec<Row> = diesel::sql_query(sql).load(conn)?;
    rows.into_iter()
        .map(|r| {
            Ok(Bucket {
                start_us: r.start_us,
                open: r.open,
                high: r.high,
                low: r.low,
                close: r.close,
                volume: r
                    .volume
                    .parse()
                    .map_err(|_| corrupt("trades.quantity_lots"))?,
                trades: u64::try_from(r.trades).map_err(|_| corrupt("trades"))?,
            })
        })
        .collect()
}

/// The last trade price of the market, if it ever traded.
pub fn last_price(conn: &mut DbConn, market: MarketId) -> Result<Option<i64>, ExchangeError> {
    Ok(trades::table
        .filter(trades::market_id.eq(market))
        .order(trades::id.desc())
        .select(trades::price_ticks)
        .first(conn)
        .optional()?)
}
