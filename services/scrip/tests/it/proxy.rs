//! The shipped proxy configuration (`deploy/proxy/nginx.conf`) run by a real nginx (Debian's
//! `nginx-light`; the test fails, never skips, without it) in front of a server and a second
//! order-book process, as `deploy/docker-compose.yml` runs it:
//! - clients behind the proxy keep budgets of their own (the server believes the proxy's
//!   `X-Forwarded-For` and nothing a client writes there), so one client's wrong logins lock
//!   nobody else out;
//! - an order sent to the process that does not own its market is resent to the owner and
//!   placed exactly once;
//! - the compose file and the Kubernetes config both name the proxy as trusted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Client, StatusCode};
use scrip::server::Services;
use scrip_store::Backend;
use serde_json::{Value, json};

use crate::app::{Limits, TestApp};

fn deploy_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// nginx serving the shipped configuration on a free port of 127.0.0.1, with every upstream
/// host of the compose file pointed at the given local servers. Stopped when dropped.
struct Nginx {
    child: Child,
    base: String,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// `upstreams`: compose host name (`gateway`, `orderbook-a`, ...) to `127.0.0.1:port`.
    async fn start(upstreams: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!("scrip-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("nginx dir");
        let mut site = deploy_file("proxy/nginx.conf")
            .replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
        for (host, local) in upstreams {
            let shipped = format!("server {host}:8080;");
            assert!(site.contains(&shipped), "nginx.conf has an upstream {host}");
            site = site.replace(&shipped, &format!("server {local};"));
        }
        let d = dir.display();
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{site}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).expect("write nginx.conf");
        let binary = std::env::var("NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".into());
        let child = Command::new(&binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {binary} ({e}): the proxy test needs Debian's nginx \
                     (apt-get install nginx-light; .ci/run does it)"
                )
            });
        let nginx = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: TempDir(dir.clone()),
        };
        let probe = Client::new();
        for _ in 0..100 {
            if probe
                .get(format!("{}/healthz", nginx.base))
                .send()
                .await
                .is_ok()
            {
                return nginx;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nginx did not start; see {}/error.log", dir.display());
    }
}

/// A client whose connections come from `address` (any of 127.0.0.0/8 on Linux), so nginx
/// sees clients at different addresses.
fn client_from(address: [u8; 4]) -> Client {
    Client::builder()
        .local_address(std::net::IpAddr::from(address))
        .build()
        .expect("client")
}

async fn post(
    client: &Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_shipped_proxy_clients_are_told_apart_and_orders_reach_their_market() {
    let limits = Limits {
        login_per_minute: 3,
        behind_local_proxy: true,
        ..Limits::default()
    };
    let app = TestApp::spawn_with(Backend::Postgres, limits).await;
    // The first process owns every market; the second refuses their orders with 503.
    let second = app.peer(Services::only_orderbook()).await;
    let first = app.base.trim_start_matches("http://").to_owned();
    let second = second.trim_start_matches("http://").to_owned();
    let nginx = Nginx::start(&[
        ("gateway", &first),
        ("issuer", &first),
        ("wallet", &first),
        ("clearing", &first),
        ("orderbook-a", &second),
        ("orderbook-b", &first),
    ])
    .await;
    let rosa = app.user("rosa").await;
    app.shop(&rosa, "bakery", "BREAD").await;
    app.shop(&rosa, "grocer", "GROC").await;
    let login = |client: Client, password: &'static str| {
        let url = format!("{}/api/v1/auth/login", nginx.base);
        async move {
            post(
                &client,
                url,
                None,
                json!({"handle": "rosa", "password": password}),
            )
            .await
            .0
        }
    };
    // Someone at 127.0.0.2 guesses rosa's password, even claiming to be elsewhere.
    let guesser = Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .default_headers(
            [(
                reqwest::header::HeaderName::from_static("x-forwarded-for"),
                reqwest::header::HeaderValue::from_static("198.51.100.1"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .expect("client");
    for _ in 0..3 {
        assert_eq!(
            login(guesser.clone(), "wrong guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(guesser.clone(), "wrong guess").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // rosa, at another address behind the same proxy, still logs in.
    assert_eq!(
        login(client_from([127, 0, 0, 3]), "correct horse battery").await,
        StatusCode::OK,
        "one client's guesses lock nobody else out"
    );

    // Orders through the proxy: those that reach the second process are resent to the owner.
    let (status, body) = post(
        &client_from([127, 0, 0, 3]),
        format!("{}/api/v1/markets", nginx.base),
        Some(&rosa),
        json!({"base": "BREAD", "quote": "GROC", "tick_size": "0.01", "lot_size": "1.00", "fee_bps": 0}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let trader = client_from([127, 0, 0, 4]);
    for n in 0..8 {
        let (status, body) = post(
            &trader,
            format!("{}/api/v1/orders", nginx.base),
            Some(&rosa),
            json!({"market": "BREAD-GROC", "side": "sell", "type": "limit", "price": format!("2.{n:02}"), "quantity": "1.00", "holder": "bakery"}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "order {n}: {body}");
    }
    let open = app
        .all_pages("/api/v1/orders?status=open&holder=bakery", Some(&rosa), 50)
        .await;
    assert_eq!(open.len(), 8, "each order placed exactly once");
    app.assert_audit_clean().await;
}

/// What the proxy test believes is also what the shipped deployments configure.
#[test]
fn the_shipped_deployments_trust_their_proxy() {
    let compose = deploy_file("docker-compose.yml");
    let trusted = compose
        .lines()
        .find_map(|l| l.trim().strip_prefix("SCRIP_TRUSTED_PROXIES:"))
        .expect("docker-compose.yml sets SCRIP_TRUSTED_PROXIES")
        .trim()
        .to_owned();
    let proxy_address = compose
        .lines()
        .find_map(|l| l.split("ipv4_address:").nth(1))
        .expect("the proxy has a fixed address")
        .trim()
        .trim_end_matches('}')
        .trim()
        .to_owned();
    let network = scrip_http::TrustedProxies::parse_entry(&trusted).expect("an address");
    assert!(
        network.contains(&proxy_address.parse::<std::net::IpAddr>().expect("address")),
        "{trusted} covers the proxy at {proxy_address}"
    );
    let k8s = deploy_file("k8s/config.yaml");
    let entry = k8s
        .lines()
        .find_map(|l| l.trim().strip_prefix("SCRIP_TRUSTED_PROXIES:"))
        .expect("k8s/config.yaml sets SCRIP_TRUSTED_PROXIES");
    scrip_http::TrustedProxies::parse_entry(entry.trim().trim_matches('"')).expect("a network");
}

/// With an internal metrics address (as the shipped deployments configure), `/metrics` is
/// not served where the proxy sends the public, only there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_kept_off_the_public_address() {
    let limits = Limits {
        metrics_apart: true,
        ..Limits::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, limits).await;
    let (status, _) = app.get("/metrics", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let internal = app.metrics_base().expect("a metrics address");
    let text = app
        .client
        .get(format!("{internal}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(text.contains("scrip_http_requests_total"), "{text}");
    for shipped in ["docker-compose.yml", "k8s/config.yaml"] {
        assert!(
            deploy_file(shipped).contains("SCRIP_METRICS_LISTEN"),
            "{shipped} keeps metrics internal"
        );
    }
}
