//! A small economy on a test database: shops issuing currencies, funded owners, markets.

use diesel::prelude::*;
use scrip_domain::{
    Amount, CurrencyCode, Handle, Par, PrincipalId, PrincipalKind, Scale, UnitCode,
};
use scrip_ledger::{
    Ledger, NewCurrency, TransferKind, TransferRequest, create_currency, create_principal,
    principal_by_handle, transfer,
};
use scrip_orderbook::{Exchange, ExchangeMetrics, WorkerContext};
use scrip_store::test_support::TestDb;

/// One currency (scale 2, credit limit 10,000.00) per `(shop, code)`, `owners` users each
/// funded with `funding_atoms` of every one, and an exchange serving the database. Returns
/// the exchange, the owners and the registry.
pub fn world(
    db: &TestDb,
    shops: &[(&str, &str)],
    owners: usize,
    funding_atoms: i64,
) -> (Exchange, Vec<PrincipalId>, PrincipalId) {
    let ledger = Ledger::new(db.pool.clone());
    let scale = Scale::new(2).expect("scale");
    let owners = ledger
        .write(|conn| {
            let mut currencies = Vec::new();
            for &(shop, code) in shops {
                let issuer =
                    create_principal(conn, &Handle::parse(shop)?, PrincipalKind::Business, None)?;
                let currency = create_currency(
                    conn,
                    &NewCurrency {
                        issuer: issuer.id,
                        code: CurrencyCode::parse(code)?,
                        name: code.into(),
                        scale,
                        credit_limit: Amount::from_atoms(1_000_000, scale),
                        max_balance: None,
                        unit: UnitCode::parse("EUR")?,
                        par: Par::one(),
                        policies: Default::default(),
                    },
                )?;
                currencies.push((issuer.id, currency.id));
            }
            let mut funded = Vec::new();
            for i in 0..owners {
                let owner = create_principal(
                    conn,
                    &Handle::parse(&format!("owner{i}"))?,
                    PrincipalKind::User,
                    None,
                )?;
                for &(issuer, currency) in &currencies {
                    transfer(
                        conn,
                        &TransferRequest {
                            currency,
                            from: issuer,
                            to: owner.id,
                            amount: Amount::from_atoms(funding_atoms, scale),
                            kind: TransferKind::Payment,
                            memo: None,
                        },
                    )?;
                }
                funded.push(owner.id);
            }
            Ok(funded)
        })
        .expect("world");
    let registry = ledger
        .read(|conn| principal_by_handle(conn, &Handle::parse("registry")?))
        .expect("registry");
    let exchange = Exchange::start(WorkerContext {
        pool: db.pool.clone(),
        database_url: db.url.clone(),
        registry: registry.id,
        metrics: ExchangeMetrics::new(&scrip_telemetry::Metrics::new()),
        bus: None,
        notifier: None,
    })
    .expect("exchange");
    (exchange, owners, registry.id)
}

/// Opens market `BASE-QUOTE` with tick 0.01, lot 1.00 and `fee_bps`.
pub fn open(
    exchange: &Exchange,
    db: &TestDb,
    (base, quote): (&str, &str),
    fee_bps: u32,
    by: PrincipalId,
) {
    let mut conn = db.pool.get().expect("conn");
    let currency = |conn: &mut scrip_store::DbConn, code: &str| {
        scrip_ledger::currency_by_code(conn, &CurrencyCode::parse(code).expect("code"))
            .expect("currency")
    };
    let (base, quote) = (currency(&mut conn, base), currency(&mut conn, quote));
    exchange
        .open_market(
            &mut conn,
            (&base, &quote),
            (1, 100),
            fee_bps,
            (by, scrip_orderbook::MarketOpener::Operator),
        )
        .expect("market");
}

pub const STRANDED_HOLDS: &str = "SELECT COUNT(*) AS n FROM holds h WHERE h.remaining_atoms > 0 AND NOT EXISTS \
    (SELECT 1 FROM orders o WHERE o.hold_id = h.id AND o.status IN ('open', 'partially_filled'))";
pub const FILLS_THAT_DO_NOT_ADD_UP: &str = "SELECT COUNT(*) AS n FROM orders o WHERE o.filled_lots <> \
    (SELECT COALESCE(SUM(t.quantity_lots), 0) FROM trades t WHERE t.taker_order_id = o.id OR t.maker_order_id = o.id)";

pub fn count(conn: &mut scrip_store::DbConn, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .expect("count")
        .n
}
