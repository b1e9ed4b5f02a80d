//! A small economy for the tests: issuers with currencies and some customers.

use scrip_domain::HoldId;
use scrip_domain::{
    Amount, CurrencyCode, CurrencyId, Handle, Par, PrincipalId, PrincipalKind, Scale, UnitCode,
};
use scrip_ledger::{
    Account, BatchRules, Currency, HoldBatch, HoldRef, Ledger, LedgerError, NewCurrency,
    TransferKind, TransferRequest, create_currency, create_principal, holdings,
};
use scrip_store::Backend;
use scrip_store::test_support::TestDb;

pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

pub struct Economy {
    pub db: TestDb,
    pub ledger: Ledger,
    pub principals: Vec<PrincipalId>,
    pub currencies: Vec<Currency>,
}

/// How a test currency is configured: `(code, issuer index, scale, credit limit atoms, max balance atoms)`.
pub type CurrencySpec = (&'static str, usize, i64, i64, Option<i64>);

impl Economy {
    /// `businesses` issuers first, then `customers`; currencies as specified.
    pub fn new(
        backend: Backend,
        businesses: usize,
        customers: usize,
        specs: &[CurrencySpec],
    ) -> Self {
        let db = TestDb::new(backend);
        let ledger = Ledger::new(db.pool.clone());
        let principals = ledger
            .write(|conn| {
                let mut ids = Vec::new();
                for i in 0..businesses + customers {
                    let (name, kind) = if i < businesses {
                        (format!("shop{i}"), PrincipalKind::Business)
                    } else {
                        (format!("user{i}"), PrincipalKind::User)
                    };
                    let handle = Handle::parse(&name).expect("handle");
                    ids.push(create_principal(conn, &handle, kind, None)?.id);
                }
                Ok(ids)
            })
            .expect("principals");
        let currencies = specs
            .iter()
            .map(
                |&(code, issuer, scale, credit_limit_atoms, max_balance_atoms)| {
                    let scale = Scale::new(scale).expect("scale");
                    let new = NewCurrency {
                        issuer: principals[issuer],
                        code: CurrencyCode::parse(code).expect("code"),
                        name: format!("{code} money"),
                        scale,
                        credit_limit: Amount::from_atoms(credit_limit_atoms, scale),
                        max_balance: max_balance_atoms.map(|m| Amount::from_atoms(m, scale)),
                        unit: UnitCode::parse("EUR").expect("unit"),
                        par: Par::one(),
                        policies: Default::default(),
                    };
                    ledger
                        .write(|conn| create_currency(conn, &new))
                        .expect("currency")
                },
            )
            .collect();
        Self {
            db,
            ledger,
            principals,
            currencies,
        }
    }

    pub fn currency(&self, index: usize) -> &Currency {
        &self.currencies[index]
    }

    pub fn amount(&self, currency: usize, atoms: i64) -> Amount {
        Amount::from_atoms(atoms, self.currencies[currency].scale)
    }

    pub fn pay(&self, currency: usize, from: usize, to: usize, atoms: i64) -> TransferRequest {
        TransferRequest {
            currency: self.currencies[currency].id,
            from: self.principals[from],
            to: self.principals[to],
            amount: self.amount(currency, atoms),
            kind: TransferKind::Payment,
            memo: None,
        }
    }

    /// `(balance, held)` atoms of a principal in a currency; zeros for an unopened account.
    pub fn position(&self, principal: usize, currency: CurrencyId) -> (i64, i64) {
        self.accounts(principal)
            .into_iter()
            .find(|a| a.currency_id == currency)
            .map_or((0, 0), |a| (a.balance.atoms(), a.held.atoms()))
    }

    pub fn accounts(&self, principal: usize) -> Vec<Account> {
        self.ledger
            .read(|conn| holdings(conn, self.principals[principal]))
            .expect("accounts")
            .into_iter()
            .map(|h| h.account)
            .collect()
    }

    /// Every account of every principal: what "nothing changed" is checked against.
    pub fn snapshot(&self) -> Vec<Account> {
        (0..self.principals.len())
            .flat_map(|p| self.accounts(p))
            .collect()
    }

    /// Runs `plan` on a [`HoldBatch`] over `who`'s account in `currency` and commits it, in one
    /// write transaction: the exchange's path to the ledger, one command at a time.
    pub fn hold_batch<T>(
        &self,
        who: usize,
        currency: usize,
        mut plan: impl FnMut(&mut HoldBatch) -> Result<T, LedgerError>,
    ) -> Result<(T, Vec<HoldId>), LedgerError> {
        let (principal, currency) = (self.principals[who], self.currencies[currency].id);
        self.ledger.write(|conn| {
            let all: Vec<_> = self.currencies.iter().map(|c| c.id).collect();
            let rules = BatchRules::load(conn, &all)?;
            let mut batch = HoldBatch::lock(conn, &rules, [(principal, currency)])?;
            let value = plan(&mut batch)?;
            let committed = batch.commit(conn)?;
            Ok((value, committed.new_hold_ids))
        })
    }

    /// Reserves `atoms` of `who`'s available `currency` for an order.
    pub fn hold(&self, who: usize, currency: usize, atoms: i64) -> Result<HoldId, LedgerError> {
        let (principal, id) = (self.principals[who], self.currencies[currency].id);
        let (_, ids) = self.hold_batch(who, currency, |batch| {
            batch.place_hold(principal, id, atoms, "order".into())
        })?;
        Ok(ids[0])
    }

    /// Gives `atoms` of `who`'s hold back.
    pub fn release(
        &self,
        hold: HoldId,
        who: usize,
        currency: usize,
        atoms: i64,
    ) -> Result<(), LedgerError> {
        let (principal, id) = (self.principals[who], self.currencies[currency].id);
        self.hold_batch(who, currency, |batch| {
            batch.release(HoldRef::Existing(hold), principal, id, atoms)
        })
        .map(drop)
    }

    /// Pays `atoms` out of `who`'s hold to `to`, as a trade fill settles.
    pub fn settle(
        &self,
        hold: HoldId,
        who: usize,
        to: usize,
        currency: usize,
        atoms: i64,
    ) -> Result<(), LedgerError> {
        let (from, id) = (self.principals[who], self.currencies[currency].id);
        let to = self.principals[to];
        self.hold_batch(who, currency, |batch| {
            batch.pay_from_hold(
                HoldRef::Existing(hold),
                from,
                to,
                id,
                atoms,
                TransferKind::Trade,
                "fill".into(),
            )
        })
        .map(drop)
    }

    pub fn assert_audit_clean(&self) {
        let report = self.ledger.audit().expect("audit runs");
        assert!(report.is_clean(), "audit found: {:#?}", report.violations);
    }
}
