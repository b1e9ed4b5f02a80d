//! `scrip serve --demo`: a small living economy so a newcomer sees something on first start.
//! Seeded once; a second start finds it and leaves it alone.

use scrip_auth::access::{Role, set_member, store_credentials};
use scrip_auth::password;
use scrip_domain::{Amount, CurrencyCode, Handle, Par, PrincipalKind, RegistryId, Scale, UnitCode};
use scrip_ledger::{
    Ledger, LedgerError, NewCurrency, TransferKind, TransferRequest, create_currency,
    create_principal, principal_by_handle, transfer,
};

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
        Ok(())
    })?;
    tracing::info!(registry = %registry, "seeded the demo economy");
    println!(
        "Demo economy: log in as rosa, gus, hilde (shop owners) or carla, dev (customers), password {DEMO_PASSWORD:?}"
    );
    Ok(())
}
