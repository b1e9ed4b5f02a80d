//! The OpenAPI document: snapshot-tested (so every API change shows in review) and checked to
//! describe every endpoint of API.md's System, Identity, Businesses and currencies, and Wallet.

use reqwest::StatusCode;
use scrip_store::Backend;

use crate::app::TestApp;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openapi.snapshot.json");

const API_MD_ENDPOINTS: [(&str, &str); 26] = [
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("get", "/api/v1/me"),
    ("post", "/api/v1/businesses"),
    ("get", "/api/v1/businesses/{handle}"),
    ("post", "/api/v1/businesses/{handle}/members"),
    ("post", "/api/v1/currencies"),
    ("get", "/api/v1/currencies"),
    ("get", "/api/v1/currencies/{code}"),
    ("patch", "/api/v1/currencies/{code}"),
    ("get", "/api/v1/accounts"),
    ("post", "/api/v1/transfers"),
    ("get", "/api/v1/transfers"),
    ("get", "/api/v1/transfers/{id}"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/clearing/graph"),
    ("post", "/api/v1/clearing/runs"),
    ("get", "/api/v1/clearing/runs"),
    ("get", "/api/v1/clearing/runs/{id}"),
    ("put", "/api/v1/businesses/{handle}/clearing"),
    ("post", "/api/v1/obligations"),
    ("post", "/api/v1/obligations/{id}/accept"),
    ("get", "/api/v1/obligations"),
];

#[test]
fn the_openapi_document_matches_its_snapshot() {
    let generated = scrip::server::openapi().to_pretty_json().expect("json") + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &generated).expect("write snapshot");
    }
    let stored = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        stored == generated,
        "the OpenAPI document changed; review it and run with UPDATE_SNAPSHOTS=1 to accept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_describes_every_endpoint() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (status, doc) = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        doc["openapi"].as_str().map(|v| v.starts_with("3.")),
        Some(true)
    );
    for (method, path) in API_MD_ENDPOINTS
        .iter()
        .filter(|(_, p)| *p != "/api/v1/openapi.json")
    {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not described"
        );
    }
}
