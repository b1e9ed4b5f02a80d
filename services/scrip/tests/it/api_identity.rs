//! Sign-up, login, `/me`, and every way a token can be wrong.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use scrip_store::Backend;
use serde_json::json;

use crate::app::{Limits, TestApp, assert_problem};

crate::on_both_backends!(
    sign_up_log_in_and_see_yourself,
    every_bad_token_is_401_and_changes_nothing,
    logins_are_rate_limited,
    one_address_trying_many_handles_is_rate_limited,
    refresh_tokens_rotate_and_a_copy_ends_the_session,
    the_page_session_renews_itself_and_log_out_ends_it,
    a_password_change_and_a_logout_end_sessions_on_every_process_at_once,
);

async fn sign_up_log_in_and_see_yourself(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = app
        .post("/api/v1/auth/register", None, json!({"handle": "alice", "password": "correct horse battery", "display_name": "Alice"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["handle"].as_str(), body["address"].as_str()),
        (Some("alice"), Some("alice@local"))
    );
    assert!(body["id"].is_string());

    let taken = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"handle": "alice", "password": "another long one"}),
        )
        .await;
    assert_problem(&taken, StatusCode::CONFLICT, "handle_taken");
    // Reserved names and look-alikes of existing ones are refused.
    for look_alike in ["registry", "registry-fees", "carol.", "car..ol"] {
        let reserved = app
            .post(
                "/api/v1/auth/register",
                None,
                json!({"handle": look_alike, "password": "another long one"}),
            )
            .await;
        assert_problem(&reserved, StatusCode::UNPROCESSABLE_ENTITY, "bad_handle");
    }
    let invisible = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"handle": "mallory", "password": "another long one", "display_name": "Bob\u{202E}gnp.exe"}),
        )
        .await;
    assert_problem(&invisible, StatusCode::UNPROCESSABLE_ENTITY, "bad_name");
    let weak = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"handle": "bob", "password": "short"}),
        )
        .await;
    assert_problem(&weak, StatusCode::UNPROCESSABLE_ENTITY, "weak_password");
    let bad = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"handle": "Bob!", "password": "long enough pass"}),
        )
        .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "bad_handle");
    let unicode = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"handle": "jösé", "password": "long enough pass"}),
        )
        .await;
    assert_problem(&unicode, StatusCode::UNPROCESSABLE_ENTITY, "bad_handle");

    let wrong = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"handle": "alice", "password": "wrong password!"}),
        )
        .await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED, "bad_credentials");
    let unknown = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"handle": "nobody", "password": "wrong password!"}),
        )
        .await;
    assert_eq!(
        unknown, wrong,
        "an unknown handle gets the very same answer"
    );

    let (status, login) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"handle": "alice@local", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["expires_in"], 600);
    let token = login["access_token"].as_str().expect("token");
    let (status, me) = app.get("/api/v1/me", Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["handle"], "alice");
    assert_eq!(me["address"], "alice@local");
    assert_eq!(me["roles"], json!([]));
    assert_eq!(me["businesses"], json!([]));

    app.post(
        "/api/v1/businesses",
        Some(token),
        json!({"handle": "alices-cafe", "name": "Alice's Café"}),
    )
    .await;
    let (_, me) = app.get("/api/v1/me", Some(token)).await;
    assert_eq!(
        me["businesses"],
        json!([{"handle": "alices-cafe", "role": "owner"}])
    );
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    sub: &'a str,
    handle: &'a str,
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    exp: u64,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn sign(pem: &str, claims: &Claims<'_>) -> String {
    let key = EncodingKey::from_ed_pem(pem.as_bytes()).expect("key");
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &key).expect("sign")
}

async fn every_bad_token_is_401_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.user("owner").await;
    app.user("victim").await;
    app.shop(&owner, "shop", "SHOP").await;
    let (_, me) = app.get("/api/v1/me", Some(&owner)).await;
    let owner_id = me["id"].as_str().expect("id").to_owned();

    let private_pem =
        std::fs::read_to_string(app.data_dir.join("jwt-ed25519-private.pem")).expect("server key");
    let other_dir = app.data_dir.join("other");
    let other_pem = scrip_auth::load_or_create_keys(&other_dir)
        .expect("other key")
        .private_pem;
    let good = |iss, aud, exp| Claims {
        sub: &owner_id,
        handle: "owner",
        iss,
        aud,
        iat: now(),
        nbf: None,
        exp,
    };

    let expired = sign(
        &private_pem,
        &good("scrip-gateway", "scrip-api", now() - 3_600),
    );
    let wrong_audience = sign(
        &private_pem,
        &good("scrip-gateway", "someone-else", now() + 600),
    );
    let wrong_issuer = sign(&private_pem, &good("evil", "scrip-api", now() + 600));
    let wrong_key = sign(&other_pem, &good("scrip-gateway", "scrip-api", now() + 600));
    let valid = sign(
        &private_pem,
        &good("scrip-gateway", "scrip-api", now() + 600),
    );
    let (status, _) = app.get("/api/v1/me", Some(&valid)).await;
    assert_eq!(status, StatusCode::OK, "the forging recipe itself is right");

    let parts: Vec<&str> = valid.split('.').collect();
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{}.", parts[1]);
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    payload["sub"] = json!("999999");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );

    // Well signed, but for no principal here, for another's handle, or not valid yet.
    let nobody = sign(
        &private_pem,
        &Claims {
            sub: "999999",
            ..good("scrip-gateway", "scrip-api", now() + 600)
        },
    );
    let other_handle = sign(
        &private_pem,
        &Claims {
            handle: "victim",
            ..good("scrip-gateway", "scrip-api", now() + 600)
        },
    );
    let not_yet = sign(
        &private_pem,
        &Claims {
            nbf: Some(now() + 600),
            ..good("scrip-gateway", "scrip-api", now() + 1_200)
        },
    );

    let before = app.transfer_count().await;
    // Each refusal says why in the service's words, never the token library's internals.
    for (what, token, detail) in [
        (
            "expired",
            expired.as_str(),
            "the token has expired; log in again",
        ),
        (
            "wrong audience",
            &wrong_audience,
            "the token was not issued for this service",
        ),
        (
            "wrong issuer",
            &wrong_issuer,
            "the token was not issued for this service",
        ),
        (
            "wrong key",
            &wrong_key,
            "the token's signature does not verify",
        ),
        ("alg none", &alg_none, "not a valid access token"),
        (
            "tampered payload",
            &tampered,
            "the token's signature does not verify",
        ),
        ("garbage", "not.a.token", "not a valid access token"),
        (
            "no such principal",
            &nobody,
            "the account this token names does not exist here; log in again",
        ),
        (
            "another principal's handle",
            &other_handle,
            "the account this token names does not exist here; log in again",
        ),
        ("not valid yet", &not_yet, "the token is not valid yet"),
        ("empty", "", ""),
    ] {
        let me = app.get("/api/v1/me", Some(token)).await;
        assert_problem(&me, StatusCode::UNAUTHORIZED, "unauthorized");
        if !detail.is_empty() {
            assert_eq!(me.1["detail"], detail, "{what}");
        }
        let pay = app
            .pay(
                token,
                json!({"from": "shop", "to": "victim", "currency": "SHOP", "amount": "5.00"}),
            )
            .await;
        assert_eq!(pay.0, StatusCode::UNAUTHORIZED, "{what}: {}", pay.1);
    }
    let missing = app.get("/api/v1/accounts", None).await;
    assert_problem(&missing, StatusCode::UNAUTHORIZED, "unauthorized");
    let basic = app
        .client
        .get(format!("{}/api/v1/me", app.base))
        .header("authorization", "Basic b3duZXI6cGFzcw==")
        .send()
        .await
        .expect("sent");
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.transfer_count().await, before, "nothing changed");
}

/// One client trying many handles runs out of its address's budget (each made-up handle
/// would otherwise get a budget of its own, and a full password hash each).
async fn one_address_trying_many_handles_is_rate_limited(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Limits {
            login_per_address_per_minute: 3,
            ..Limits::default()
        },
    )
    .await;
    for attempt in 0..3 {
        let wrong = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"handle": format!("nobody{attempt}"), "password": "guess guess guess"}),
            )
            .await;
        assert_problem(&wrong, StatusCode::UNAUTHORIZED, "bad_credentials");
    }
    let limited = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"handle": "nobody-else", "password": "guess guess guess"}),
        )
        .await;
    assert_problem(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}

async fn logins_are_rate_limited(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Limits {
            login_per_minute: 3,
            ..Limits::default()
        },
    )
    .await;
    app.post(
        "/api/v1/auth/register",
        None,
        json!({"handle": "carol", "password": "correct horse battery"}),
    )
    .await;
    for _ in 0..3 {
        let wrong = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"handle": "carol", "password": "guess guess guess"}),
            )
            .await;
        assert_problem(&wrong, StatusCode::UNAUTHORIZED, "bad_credentials");
    }
    let limited = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"handle": "carol", "password": "correct horse battery"}),
        )
        .await;
    assert_problem(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}

/// Sessions last: a login's refresh token buys the next access token and refresh token,
/// once; a refresh token seen again (a copy) ends the whole session, except for the same
/// browser's tabs racing in one instant; a session ends 30 days after its login at the latest.
async fn refresh_tokens_rotate_and_a_copy_ends_the_session(backend: Backend) {
    use scrip_auth::sessions::{self, Refused, SESSION_LIFETIME_US};
    let app = TestApp::spawn(backend).await;
    app.user("rosa").await;
    let (status, login) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"handle": "rosa", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let first = login["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let (status, renewed) = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": first}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let access = renewed["access_token"].as_str().expect("access");
    let (status, me) = app.get("/api/v1/me", Some(access)).await;
    assert_eq!(
        (status, me["handle"].as_str()),
        (StatusCode::OK, Some("rosa"))
    );
    assert_ne!(renewed["refresh_token"], first.as_str(), "rotated");
    // The same token again at once: another tab of the same browser, not a copy.
    let raced = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": first}),
        )
        .await;
    assert_problem(&raced, StatusCode::CONFLICT, "refresh_raced");
    let unknown = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": "made-up"}),
        )
        .await;
    assert_problem(&unknown, StatusCode::UNAUTHORIZED, "unauthorized");

    // The rules at other times, on the store itself.
    let pool = app.db.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("conn");
        let rosa = scrip_ledger::principal_by_handle(
            &mut conn,
            &scrip_domain::Handle::parse("rosa").expect("handle"),
        )
        .expect("rosa")
        .id;
        let t0 = 1_000_000_000_000_000;
        let (session, a) = sessions::open(&mut conn, rosa, t0).expect("open");
        let (who, same, b) = sessions::rotate(&mut conn, &a, t0 + 1_000_000)
            .expect("db")
            .expect("rotated");
        assert_eq!((who, same), (rosa, session));
        assert!(sessions::is_live(&mut conn, session, t0 + 1_000_000).expect("db"));
        assert_eq!(
            sessions::rotate(&mut conn, &a, t0 + 2_000_000).expect("db"),
            Err(Refused::Raced)
        );
        // Seen again later: a copy. The session ends, its newest token with it.
        assert_eq!(
            sessions::rotate(&mut conn, &a, t0 + 60_000_000).expect("db"),
            Err(Refused::Reused { session })
        );
        assert_eq!(
            sessions::rotate(&mut conn, &b, t0 + 61_000_000).expect("db"),
            Err(Refused::Ended)
        );
        assert!(!sessions::is_live(&mut conn, session, t0 + 61_000_000).expect("db"));
        let (_, old) = sessions::open(&mut conn, rosa, t0).expect("open");
        assert_eq!(
            sessions::rotate(&mut conn, &old, t0 + SESSION_LIFETIME_US).expect("db"),
            Err(Refused::Ended),
            "30 days after the login at the latest"
        );
    })
    .await
    .expect("store checks");
}

/// The pages' session: the form login sets the refresh cookie (sent to /api/v1/auth only),
/// a refresh by that cookie needs the CSRF header and renews both cookies, and Log out ends
/// the session so its refresh token buys nothing more.
async fn the_page_session_renews_itself_and_log_out_ends_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("olive").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = client
        .post(format!("{}/login", app.base))
        .form(&[("handle", "olive"), ("password", "correct horse battery")])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie_of = |response: &reqwest::Response, name: &str| -> String {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} cookie"))
            .to_owned()
    };
    let refresh_cookie = cookie_of(&login, "scrip_refresh");
    assert!(
        refresh_cookie.contains("Path=/api/v1/auth") && refresh_cookie.contains("HttpOnly"),
        "{refresh_cookie}"
    );
    let pair = |cookie: &str| cookie.split(';').next().expect("pair").to_owned();
    let refresh = |cookie: String, csrf: bool| {
        let mut request = client
            .post(format!("{}/api/v1/auth/refresh", app.base))
            .header("cookie", cookie);
        if csrf {
            request = request.header("x-scrip-csrf", "1");
        }
        request.send()
    };
    let forged = refresh(pair(&refresh_cookie), false)
        .await
        .expect("refresh");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let renewed = refresh(pair(&refresh_cookie), true).await.expect("refresh");
    assert_eq!(renewed.status(), StatusCode::OK);
    let session = pair(&cookie_of(&renewed, "scrip_session"));
    let next_refresh = pair(&cookie_of(&renewed, "scrip_refresh"));
    let me = client
        .get(format!("{}/api/v1/me", app.base))
        .header("cookie", &session)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::OK);
    let logout = client
        .post(format!("{}/api/v1/auth/logout", app.base))
        .header("cookie", &next_refresh)
        .form(&[("x", "")])
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let after = refresh(next_refresh, true).await.expect("refresh");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED, "logged out");
    // The access token of the ended session stops working at once, not 15 minutes later.
    let me = client
        .get(format!("{}/api/v1/me", app.base))
        .header("cookie", &session)
        .send()
        .await
        .expect("me");
    assert_eq!(
        me.status(),
        StatusCode::UNAUTHORIZED,
        "its access token is dead too"
    );
}

/// Two processes (a full server and a wallet-only one) on one database and one Redis: a
/// password change signs every other session out, and a logout ends its own, at once on
/// both (not after the verifier's recheck interval).
async fn a_password_change_and_a_logout_end_sessions_on_every_process_at_once(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Limits {
            redis: true,
            ..Default::default()
        },
    )
    .await;
    let wallet = app.peer(scrip::server::Services::only_wallet()).await;
    let first = app.user("alice").await;
    let phone = app.login("alice", "correct horse battery").await;
    let laptop = app.login("alice", "correct horse battery").await;
    let client = reqwest::Client::new();
    let accounts_on = |base: &str, token: &str| {
        client
            .get(format!("{base}/api/v1/accounts"))
            .bearer_auth(token)
            .send()
    };
    // Both sessions are known live on both processes.
    for token in [&phone, &laptop] {
        for base in [&app.base, &wallet] {
            let answer = accounts_on(base, token).await.expect("accounts");
            assert_eq!(answer.status(), StatusCode::OK);
        }
    }

    let wrong = app
        .post(
            "/api/v1/auth/password",
            Some(&phone),
            json!({"current": "not my password", "new": "a brand new secret"}),
        )
        .await;
    assert_problem(&wrong, StatusCode::UNPROCESSABLE_ENTITY, "bad_credentials");
    assert_eq!(wrong.1["field"], "current");
    let weak = app
        .post(
            "/api/v1/auth/password",
            Some(&phone),
            json!({"current": "correct horse battery", "new": "short"}),
        )
        .await;
    assert_problem(&weak, StatusCode::UNPROCESSABLE_ENTITY, "weak_password");
    assert_eq!(weak.1["field"], "new");
    let (status, changed) = app
        .post(
            "/api/v1/auth/password",
            Some(&phone),
            json!({"current": "correct horse battery", "new": "a brand new secret"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    // The sign-up's session and the laptop's.
    assert_eq!(changed["signed_out_sessions"], 2);
    assert_eq!(
        accounts_on(&app.base, &first)
            .await
            .expect("accounts")
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // The laptop is signed out everywhere at once: the announcement crossed Redis.
    let on_wallet = status_once_refused(&client, &wallet, &laptop).await;
    // Within 2 s, while the wallet process would still trust its cache of live sessions
    // for SESSION_RECHECK (5 s): only the announcement can have ended it there.
    assert_eq!(
        on_wallet,
        StatusCode::UNAUTHORIZED,
        "the wallet process refuses the laptop"
    );
    let here = accounts_on(&app.base, &laptop).await.expect("accounts");
    assert_eq!(here.status(), StatusCode::UNAUTHORIZED);
    // The phone, which changed it, stays signed in; the old password no longer logs in.
    assert_eq!(
        accounts_on(&wallet, &phone)
            .await
            .expect("accounts")
            .status(),
        StatusCode::OK
    );
    let old = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"handle": "alice", "password": "correct horse battery"}),
        )
        .await;
    assert_problem(&old, StatusCode::UNAUTHORIZED, "bad_credentials");

    // A logout with the access token ends that session on both processes too.
    let out = client
        .post(format!("{}/api/v1/auth/logout", app.base))
        .bearer_auth(&phone)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let on_wallet = status_once_refused(&client, &wallet, &phone).await;
    assert_eq!(
        on_wallet,
        StatusCode::UNAUTHORIZED,
        "logged out on the wallet process"
    );
}

/// `GET /accounts` on `base` with `token` until it is refused, for at most 2 s (the
/// announcement of an ended session crosses Redis in milliseconds); the last status.
async fn status_once_refused(client: &reqwest::Client, base: &str, token: &str) -> StatusCode {
    let started = std::time::Instant::now();
    loop {
        let status = client
            .get(format!("{base}/api/v1/accounts"))
            .bearer_auth(token)
            .send()
            .await
            .expect("accounts")
            .status();
        if status != StatusCode::OK || started.elapsed() > std::time::Duration::from_secs(2) {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
