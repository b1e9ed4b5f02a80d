//! The marketplace: listings of what people and businesses offer and want, found by a
//! full-text index on both backends ([`search`]); deals on them paid through the payments
//! with conversion, once ([`deals`]); and the feedback both sides leave, which makes each
//! principal's public reputation ([`feedback`], [`reputation`], [`profile`]); and new
//! coinage, the registry's fund paying part of a newcomer's first purchases ([`onboarding`]).
//!
//! Deals move money only through the exchange's payment executor, which runs the ledger's
//! rules: so its routes are served where the markets are (the order-book service).

pub mod deals;
pub mod feedback;
pub mod listings;
pub mod onboarding;
pub mod profile;
pub mod reputation;
pub mod search;

use actix_web::web;
use utoipa::OpenApi;

/// Mounts the listings, search and profiles (read or written without moving money).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(listings::create_listing)
        .service(listings::search_listings)
        .service(listings::listing_matches)
        .service(listings::get_listing)
        .service(listings::update_listing)
        .service(listings::withdraw_listing)
        .service(deals::list_deals)
        .service(deals::get_deal)
        .service(feedback::give_feedback)
        .service(feedback::change_feedback)
        .service(profile::profile)
        .service(onboarding::fund_view);
}

/// Mounts the routes that pay (deals), which need the markets: where the exchange runs.
pub fn configure_payments(cfg: &mut web::ServiceConfig) {
    cfg.service(deals::create_deal).service(deals::pay_deal);
}

#[derive(OpenApi, Debug)]
#[openapi(
    paths(
        listings::create_listing, listings::search_listings, listings::get_listing,
        listings::update_listing, listings::withdraw_listing, listings::listing_matches,
        deals::create_deal, deals::pay_deal, deals::list_deals, deals::get_deal,
        feedback::give_feedback, feedback::change_feedback, profile::profile,
        onboarding::fund_view,
    ),
    components(schemas(
        listings::NewListing, listings::ListingChange, listings::PriceInput, listings::PriceView,
        listings::ListingView, listings::ListingPage, reputation::Reputation,
        deals::NewDeal, deals::PayDeal, deals::DealView, deals::DealCreated, deals::DealList,
        feedback::NewFeedback, feedback::FeedbackView, profile::ProfileView, profile::RatingView,
        onboarding::FundView,
    )),
    tags((name = "marketplace", description = "Offers and wants, deals, feedback and reputation"))
)]
pub struct MarketplaceApi;
