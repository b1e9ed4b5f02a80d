//! The same behaviour asked of both buses: ordered delivery to every subscriber, topics kept
//! apart, no delivery before subscribing, readiness. The Redis tests need Redis at
//! `SCRIP_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`) and fail when it is missing.

use std::sync::Arc;
use std::time::Duration;

use scrip_bus::{Bus, InProcessBus, RedisBus};
use tokio::sync::broadcast;

fn redis_url() -> String {
    std::env::var("SCRIP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A prefix of its own per test, so tests running at once never see each other's messages.
fn unique_prefix(test: &str) -> String {
    format!("scrip-test:{}:{test}:", std::process::id())
}

async fn redis_bus(test: &str) -> RedisBus {
    RedisBus::connect(&redis_url(), &unique_prefix(test))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "Redis must be running at {} for these tests: {e}",
                redis_url()
            )
        })
}

async fn next(receiver: &mut broadcast::Receiver<Arc<str>>) -> String {
    tokio::time::timeout(Duration::from_secs(5), receiver.recv())
        .await
        .expect("a message within 5 s")
        .expect("the channel is open")
        .to_string()
}

async fn ordered_to_every_subscriber(publisher: &dyn Bus, subscribers: [&dyn Bus; 2]) {
    let mut first = subscribers[0].subscribe("market.A-B");
    let mut second = subscribers[1].subscribe("market.A-B");
    let mut other = subscribers[0].subscribe("market.C-D");
    // Let a Redis subscription settle (pattern subscriptions are made at connect).
    tokio::time::sleep(Duration::from_millis(50)).await;
    for n in 0..2_000 {
        publisher.publish("market.A-B", Arc::from(n.to_string()));
    }
    publisher.publish("market.C-D", Arc::from("other"));
    for n in 0..2_000 {
        assert_eq!(next(&mut first).await, n.to_string());
        assert_eq!(next(&mut second).await, n.to_string());
    }
    assert_eq!(next(&mut other).await, "other", "topics are kept apart");
    publisher.ping().await.expect("ready");
}

#[tokio::test]
async fn in_process_delivers_in_order_to_every_subscriber() {
    let bus = InProcessBus::new();
    ordered_to_every_subscriber(&bus, [&bus, &bus]).await;
    assert_eq!(bus.kind(), "in-process");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_delivers_in_order_across_processes() {
    // Two connections stand for two processes: one publishes, both receive, in order.
    let publisher = redis_bus("order").await;
    let other_process = redis_bus("order").await;
    ordered_to_every_subscriber(&publisher, [&publisher, &other_process]).await;
    assert_eq!(publisher.kind(), "redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_prefixes_keep_deployments_apart() {
    let ours = redis_bus("ours").await;
    let theirs = redis_bus("theirs").await;
    let mut ours_sub = ours.subscribe("t");
    let mut theirs_sub = theirs.subscribe("t");
    tokio::time::sleep(Duration::from_millis(50)).await;
    theirs.publish("t", Arc::from("theirs"));
    ours.publish("t", Arc::from("ours"));
    assert_eq!(next(&mut ours_sub).await, "ours");
    assert_eq!(next(&mut theirs_sub).await, "theirs");
}

#[tokio::test]
async fn nothing_is_delivered_before_subscribing() {
    let bus = InProcessBus::new();
    bus.publish("t", Arc::from("early"));
    let mut late = bus.subscribe("t");
    bus.publish("t", Arc::from("late"));
    assert_eq!(next(&mut late).await, "late");
}

#[tokio::test]
async fn a_wrong_redis_url_fails_at_connect() {
    assert!(
        RedisBus::connect("redis://127.0.0.1:1", "x:")
            .await
            .is_err()
    );
}
