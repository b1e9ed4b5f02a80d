//! Scripts, styles and the icon, compiled into the binary: the pages need no files on disk
//! and no build step.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};

/// `(name, content type, bytes)` of every asset.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/app.js"),
    ),
    (
        "money.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/money.js"),
    ),
    (
        "wallet.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/wallet.js"),
    ),
    (
        "exchange.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/exchange.js"),
    ),
    (
        "market.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/market.js"),
    ),
    (
        "shop.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/shop.js"),
    ),
    (
        "clearing.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/clearing.js"),
    ),
    (
        "policies.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/policies.js"),
    ),
    (
        "shop_policies.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/shop_policies.js"),
    ),
    (
        "shop_governance.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/shop_governance.js"),
    ),
    (
        "wallet_swaps.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/wallet_swaps.js"),
    ),
    (
        "status.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/status.js"),
    ),
    (
        "liabilities.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/liabilities.js"),
    ),
    (
        "shop_obligations.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/shop_obligations.js"),
    ),
    (
        "shop_clearing.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/shop_clearing.js"),
    ),
    (
        "currency.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/currency.js"),
    ),
    (
        "listings.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/listings.js"),
    ),
    (
        "marketplace.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/marketplace.js"),
    ),
    (
        "listing.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/listing.js"),
    ),
    (
        "profile.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/profile.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../assets/icon.svg"),
    ),
];

#[get("/assets/{name}")]
pub async fn asset(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(n, _, _)| *n == name.as_str()) {
        Some((_, content_type, body)) => HttpResponse::Ok()
            .content_type(*content_type)
            // Assets change with the binary; revalidating is cheap on loopback and never stale.
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(*body),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("no such asset"),
    }
}
