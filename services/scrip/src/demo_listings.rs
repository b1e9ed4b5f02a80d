//! The demo marketplace: what the demo's shops and people offer and want, and two paid deals
//! with their ratings, so the marketplace and a reputation show something on first start.

use diesel::prelude::*;
use scrip_domain::{Amount, CurrencyCode, Handle};
use scrip_ledger::{
    Ledger, LedgerError, TransferKind, TransferRequest, currency_by_code, principal_by_handle,
    transfer,
};
use scrip_store::DbConn;
use scrip_store::schema::{deal_feedback, deals, listing_currencies, listings};

/// `(holder, kind, title, description, price, currency, also takes, category, place)`
type DemoListing = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
);

const LISTINGS: [DemoListing; 6] = [
    (
        "bakery",
        "offer",
        "Sourdough loaf",
        "Baked every morning from our own starter; 800 g.",
        Some("4.50"),
        "BREAD",
        &[],
        "food",
        "Market Square",
    ),
    (
        "bakery",
        "offer",
        "Birthday cake to order",
        "Any flavour, for 8 to 12 people. Order two days ahead.",
        Some("25.00"),
        "BREAD",
        &["GROCER"],
        "food",
        "Market Square",
    ),
    (
        "grocer",
        "offer",
        "Vegetable box",
        "Seasonal vegetables from the valley's farms, for a family's week.",
        Some("12.00"),
        "GROCER",
        &["BREAD"],
        "food",
        "Corner of Mill Lane",
    ),
    (
        "brewer",
        "offer",
        "Ale tasting evening",
        "Five of our ales with the brewer, Thursdays at seven.",
        Some("6"),
        "ALE",
        &[],
        "events",
        "Hill Brewery",
    ),
    (
        "carla",
        "offer",
        "Bike repair",
        "Punctures, brakes, gears. Pay what you think it was worth.",
        None,
        "BREAD",
        &["GROCER"],
        "services",
        "Station Road",
    ),
    (
        "dev",
        "want",
        "Help moving house",
        "Two hours of carrying boxes on Saturday morning.",
        Some("20.00"),
        "GROCER",
        &[],
        "services",
        "Elm Street",
    ),
];

fn handle_id(conn: &mut DbConn, raw: &str) -> Result<i64, LedgerError> {
    Ok(principal_by_handle(conn, &Handle::parse(raw)?)?.id.get())
}

fn insert_listing(
    conn: &mut DbConn,
    listing: &DemoListing,
    now_us: i64,
) -> Result<i64, LedgerError> {
    let &(holder, kind, title, description, price, code, also, category, place) = listing;
    let holder_id = handle_id(conn, holder)?;
    let currency = currency_by_code(conn, &CurrencyCode::parse(code)?)?;
    let price_atoms = price
        .map(|p| Amount::parse_positive(p, currency.scale).map(|a| a.atoms()))
        .transpose()?;
    let id: i64 = diesel::insert_into(listings::table)
        .values((
            listings::holder_id.eq(holder_id),
            listings::author_id.eq(holder_id),
            listings::kind.eq(kind),
            listings::title.eq(title),
            listings::description.eq(description),
            listings::price_atoms.eq(price_atoms),
            listings::price_currency_id.eq(price_atoms.map(|_| currency.id.get())),
            listings::category.eq(category),
            listings::place.eq(place),
            listings::status.eq("open"),
            listings::created_at_us.eq(now_us),
            listings::updated_at_us.eq(now_us),
        ))
        .returning(listings::id)
        .get_result(conn)?;
    let mut taken: Vec<&str> = also.to_vec();
    if price_atoms.is_none() {
        taken.insert(0, code);
    }
    for other in taken {
        let id_of = currency_by_code(conn, &CurrencyCode::parse(other)?)?
            .id
            .get();
        diesel::insert_into(listing_currencies::table)
            .values((
                listing_currencies::listing_id.eq(id),
                listing_currencies::currency_id.eq(id_of),
            ))
            .execute(conn)?;
    }
    Ok(id)
}

/// `buyer` pays the bakery's loaf and rates it.
fn paid_deal(
    conn: &mut DbConn,
    loaf: i64,
    (buyer, rating, comment): (&str, i32, &str),
    now_us: i64,
) -> Result<(), LedgerError> {
    let (buyer_id, bakery) = (handle_id(conn, buyer)?, handle_id(conn, "bakery")?);
    let bread = currency_by_code(conn, &CurrencyCode::parse("BREAD")?)?;
    let price = Amount::parse_positive("4.50", bread.scale)?;
    let paid = transfer(
        conn,
        &TransferRequest {
            currency: bread.id,
            from: scrip_domain::PrincipalId::new(buyer_id),
            to: scrip_domain::PrincipalId::new(bakery),
            amount: price,
            kind: TransferKind::Payment,
            memo: Some("Marketplace: Sourdough loaf".into()),
        },
    )?;
    let deal: i64 = diesel::insert_into(deals::table)
        .values((
            deals::listing_id.eq(loaf),
            deals::buyer_id.eq(buyer_id),
            deals::seller_id.eq(bakery),
            deals::opened_by_id.eq(buyer_id),
            deals::terms.eq("fixed"),
            deals::status.eq("paid"),
            deals::currency_id.eq(bread.id.get()),
            deals::amount_atoms.eq(price.atoms()),
            deals::transfer_id.eq(paid.id.get()),
            deals::created_at_us.eq(now_us),
            deals::paid_at_us.eq(now_us),
        ))
        .returning(deals::id)
        .get_result(conn)?;
    diesel::insert_into(deal_feedback::table)
        .values((
            deal_feedback::deal_id.eq(deal),
            deal_feedback::from_id.eq(buyer_id),
            deal_feedback::to_id.eq(bakery),
            deal_feedback::rating.eq(rating),
            deal_feedback::comment.eq(comment),
            deal_feedback::created_at_us.eq(now_us),
            deal_feedback::updated_at_us.eq(now_us),
        ))
        .execute(conn)?;
    Ok(())
}

/// Seeds the listings and deals (part of [`crate::demo::seed`], once).
pub fn seed(ledger: &Ledger) -> Result<(), LedgerError> {
    let now_us = scrip_http::now_us();
    ledger.write(|conn| {
        let mut ids = Vec::new();
        for listing in &LISTINGS {
            ids.push(insert_listing(conn, listing, now_us)?);
        }
        let loaf = ids[0];
        paid_deal(
            conn,
            loaf,
            ("carla", 5, "Still warm at nine. The best crust in town."),
            now_us,
        )?;
        paid_deal(
            conn,
            loaf,
            ("dev", 4, "Good bread; sold out by noon."),
            now_us,
        )?;
        Ok(())
    })
}
