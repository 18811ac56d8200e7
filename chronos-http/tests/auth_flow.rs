//! The auth routes over real HTTP on the in-memory services: register, login, me,
//! refresh and logout with their exact bodies; validation; duplicate and
//! case-insensitive emails; credentials errors; every kind of bad token.

#![allow(clippy::unwrap_used, reason = "tests panic on the unexpected")]

mod auth_support;

use std::collections::HashSet;

use auth_support::{
    Answer, PASSWORD, SECRET, TestApp, assert_error, assert_timestamp, email, keys, roomy, spawn,
};
use chronos_http::auth::Passwords;
use chronos_http::state::{AppState, Services};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// A throwaway RSA key made for this test only (it signs tokens the API must refuse).
const TEST_RSA_KEY: &str = include_str!("auth_support/test_only_rsa_key.pem");

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    user_id: String,
    email: String,
    iat: i64,
    exp: i64,
    jti: String,
}

fn decode(token: &str) -> Claims {
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 0;
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(SECRET).unwrap(), &v)
        .unwrap()
        .claims
}

fn claims_for(user_id: &str, email: &str, iat: i64, exp: i64) -> Claims {
    Claims {
        sub: user_id.to_owned(),
        user_id: user_id.to_owned(),
        email: email.to_owned(),
        iat,
        exp,
        jti: Uuid::new_v4().to_string(),
    }
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &impl Serialize) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn me(app: &TestApp, token: &str) -> Answer {
    app.authed(Method::GET, "/auth/me", token).await
}

#[tokio::test(flavor = "multi_thread")]
async fn register_login_me_refresh_logout() {
    let app = spawn(roomy()).await;

    // Register: 201, the documented body, the address normalized.
    let raw = format!("  New.User+{}@Example.COM ", Uuid::new_v4().simple());
    let address = raw.trim().to_lowercase();
    let a = app
        .post_json(
            "/auth/register",
            &json!({"email": raw, "password": PASSWORD}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    assert_eq!(keys(&a.body), ["data", "message", "success"]);
    assert_eq!(a.body["success"], json!(true));
    assert_eq!(a.body["message"], json!("User registered successfully"));
    let data = &a.body["data"];
    assert_eq!(
        keys(data),
        ["email", "expires_in", "token", "user", "user_id"]
    );
    assert_eq!(keys(&data["user"]), ["created_at", "email", "id"]);
    let id = data["user"]["id"].as_str().unwrap().to_owned();
    Uuid::parse_str(&id).unwrap();
    assert_eq!(data["user"]["email"], json!(address));
    assert_timestamp(&data["user"]["created_at"]);
    assert_eq!(data["user_id"], json!(id));
    assert_eq!(data["email"], json!(address));
    assert_eq!(data["expires_in"], json!(86400));
    let registered_token = data["token"].as_str().unwrap().to_owned();
    let claims = decode(&registered_token);
    assert_eq!(claims.sub, id);
    assert_eq!(claims.user_id, id);
    assert_eq!(claims.email, address);
    assert_eq!(claims.exp - claims.iat, 86400);
    assert!((claims.iat - now()).abs() < 60);
    assert_eq!(Uuid::parse_str(&claims.jti).unwrap().get_version_num(), 4);

    // Login, in another case: 200, the same shape, a token of its own.
    let a = app
        .post_json(
            "/auth/login",
            &json!({"email": address.to_uppercase(), "password": PASSWORD}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(keys(&a.body), ["data", "message", "success"]);
    assert_eq!(a.body["message"], json!("Login successful"));
    let data = &a.body["data"];
    assert_eq!(
        keys(data),
        ["email", "expires_in", "token", "user", "user_id"]
    );
    assert_eq!(keys(&data["user"]), ["created_at", "email", "id"]);
    assert_eq!(data["user"]["id"], json!(id));
    assert_eq!(data["user_id"], json!(id));
    assert_eq!(data["email"], json!(address));
    assert_eq!(data["expires_in"], json!(86400));
    let token = data["token"].as_str().unwrap().to_owned();
    assert_ne!(decode(&token).jti, claims.jti);

    // Me.
    let a = me(&app, &token).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(keys(&a.body), ["data", "success"]);
    assert_eq!(a.body["success"], json!(true));
    assert_eq!(
        keys(&a.body["data"]),
        ["created_at", "email", "id", "updated_at"]
    );
    assert_eq!(a.body["data"]["id"], json!(id));
    assert_eq!(a.body["data"]["email"], json!(address));
    assert_timestamp(&a.body["data"]["updated_at"]);

    // Refresh: a new token; the old one is revoked.
    let a = app.authed(Method::POST, "/auth/refresh", &token).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(keys(&a.body), ["data", "message", "success"]);
    assert_eq!(a.body["message"], json!("Token refreshed successfully"));
    assert_eq!(keys(&a.body["data"]), ["expires_in", "token"]);
    assert_eq!(a.body["data"]["expires_in"], json!(86400));
    let refreshed = a.body["data"]["token"].as_str().unwrap().to_owned();
    assert_ne!(refreshed, token);
    assert_eq!(decode(&refreshed).sub, id);
    assert_error(
        &me(&app, &token).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_REVOKED",
    );
    assert_error(
        &app.authed(Method::POST, "/auth/refresh", &token).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_REVOKED",
    );
    assert_eq!(me(&app, &refreshed).await.status, StatusCode::OK);

    // Logout, with no body and no Content-Type, as the original frontend sends it.
    let a = app.authed(Method::POST, "/auth/logout", &refreshed).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(
        a.body,
        json!({"success": true, "message": "Logged out successfully"})
    );
    for (method, path) in [
        (Method::GET, "/auth/me"),
        (Method::POST, "/auth/logout"),
        (Method::POST, "/auth/refresh"),
        (Method::GET, "/jobs"),
        (Method::GET, "/dashboard/stats"),
    ] {
        assert_error(
            &app.authed(method, path, &refreshed).await,
            StatusCode::UNAUTHORIZED,
            "TOKEN_REVOKED",
        );
    }
    // The registration's token is a session of its own, still alive.
    assert_eq!(me(&app, &registered_token).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_ignores_a_body() {
    let app = spawn(roomy()).await;
    let token = app.token(&email()).await;
    let a = app
        .send(
            app.request(Method::POST, "/api/v1/auth/logout")
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_is_validated() {
    let app = spawn(roomy()).await;
    let fields = |a: &Answer| -> Vec<(String, String)> {
        assert_error(a, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        a.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(keys(e), ["field", "message"]);
                (
                    e["field"].as_str().unwrap().to_owned(),
                    e["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let register = |body: Value| {
        let app = &app;
        async move { app.post_json("/auth/register", &body).await }
    };

    let a = register(json!({})).await;
    let f = fields(&a);
    assert_eq!(
        f,
        [
            ("email".to_owned(), "is required".to_owned()),
            ("password".to_owned(), "is required".to_owned())
        ]
    );
    for bad in ["not-an-email", "a@b", "@example.com", "a b@example.com", ""] {
        let a = register(json!({"email": bad, "password": PASSWORD})).await;
        let f = fields(&a);
        assert_eq!(f.len(), 1, "{bad}: {f:?}");
        assert_eq!(f[0].0, "email", "{bad}");
    }
    for (bad, why) in [
        ("Sh0rt", "at least 8"),
        ("alllowercase1", "upper-case"),
        ("ALLUPPERCASE1", "lower-case"),
        ("NoDigitsHere", "digit"),
    ] {
        let a = register(json!({"email": email(), "password": bad})).await;
        let f = fields(&a);
        assert_eq!(f.len(), 1, "{bad}: {f:?}");
        assert_eq!(f[0].0, "password");
        assert!(f[0].1.contains(why), "{bad}: {}", f[0].1);
    }
    let long = format!("Aa1{}", "x".repeat(126));
    let a = register(json!({"email": email(), "password": long})).await;
    assert!(fields(&a)[0].1.contains("at most 128"));
    // Both fields wrong: both named.
    let a = register(json!({"email": "nope", "password": "weak"})).await;
    let named: Vec<String> = fields(&a).into_iter().map(|(f, _)| f).collect();
    assert_eq!(named, ["email", "password"]);
    // Wrong types.
    let a = register(json!({"email": 42, "password": PASSWORD})).await;
    assert_eq!(fields(&a)[0].0, "email");
    let a = register(json!(["a", "b"])).await;
    assert_error(&a, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    // Not JSON, or no body.
    for body in ["{\"email\": ", "", "email=a@example.com"] {
        let a = app
            .send(
                app.request(Method::POST, "/api/v1/auth/register")
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        assert_error(&a, StatusCode::BAD_REQUEST, "INVALID_JSON");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn emails_are_unique_case_insensitively() {
    let app = spawn(roomy()).await;
    let address = email();
    app.register(&address).await;
    for spelling in [
        address.clone(),
        address.to_uppercase(),
        format!(" {address} "),
    ] {
        let a = app
            .post_json(
                "/auth/register",
                &json!({"email": spelling, "password": PASSWORD}),
            )
            .await;
        assert_error(&a, StatusCode::CONFLICT, "EMAIL_EXISTS");
    }
    // Login in any case.
    let data = app.login(&address.to_uppercase()).await;
    assert_eq!(data["email"], json!(address));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_registrations_of_one_address_have_one_winner() {
    let app = spawn(roomy()).await;
    let address = email();
    let body = json!({"email": address, "password": PASSWORD});
    let upper = json!({"email": address.to_uppercase(), "password": PASSWORD});
    let (a, b) = tokio::join!(
        app.post_json("/auth/register", &body),
        app.post_json("/auth/register", &upper)
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{:?} {:?}", a.body, b.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_and_unknown_email_are_the_same_401() {
    let app = spawn(roomy()).await;
    let address = email();
    app.register(&address).await;
    let wrong = app
        .post_json(
            "/auth/login",
            &json!({"email": address, "password": "WrongPass123!"}),
        )
        .await;
    let unknown = app
        .post_json(
            "/auth/login",
            &json!({"email": email(), "password": PASSWORD}),
        )
        .await;
    let too_long = app
        .post_json(
            "/auth/login",
            &json!({"email": address, "password": "A1a".repeat(100)}),
        )
        .await;
    for a in [&wrong, &unknown, &too_long] {
        assert_error(a, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let strip = |a: &Answer| {
        let mut body = a.body.clone();
        body.as_object_mut().unwrap().remove("timestamp");
        body
    };
    assert_eq!(strip(&wrong), strip(&unknown));
    assert_eq!(strip(&wrong), strip(&too_long));
    // Login does not apply the registration's password rules, only presence.
    let a = app
        .post_json("/auth/login", &json!({"email": address, "password": ""}))
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let a = app
        .post_json(
            "/auth/login",
            &json!({"email": address, "password": "weak"}),
        )
        .await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tokens_get_the_right_401() {
    let app = spawn(roomy()).await;
    let address = email();
    let data = app.register(&address).await;
    let token = data["token"].as_str().unwrap().to_owned();
    let id = data["user_id"].as_str().unwrap().to_owned();
    let other = app.token(&email()).await;
    let hs256 = EncodingKey::from_secret(SECRET).unwrap();
    let valid = claims_for(&id, &address, now(), now() + 3600);
    // A token of ours, crafted: accepted (so the crafting is right).
    let crafted = sign(Algorithm::HS256, &hs256, &valid);
    assert_eq!(me(&app, &crafted).await.status, StatusCode::OK);

    let parts: Vec<&str> = token.split('.').collect();
    let other_parts: Vec<&str> = other.split('.').collect();
    let swapped_payload = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
    let mut flipped = token.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let alg_none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(&serde_json::to_vec(&valid).unwrap())
    );
    let alg_none_signed = format!("{alg_none}{}", parts[2]);
    let rs256 = sign(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(TEST_RSA_KEY.as_bytes()).unwrap(),
        &valid,
    );
    let hs512 = sign(
        Algorithm::HS512,
        &EncodingKey::from_secret(SECRET).unwrap(),
        &valid,
    );
    let other_secret = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret-another-secret-an").unwrap(),
        &valid,
    );
    let expired_forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret-another-secret-an").unwrap(),
        &claims_for(&id, &address, now() - 7200, now() - 3600),
    );
    let not_a_uuid = sign(
        Algorithm::HS256,
        &hs256,
        &claims_for("42", &address, now(), now() + 3600),
    );
    let mismatched = {
        let mut c = claims_for(&id, &address, now(), now() + 3600);
        c.user_id = Uuid::new_v4().to_string();
        sign(Algorithm::HS256, &hs256, &c)
    };
    let no_exp = sign(
        Algorithm::HS256,
        &hs256,
        &json!({"sub": id, "user_id": id, "email": address, "iat": now(), "jti": "x"}),
    );
    for (what, bad) in [
        ("payload swapped", swapped_payload.as_str()),
        ("signature flipped", &flipped),
        ("alg none", &alg_none),
        ("alg none with a signature", &alg_none_signed),
        ("RS256", &rs256),
        ("HS512", &hs512),
        ("another secret", &other_secret),
        ("expired and forged", &expired_forged),
        ("sub not a uuid", &not_a_uuid),
        ("user_id differs from sub", &mismatched),
        ("no exp", &no_exp),
        ("garbage", "garbage"),
        ("three parts", "a.b.c"),
    ] {
        let a = app
            .send(
                app.request(Method::GET, "/api/v1/auth/me")
                    .header("authorization", format!("Bearer {bad}")),
            )
            .await;
        assert_eq!(
            a.body["code"],
            json!("INVALID_TOKEN"),
            "{what}: {:?}",
            a.body
        );
        assert_error(&a, StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
    }

    // Expired, signed by us: TOKEN_EXPIRED (no leeway).
    let expired = sign(
        Algorithm::HS256,
        &hs256,
        &claims_for(&id, &address, now() - 7200, now() - 1),
    );
    assert_error(
        &me(&app, &expired).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_EXPIRED",
    );

    // No or an ill-formed header: UNAUTHORIZED.
    let a = app.send(app.request(Method::GET, "/api/v1/auth/me")).await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    for header in [
        format!("Basic {}", b64url(b"user:pass")),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        token.clone(),
        format!("Token {token}"),
        "Bearer ünïcödé".to_owned(),
    ] {
        let a = app
            .send(
                app.request(Method::GET, "/api/v1/jobs")
                    .header("authorization", header.clone()),
            )
            .await;
        assert_error(&a, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    // The scheme is case-insensitive.
    let a = app
        .send(
            app.request(Method::GET, "/api/v1/auth/me")
                .header("authorization", format!("bearer {token}")),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_whose_user_is_gone_is_not_authenticated() {
    // Tokens of a process whose users are in another store (say, a restarted
    // in-memory service with a fixed secret).
    let app = spawn(roomy()).await;
    let token = app.token(&email()).await;
    let fresh = spawn(roomy()).await;
    assert_error(
        &me(&fresh, &token).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn owasp_parameters_end_to_end() {
    let services = Services::builder(auth_support::chronos().await)
        .passwords(Passwords::owasp())
        .settings(roomy())
        .build()
        .unwrap();
    let app = auth_support::serve_state(AppState::new(services)).await;
    let address = email();
    app.register(&address).await;
    app.login(&address).await;
    let a = app
        .post_json(
            "/auth/login",
            &json!({"email": email(), "password": PASSWORD}),
        )
        .await;
    assert_error(&a, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    // A random secret: tokens of the test secret are refused.
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET).unwrap(),
        &claims_for(&Uuid::new_v4().to_string(), &address, now(), now() + 60),
    );
    assert_error(
        &me(&app, &forged).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    );
}

#[test]
fn token_ids_are_unique() {
    let tokens =
        chronos_http::auth::Tokens::new(SECRET, std::time::Duration::from_secs(60)).unwrap();
    let user = Uuid::new_v4();
    let ids: HashSet<String> = (0..100)
        .map(|_| tokens.issue(user, "a@example.com").unwrap().claims.jti)
        .collect();
    assert_eq!(ids.len(), 100);
}
