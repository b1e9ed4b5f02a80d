//! Black-box tests of the `scrip` binary and its HTTP API, each run on SQLite and PostgreSQL.

mod api_backed;
mod api_clearing;
mod api_errors;
mod api_exchange;
mod api_governance;
mod api_identity;
mod api_issuer;
mod api_joining;
mod api_liabilities;
mod api_marketplace;
mod api_payments;
mod api_policies;
mod api_requests;
mod api_rings;
mod api_statements;
mod api_wallet;
mod app;
mod commands;
mod faults;
mod openapi;
mod proxy;
mod topology;
mod web;

/// Generates one `#[tokio::test]` per backend for each scenario `async fn name(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(scrip_store::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(scrip_store::Backend::Postgres).await
                }
            )*
        }
    };
}
