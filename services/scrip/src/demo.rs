//! `scrip serve --demo`: a small living economy so a newcomer sees something on first start.
//! Seeded once; a second start finds it and leaves it alone.

use scrip_auth::access::{Role, set_member, store_credentials};
use scrip_auth::password;
use scrip_domain::{Amount, CurrencyCode, Handle, Par, PrincipalKind, RegistryId, Scale, UnitCode};
use scrip_ledger::{
    Ledger, LedgerError, NewCurrency, TransferKind, TransferRequest, create_currency,
    create_principal, currency_by_code, principal_by_handle, transfer,
};
use scrip_matching::{Side, TimeInForce};
use scrip_orderbook::Exchange;
use scrip_orderbook::state::{Command, OrderType, PlaceOrder};

/// Every demo person logs in with this password.
pub const DEMO_PASSWORD: &str = "demo-password";

/// `(business, name, owner, currency code, currency name, scale, credit limit units)`
const SHOPS: [(&str, &str, &str, &str, &str, i64, i64); 3] = [
    (
        "bakery",
        "Rosa's Bakery",
        "rosa",
        "BREAD",
        "Bakery bread money",
        2,
        5_000,
    ),
    (
        "grocer",
        "Corner Grocer",
        "gus",
        "GROCER",
        "Grocer credit",
        2,
        8_000,
    ),
    (
        "brewer",
        "Hill Brewery",
        "hilde",
        "ALE",
        "Ale tokens",
        0,
        2_000,
    ),
];
const CUSTOMERS: [&str; 2] = ["carla", "dev"];
/// A newcomer who holds only ALE: paying a shop in its own currency converts it through the
/// books (the wallet's "pay with what you hold").
const NEWCOMER: &str = "eli";
/// The bakery's worker: logged in, the shop console is the bakery's till.
const WORKER: &str = "wanda";

fn handle(raw: &str) -> Result<Handle, LedgerError> {
    Ok(Handle::parse(raw)?)
}

pub fn seed(ledger: &Ledger, registry: &RegistryId) -> Result<(), Box<dyn std::error::Error>> {
    if ledger
        .read(|conn| principal_by_handle(conn, &handle("bakery")?))
        .is_ok()
    {
        tracing::info!("demo economy already present");
        return Ok(());
    }
    let hash = password::hash(DEMO_PASSWORD)?;
    ledger.write(|conn| {
        let mut person = |name: &str| -> Result<_, LedgerError> {
            let p = create_principal(conn, &handle(name)?, PrincipalKind::User, Some(name))?;
            store_credentials(conn, p.id, &hash)?;
            Ok(p.id)
        };
        let owners: Vec<_> = SHOPS
            .iter()
            .map(|shop| person(shop.2))
            .collect::<Result<_, _>>()?;
        let customers: Vec<_> = CUSTOMERS
            .iter()
            .map(|c| person(c))
            .collect::<Result<_, _>>()?;
        let newcomer = person(NEWCOMER)?;
        let worker = person(WORKER)?;
        let mut shops = Vec::new();
        for (&(business, name, _, code, currency_name, scale, limit), &owner) in
            SHOPS.iter().zip(&owners)
        {
            let shop = create_principal(
                conn,
                &handle(business)?,
                PrincipalKind::Business,
                Some(name),
            )?;
            set_member(conn, shop.id, owner, Role::Owner)?;
            if business == "bakery" {
                set_member(conn, shop.id, worker, Role::Worker)?;
            }
            let scale = Scale::new(scale)?;
            let currency = create_currency(
                conn,
                &NewCurrency {
                    issuer: shop.id,
                    code: CurrencyCode::parse(code)?,
                    name: currency_name.into(),
                    scale,
                    credit_limit: Amount::from_atoms(limit * scale.atoms_per_unit(), scale),
                    max_balance: None,
                    unit: UnitCode::parse("EUR")?,
                    par: Par::one(),
                    policies: Default::default(),
                },
            )?;
            shops.push((shop.id, currency.id, scale));
        }
        // Shops pay their suppliers and sell store credit; customers hold several currencies;
        // the three shops hold each other's money in a ring, ready for clearing.
        let mut pay = |from, to, currency, units: i64, scale: Scale, memo: &str| {
            transfer(
                conn,
                &TransferRequest {
                    currency,
                    from,
                    to,
                    amount: Amount::from_atoms(units * scale.atoms_per_unit(), scale),
                    kind: TransferKind::Payment,
                    memo: Some(memo.into()),
                },
            )
        };
        for (i, &(shop, currency, scale)) in shops.iter().enumerate() {
            let next = shops[(i + 1) % shops.len()].0;
            pay(shop, next, currency, 300, scale, "supplies")?;
            for (j, &customer) in customers.iter().enumerate() {
                pay(
                    shop,
                    customer,
                    currency,
                    40 + 25 * (i + j) as i64,
                    scale,
                    "store credit",
                )?;
            }
        }
        if let Some(&(brewery, ale, scale)) = shops.last() {
            pay(brewery, newcomer, ale, 30, scale, "store credit")?;
        }
        Ok(())
    })?;
    crate::demo_listings::seed(ledger)?;
    tracing::info!(registry = %registry, "seeded the demo economy");
    println!(
        "Demo economy: log in as rosa, gus, hilde (shop owners), wanda (the bakery's till), carla, dev (customers) or eli (holds only ALE: pay the bakery in BREAD with it), password {DEMO_PASSWORD:?}"
    );
    Ok(())
}

/// `(base, quote, tick size, lot size, fee_bps, opened by)` of the demo markets.
const MARKETS: [(&str, &str, &str, &str, u32, &str); 2] = [
    ("BREAD", "GROCER", "0.01", "1.00", 20, "rosa"),
    ("ALE", "BREAD", "0.01", "1", 20, "hilde"),
];

/// `(market, customer, side, price (None: market order), quantity)`, in this order: resting
/// orders on both sides, then a few that trade.
const ORDERS: [(usize, &str, Side, Option<&str>, &str); 14] = [
    (0, "carla", Side::Sell, Some("1.05"), "5.00"),
    (0, "carla", Side::Sell, Some("1.10"), "5.00"),
    (0, "carla", Side::Sell, Some("1.20"), "8.00"),
    (0, "dev", Side::Buy, Some("0.95"), "4.00"),
    (0, "dev", Side::Buy, Some("0.90"), "6.00"),
    (0, "dev", Side::Buy, Some("0.85"), "3.00"),
    (0, "dev", Side::Buy, Some("1.10"), "3.00"),
    (0, "carla", Side::Sell, None, "2.00"),
    (1, "dev", Side::Sell, Some("0.50"), "10"),
    (1, "dev", Side::Sell, Some("0.55"), "10"),
    (1, "carla", Side::Buy, Some("0.45"), "5"),
    (1, "carla", Side::Buy, Some("0.40"), "8"),
    (1, "carla", Side::Buy, Some("0.50"), "4"),
    (1, "dev", Side::Sell, None, "2"),
];

/// Opens the demo markets and trades a little on them, once (when no market exists yet).
/// Orders go through the market writers like any other, so books, holds and fees are real.
pub fn seed_exchange(
    ledger: &Ledger,
    exchange: &Exchange,
) -> Result<(), Box<dyn std::error::Error>> {
    if !exchange.markets().is_empty() {
        return Ok(());
    }
    let mut conn = ledger.conn()?;
    let mut markets = Vec::new();
    for (base, quote, tick, lot, fee_bps, opener) in MARKETS {
        let base = currency_by_code(&mut conn, &CurrencyCode::parse(base)?)?;
        let quote = currency_by_code(&mut conn, &CurrencyCode::parse(quote)?)?;
        let opener = principal_by_handle(&mut conn, &handle(opener)?)?;
        let tick_atoms = Amount::parse_positive(tick, quote.scale)?.atoms();
        let lot_atoms = Amount::parse_positive(lot, base.scale)?.atoms();
        markets.push(exchange.open_market(
            &mut conn,
            (&base, &quote),
            (tick_atoms, lot_atoms),
            fee_bps,
            (opener.id, scrip_orderbook::MarketOpener::Operator),
        )?);
    }
    let mut orders = Vec::new();
    for (market, who, side, price, quantity) in ORDERS {
        let spec = &markets[market].spec;
        let owner = principal_by_handle(&mut conn, &handle(who)?)?;
        orders.push((
            market,
            Command::Place(PlaceOrder {
                owner: owner.id,
                side,
                order_type: if price.is_some() {
                    OrderType::Limit
                } else {
                    OrderType::Market
                },
                price_ticks: price.map(|p| spec.price_ticks(p)).transpose()?,
                quantity_lots: spec.quantity_lots(quantity)?,
                time_in_force: if price.is_some() {
                    TimeInForce::Gtc
                } else {
                    TimeInForce::Ioc
                },
                post_only: false,
                client_order_id: Some("demo".into()),
                idempotency: None,
            }),
        ));
    }
    // On a thread of its own: the writers are waited for with blocking calls, which must not
    // run on the async runtime that is starting the server.
    let traded = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                for (market, command) in orders {
                    markets[market].submit_blocking(command)?;
                }
                Ok::<(), scrip_orderbook::ExchangeError>(())
            })
            .join()
    });
    traded.map_err(|_| "the demo trader panicked")??;
    println!("Demo markets: BREAD-GROCER and ALE-BREAD, with resting orders and a few trades");
    Ok(())
}
