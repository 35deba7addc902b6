//! The management API, route by route, over a real embedded profile store:
//! the shape of every success, the redirect from a merged-away profile,
//! paging, every error's status and code, and authentication.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use uniflow_runtime::backend::BackendError;
use uniflow_runtime::embedded::profiles::EmbeddedProfiles;
use uniflow_runtime::manage::{self, Auth};
use uniflow_runtime::profiles::resolve::profile_id;
use uniflow_runtime::profiles::{
    Account, BatchError, Cursor, Decision, Deleted, EventPage, Link, Profile, ProfileStore, Report,
    Rules,
};
use uniflow_schemas::Bundle;

const CONFIG: &str = r#"
project "t" { region "eu-west-1" }
source "web" kind="browser" {
    allow-origin "https://shop.example"
    on-violation "quarantine"
}
source "backend" kind="server"
event "Order Completed" {
    description "A paid order"
    property "order_id" type="string" required=#true
}
event "Product Viewed"
trait "email" type="string" format="email"
trait "name" type="string"
identity {
    identifier "user_id" priority=1 limit=1
    identifier "email" priority=2 limit=3 normalize="trim lowercase"
    identifier "anonymous_id" priority=3 limit=200
    blocked "qa@shop.example"
}
destination "hook" kind="webhook" { url "https://example.com/hook" }
segment "buyers" {
    from "Order Completed" within="30d"
    having "count(*) >= 1"
    sync-to "hook"
}
"#;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn bundle() -> Bundle {
    let (checked, artifacts) = uniflow_compiler::build(CONFIG);
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    Bundle::from_json(&artifacts.unwrap().files["bundle.json"]).unwrap()
}

/// An enriched event as ingest stores it.
fn event(source: &str, id: &str, minute: u32, body: Value) -> Bytes {
    let mut e = json!({
        "messageId": id,
        "sourceId": source,
        "timestamp": format!("2026-11-25T10:{minute:02}:00.000Z"),
        "receivedAt": format!("2026-11-25T10:{minute:02}:00.000Z"),
    });
    for (k, v) in body.as_object().unwrap() {
        e[k] = v.clone();
    }
    Bytes::from(e.to_string())
}

struct Harness {
    router: Router,
    _dir: tempfile::TempDir,
}

/// Profiles after the story below:
///
/// - m1: device a1 views a page: profile P1;
/// - m2: device a2 identifies as Bob's email: profile P2;
/// - m3: user u1 on device a1, email Ann: P1 gets both;
/// - m4: user u1 on device a2: P2 merges into P1 (within every limit);
/// - m5: user u2 with Ann's email: refused (two user ids), profile P3;
/// - m6: u1 joins the account acme.
async fn harness(auth: Auth) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let bundle = bundle();
    let store =
        EmbeddedProfiles::open(&dir.path().join("p.redb"), Rules::new(&bundle.identity)).unwrap();
    let events = vec![
        event(
            "web",
            "m1",
            0,
            json!({"type": "track", "event": "Order Completed", "anonymousId": "a1", "properties": {"order_id": "o1"}}),
        ),
        event(
            "web",
            "m2",
            1,
            json!({"type": "identify", "anonymousId": "a2", "traits": {"email": "Bob@Example.com"}}),
        ),
        event(
            "web",
            "m3",
            2,
            json!({"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "Ann@Example.com", "name": "Ann"}}),
        ),
        event(
            "web",
            "m4",
            3,
            json!({"type": "track", "event": "Product Viewed", "userId": "u1", "anonymousId": "a2", "properties": {}}),
        ),
        event(
            "backend",
            "m5",
            4,
            json!({"type": "identify", "userId": "u2", "traits": {"email": "ann@example.com"}}),
        ),
        event(
            "backend",
            "m6",
            5,
            json!({"type": "group", "userId": "u1", "groupId": "acme", "traits": {"name": "Acme"}}),
        ),
    ];
    let report = store.process(events).await.unwrap();
    assert_eq!((report.applied, report.merges, report.refusals), (6, 1, 1));
    Harness {
        router: manage::router(Arc::new(store), None, Arc::new(bundle), auth),
        _dir: dir,
    }
}

fn p1() -> String {
    profile_id("web", "m1")
}
fn p2() -> String {
    profile_id("web", "m2")
}
fn p3() -> String {
    profile_id("backend", "m5")
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    json: Value,
}

async fn send(router: &Router, method: Method, uri: &str, auth: Option<&str>) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        request = request.header(header::AUTHORIZATION, a);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "{uri}: {status}: not JSON ({e}): {:?}",
            String::from_utf8_lossy(&body)
        )
    });
    assert_eq!(
        headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"application/json"[..]),
        "{uri}"
    );
    Answer {
        status,
        headers,
        json,
    }
}

async fn get(h: &Harness, uri: &str) -> Answer {
    send(
        &h.router,
        Method::GET,
        uri,
        Some(&format!("Bearer {TOKEN}")),
    )
    .await
}

/// A request that must fail with `status` and `code`, and a message
/// containing `says`.
async fn check_error(h: &Harness, method: Method, uri: &str, status: u16, code: &str, says: &str) {
    let a = send(&h.router, method, uri, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(a.status.as_u16(), status, "{uri}: {}", a.json);
    assert_eq!(a.json["code"], code, "{uri}: {}", a.json);
    let message = a.json["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{uri}: {message:?} lacks {says:?}");
    assert_eq!(a.json.as_object().map(|o| o.len()), Some(2), "{uri}");
}

#[tokio::test]
async fn a_profile_with_its_traits_counts_and_merges() {
    let h = harness(Auth::Bearer(TOKEN.into())).await;
    let a = get(&h, &format!("/api/v1/profiles/{}", p1())).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(
        a.json,
        json!({
            "id": p1(),
            "firstSeen": "2026-11-25T10:00:00.000Z",
            "lastSeen": "2026-11-25T10:05:00.000Z",
            "traits": {"email": "Ann@Example.com", "name": "Ann"},
            "traitTimestamps": {"email": "2026-11-25T10:02:00.000Z", "name": "2026-11-25T10:02:00.000Z"},
            "counts": {"group": 1, "identify": 2, "track": 2},
            "eventCounts": {"Order Completed": 1, "Product Viewed": 1},
            "identityCounts": {"anonymous_id": 2, "email": 2, "user_id": 1},
            "groups": ["acme"],
            "mergedFrom": [p2()],
        })
    );
}

#[tokio::test]
async fn a_merged_away_id_answers_the_live_profile() {
    let h = harness(Auth::Bearer(TOKEN.into())).await;
    let a = get(&h, &format!("/api/v1/profiles/{}", p2())).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["id"], p1());
    assert_eq!(a.json["requestedId"], p2());
    // Its sub-resources too.
    let a = get(&h, &format!("/api/v1/profiles/{}/identities", p2())).await;
    assert_eq!(a.json.as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn lookup_normalises_the_value_with_the_types_rules() {
    let h = harness(Auth::Bearer(TOKEN.into())).await;
    for (query, id) in [
        ("email:%20Bob@Example.COM%20", p1()),
        ("email:ann@example.com", p1()),
        ("user_id:u2", p3()),
        ("anonymous_id:a2", p1()),
    ] {
        let a = get(&h, &format!("/api/v1/profiles?identifier={query}")).await;
        assert_eq!(a.status, StatusCode::OK, "{query}: {}", a.json);
        assert_eq!(a.json["id"], id, "{query}");
        assert!(a.json.get("requestedId").is_none());
    }
    let a = get(&h, "/api/v1/profiles?identifier=email:%20Bob@Example.COM").await;
    assert_eq!(a.json["identifier"], "email:bob@example.com");
}

#[tokio::test]
async fn events_are_paged_newest_first() {
    let h = harness(Auth::Bearer(TOKEN.into())).await;
    let a = get(&h, &format!("/api/v1/profiles/{}/events?limit=3", p2())).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["id"], p1());
    let ids = |a: &Answer| -> Vec<String> {
        a.json["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["messageId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&a), ["m6", "m4", "m3"]);
    let first = &a.json["events"][0];
    assert_eq!(first["timestamp"], "2026-11-25T10:05:00.000Z");
    assert_eq!(first["event"]["groupId"], "acme");
    assert_eq!(first["event"]["sourceId"], "backend");
    let next = a.json["next"].as_str().unwrap().to_owned();
    assert_eq!(Cursor::parse(&next).unwrap().message_id, "m3");
    let a = get(
        &h,
        &format!("/api/v1/profiles/{}/events?limit=3&before={next}", p1()),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(ids(&a), ["m2", "m1"]);
    assert!(a.json.get("next").is_none(), "{}", a.json);
    // The default limit holds all five.
    let a = get(&h, &format!("/api/v1/profiles/{}/events", p1())).await;
    assert_eq!(ids(&a).len(), 5);
}

#[tokio::test]
async fn identities_say_which_event_linked_each() {
    let h = harness(Auth::Bearer(TOKEN.into())).await;
    let a = get(&h, &format!("/api/v1/profiles/{}/identities", p1())).await;
    assert_eq!(a.status, StatusCode::OK);
    let list = a.json.as_array().unwrap();
    let names: Vec<&str> = list
        .iter()
        .map(|i| i["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "anonymous_id:a1",
            "anonymous_id:a2",
            "email:bob@example.com",
            "email:ann@example.com",
            "user_id:u1"
        ]
    );
    assert_eq!(
        list[2],
        json!({
            "identifier": "email:bob@example.com",
            "type": "email",
            "value": "bob@example.com",
            "linkedAt": "2026-11-25T10:01:00.000Z",
            "messageId": "m2",
            "sourceId": "web",
        })
    );
}

#[tokio::test]
async fn history_explains_merges_and_refusals() {
    let h = harness(Auth::Bearer(TOKEN.into())).await;
    let a = get(&h, &format!("/api/v1/profiles/{}/history", p1())).await;
    assert_eq!(a.status, StatusCode::OK);
    let merge = &a.json[0];
    // The merge, then the refusal of another profile's event to take this
    // profile's email (recorded on both sides).
    assert_eq!(a.json.as_array().unwrap().len(), 2, "{}", a.json);
    assert_eq!(a.json[1]["outcome"], "refused");
    assert_eq!(a.json[1]["profile"], p1());
    assert_eq!(merge["outcome"], "merged");
    assert_eq!(merge["from"], p2());
    assert_eq!(merge["into"], p1());
    assert_eq!(merge["messageId"], "m4");
    assert_eq!(merge["timestamp"], "2026-11-25T10:03:00.000Z");
    assert_eq!(merge["via"], "anonymous_id:a2");
    assert_eq!(
        merge["identifiers"],
        json!(["user_id:u1", "anonymous_id:a2"])
    );
    assert!(
        merge["rule"]
            .as_str()
            .unwrap()
            .starts_with("within every limit"),
        "{merge}"
    );

    let a = get(&h, &format!("/api/v1/profiles/{}/history", p3())).await;
    let refusal = &a.json[0];
    assert_eq!(refusal["outcome"], "refused");
    assert_eq!(refusal["identifier"], "email:ann@example.com");
    assert_eq!(refusal["profile"], p1());
    assert!(refusal.get("from").is_none());
    assert!(
        refusal["rule"].as_str().unwrap().contains("never merge"),
        "{refusal}"
    );
}

#[tokio::test]
async fn delete_removes_the_person_and_suppresses_its_identifiers() {
    let h = harness(Auth::Bearer(TOKEN.into())).await;
    let uri = format!("/api/v1/profiles/{}", p2());
    let a = send(
        &h.router,
        Method::DELETE,
        &uri,
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let mut deleted: Vec<String> = serde_json::from_value(a.json["deleted"].clone()).unwrap();
    deleted.sort();
    let mut expect = vec![p1(), p2()];
    expect.sort();
    assert_eq!(deleted, expect);
    assert_eq!(
        a.json["suppressedIdentifiers"],
        json!([
            "anonymous_id:a1",
            "anonymous_id:a2",
            "email:ann@example.com",
            "email:bob@example.com",
            "user_id:u1"
        ])
    );
    check_error(&h, Method::GET, &uri, 404, "profile_not_found", &p2()).await;
    check_error(
        &h,
        Method::DELETE,
        &uri,
        404,
        "profile_not_found",
        "already deleted",
    )
    .await;
    check_error(
        &h,
        Method::GET,
        "/api/v1/profiles?identifier=user_id:u1",
        404,
        "profile_not_found",
        "no profile holds user_id:u1",
    )
    .await;
    // The other person is untouched.
    assert_eq!(
        get(&h, &format!("/api/v1/profiles/{}", p3())).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn accounts() {
    let h = harness(Auth::Bearer(TOKEN.into())).await;
    let a = get(&h, "/api/v1/accounts/acme").await;
    assert_eq!(
        a.json,
        json!({
            "id": "acme",
            "firstSeen": "2026-11-25T10:05:00.000Z",
            "lastSeen": "2026-11-25T10:05:00.000Z",
            "traits": {"name": "Acme"},
            "traitTimestamps": {"name": "2026-11-25T10:05:00.000Z"},
        })
    );
    check_error(
        &h,
        Method::GET,
        "/api/v1/accounts/nobody",
        404,
        "account_not_found",
        "nobody",
    )
    .await;
}

#[tokio::test]
async fn the_catalog_reads_the_bundle_without_write_keys() {
    let h = harness(Auth::Bearer(TOKEN.into())).await;
    let a = get(&h, "/api/v1/sources").await;
    assert_eq!(
        a.json,
        json!([
            {"name": "backend", "kind": "server", "allowedOrigins": [], "onViolation": "reject", "onUndeclared": "allow", "dedupeWindowSecs": 86400},
            {"name": "web", "kind": "browser", "allowedOrigins": ["https://shop.example"], "onViolation": "quarantine", "onUndeclared": "allow", "dedupeWindowSecs": 86400},
        ]),
        "{}",
        a.json
    );
    assert!(!a.json.to_string().to_lowercase().contains("key"));

    let a = get(&h, "/api/v1/events").await;
    assert_eq!(a.json[0]["name"], "Order Completed");
    assert_eq!(a.json[0]["description"], "A paid order");
    assert!(a.json[0].get("properties").is_none());
    assert_eq!(a.json[1]["name"], "Product Viewed");

    let a = get(&h, "/api/v1/events/Order%20Completed").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["properties"]["type"], "object", "{}", a.json);
    assert!(a.json["properties"].to_string().contains("order_id"));

    let a = get(&h, "/api/v1/destinations").await;
    assert_eq!(a.json, json!([{"name": "hook", "kind": "webhook"}]));

    let a = get(&h, "/api/v1/segments").await;
    assert_eq!(a.json[0]["name"], "buyers");
    assert_eq!(a.json[0]["from"], json!(["Order Completed"]));
    assert_eq!(a.json[0]["withinSecs"], 30 * 86400);
    assert_eq!(a.json[0]["having"], "count(*) >= 1");
    assert_eq!(a.json[0]["syncTo"], json!(["hook"]));

    let a = get(&h, "/api/v1/identity").await;
    assert_eq!(
        a.json["identifiers"][1],
        json!({"name": "email", "from": "traits.email", "priority": 2, "limit": 3, "normalize": ["trim", "lowercase"]})
    );
    assert!(
        a.json["blocked"]
            .as_array()
            .unwrap()
            .contains(&json!("qa@shop.example"))
    );
}

#[tokio::test]
async fn every_error_has_its_status_and_code() {
    let h = harness(Auth::Bearer(TOKEN.into())).await;
    let p1 = p1();
    let long = "x".repeat(2000);
    let cases: Vec<(Method, String, u16, &str, &str)> = vec![
        // Routes and methods.
        (
            Method::GET,
            "/api/v1/nope".into(),
            404,
            "not_found",
            "/api/v1/nope",
        ),
        (
            Method::GET,
            "/api/v1".into(),
            404,
            "not_found",
            "/api/v1/profiles",
        ),
        (Method::GET, "/api/v1/".into(), 404, "not_found", "no route"),
        (
            Method::GET,
            "/api/v1/profiles/".into(),
            404,
            "not_found",
            "no route",
        ),
        (
            Method::GET,
            format!("/api/v1/profiles/{p1}/nope"),
            404,
            "not_found",
            "no route",
        ),
        (
            Method::POST,
            format!("/api/v1/profiles/{p1}"),
            405,
            "method_not_allowed",
            "GET and DELETE",
        ),
        (
            Method::PUT,
            "/api/v1/sources".into(),
            405,
            "method_not_allowed",
            "only GET",
        ),
        (
            Method::DELETE,
            format!("/api/v1/profiles/{p1}/events"),
            405,
            "method_not_allowed",
            "only GET",
        ),
        // Missing things.
        (
            Method::GET,
            "/api/v1/profiles/nobody".into(),
            404,
            "profile_not_found",
            "no profile nobody",
        ),
        (
            Method::GET,
            "/api/v1/profiles/nobody/events".into(),
            404,
            "profile_not_found",
            "nobody",
        ),
        (
            Method::GET,
            "/api/v1/profiles/nobody/identities".into(),
            404,
            "profile_not_found",
            "nobody",
        ),
        (
            Method::GET,
            "/api/v1/profiles/nobody/history".into(),
            404,
            "profile_not_found",
            "nobody",
        ),
        (
            Method::DELETE,
            "/api/v1/profiles/nobody".into(),
            404,
            "profile_not_found",
            "nobody",
        ),
        (
            Method::GET,
            "/api/v1/events/Nope".into(),
            404,
            "event_not_found",
            "declared: Order Completed, Product Viewed",
        ),
        (
            Method::GET,
            "/api/v1/profiles?identifier=user_id:nobody".into(),
            404,
            "profile_not_found",
            "user_id:nobody",
        ),
        // Lookups.
        (
            Method::GET,
            "/api/v1/profiles".into(),
            400,
            "missing_identifier",
            "user_id, email, anonymous_id",
        ),
        (
            Method::GET,
            "/api/v1/profiles?identifier=ann".into(),
            400,
            "invalid_identifier",
            "TYPE:VALUE",
        ),
        (
            Method::GET,
            "/api/v1/profiles?identifier=email:".into(),
            400,
            "invalid_identifier",
            "1 to 1024 bytes",
        ),
        (
            Method::GET,
            "/api/v1/profiles?identifier=phone:123".into(),
            400,
            "unknown_identifier_type",
            "the identifiers are user_id, email, anonymous_id",
        ),
        (
            Method::GET,
            "/api/v1/profiles?identifier=email:%20QA@Shop.example".into(),
            400,
            "blocked_identifier",
            "blocked email",
        ),
        (
            Method::GET,
            "/api/v1/profiles?identifier=user_id:null".into(),
            400,
            "blocked_identifier",
            "blocked user_id",
        ),
        (
            Method::GET,
            format!("/api/v1/profiles?identifier=user_id:{long}"),
            400,
            "invalid_identifier",
            "1024",
        ),
        // Query strings.
        (
            Method::GET,
            "/api/v1/profiles?identifier=%zz".into(),
            400,
            "invalid_query",
            "percent-encoded",
        ),
        (
            Method::GET,
            "/api/v1/profiles?identifier=a:b&identifier=c:d".into(),
            400,
            "invalid_query",
            "twice",
        ),
        (
            Method::GET,
            "/api/v1/profiles?email=a".into(),
            400,
            "unknown_parameter",
            "accepted: identifier",
        ),
        (
            Method::GET,
            format!("/api/v1/profiles/{p1}?x=1"),
            400,
            "unknown_parameter",
            "accepted: none",
        ),
        (
            Method::GET,
            format!("/api/v1/profiles/{p1}/events?limit=0"),
            400,
            "invalid_limit",
            "1 to 1000",
        ),
        (
            Method::GET,
            format!("/api/v1/profiles/{p1}/events?limit=1001"),
            400,
            "invalid_limit",
            "1001",
        ),
        (
            Method::GET,
            format!("/api/v1/profiles/{p1}/events?limit=-1"),
            400,
            "invalid_limit",
            "-1",
        ),
        (
            Method::GET,
            format!("/api/v1/profiles/{p1}/events?limit=ten"),
            400,
            "invalid_limit",
            "ten",
        ),
        (
            Method::GET,
            format!("/api/v1/profiles/{p1}/events?before=m3"),
            400,
            "invalid_cursor",
            "`next`",
        ),
        (
            Method::GET,
            format!("/api/v1/profiles/{p1}/events?before=x.m3"),
            400,
            "invalid_cursor",
            "x.m3",
        ),
        (
            Method::GET,
            format!("/api/v1/profiles/{p1}/events?page=2"),
            400,
            "unknown_parameter",
            "limit, before",
        ),
        // Paths.
        (
            Method::GET,
            "/api/v1/profiles/%FF".into(),
            400,
            "invalid_path",
            "profile id",
        ),
        (
            Method::GET,
            format!("/api/v1/profiles/{long}"),
            400,
            "invalid_path",
            "1024",
        ),
        (
            Method::GET,
            format!("/api/v1/accounts/{long}"),
            400,
            "invalid_path",
            "group id",
        ),
    ];
    for (method, uri, status, code, says) in cases {
        check_error(&h, method, &uri, status, code, says).await;
    }
    let a = send(
        &h.router,
        Method::POST,
        &format!("/api/v1/profiles/{p1}"),
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(a.headers[header::ALLOW], "GET,HEAD,DELETE");
}

#[tokio::test]
async fn a_token_is_needed_and_compared() {
    let h = harness(Auth::Bearer(TOKEN.into())).await;
    let uri = format!("/api/v1/profiles/{}", p1());
    for auth in [
        None,
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some(format!("Basic {TOKEN}")),
        Some(format!("Bearer {TOKEN}x")),
        Some("Bearer 0123456789abcdef0123456789abcdee".to_owned()),
    ] {
        for (method, uri) in [
            (Method::GET, uri.as_str()),
            (Method::DELETE, uri.as_str()),
            (Method::GET, "/api/v1/sources"),
            // Unknown routes too: nothing is learnt without the token.
            (Method::GET, "/api/v1/nope"),
        ] {
            let a = send(&h.router, method, uri, auth.as_deref()).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{auth:?} {uri}");
            assert_eq!(a.json["code"], "unauthorized");
            assert!(
                a.json["message"].as_str().unwrap().contains("dev.json"),
                "{}",
                a.json
            );
            assert_eq!(a.headers[header::WWW_AUTHENTICATE], "Bearer");
        }
    }
    // The scheme is case-insensitive; the profile was not deleted above.
    let a = send(
        &h.router,
        Method::GET,
        &uri,
        Some(&format!("bearer {TOKEN}")),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
}

#[tokio::test]
async fn trusted_lets_every_request_through() {
    let h = harness(Auth::Trusted).await;
    let a = send(&h.router, Method::GET, "/api/v1/sources", None).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = send(&h.router, Method::GET, "/api/v1/nope", None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

/// A store whose every call fails, like an unreachable DynamoDB.
struct Down;

fn down() -> BackendError {
    BackendError("connection refused".into())
}

impl ProfileStore for Down {
    async fn process(&self, _: Vec<Bytes>) -> Result<Report, BatchError> {
        Err(BatchError {
            done: 0,
            report: Report::default(),
            error: down(),
        })
    }
    async fn profile(&self, _: &str) -> Result<Option<Profile>, BackendError> {
        Err(down())
    }
    async fn lookup(&self, _: &str) -> Result<Option<Profile>, BackendError> {
        Err(down())
    }
    async fn identities(&self, _: &str) -> Result<Vec<Link>, BackendError> {
        Err(down())
    }
    async fn events(
        &self,
        _: &str,
        _: Option<Cursor>,
        _: usize,
    ) -> Result<EventPage, BackendError> {
        Err(down())
    }
    async fn history(&self, _: &str) -> Result<Vec<Decision>, BackendError> {
        Err(down())
    }
    async fn delete(&self, _: &str, _: i64) -> Result<Option<Deleted>, BackendError> {
        Err(down())
    }
    async fn account(&self, _: &str) -> Result<Option<Account>, BackendError> {
        Err(down())
    }
}

#[tokio::test]
async fn a_failing_store_answers_503() {
    let router = manage::router(Arc::new(Down), None, Arc::new(bundle()), Auth::Trusted);
    for (method, uri) in [
        (Method::GET, "/api/v1/profiles/p"),
        (Method::GET, "/api/v1/profiles/p/events"),
        (Method::GET, "/api/v1/profiles/p/identities"),
        (Method::GET, "/api/v1/profiles/p/history"),
        (Method::DELETE, "/api/v1/profiles/p"),
        (Method::GET, "/api/v1/profiles?identifier=user_id:u1"),
        (Method::GET, "/api/v1/accounts/acme"),
    ] {
        let a = send(&router, method, uri, None).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(a.json["code"], "store_unavailable");
        assert!(
            a.json["message"]
                .as_str()
                .unwrap()
                .contains("connection refused")
        );
    }
    // The catalog needs no store.
    assert_eq!(
        send(&router, Method::GET, "/api/v1/identity", None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn odd_requests_get_json_answers_not_panics() {
    let h = harness(Auth::Bearer(TOKEN.into())).await;
    let odd = [
        "/api/v1/profiles/%00",
        "/api/v1/profiles/..%2F..%2Fetc",
        "/api/v1/profiles/%E2%82",
        "/api/v1/profiles?identifier=:",
        "/api/v1/profiles?identifier=::::",
        "/api/v1/profiles?identifier=email:%E2%82",
        "/api/v1/profiles?&&&identifier=user_id:u1&&",
        "/api/v1/profiles?identifier",
        "/api/v1/profiles?=",
        "/api/v1/profiles/p/events?before=.",
        "/api/v1/profiles/p/events?before=-9223372036854775808.x&limit=1",
        "/api/v1/profiles/p/events?limit=99999999999999999999999",
        "/api/v1/events/%20",
        "/api/v1/accounts/%F0%9F%98%80",
        "/api/v1//profiles",
        "/api/v1/profiles//events",
    ];
    for uri in odd {
        for method in [Method::GET, Method::DELETE, Method::POST, Method::OPTIONS] {
            let a = send(
                &h.router,
                method.clone(),
                uri,
                Some(&format!("Bearer {TOKEN}")),
            )
            .await;
            assert!(
                a.status.is_success() || a.status.is_client_error(),
                "{method} {uri}: {}",
                a.status
            );
            if !a.status.is_success() {
                assert!(a.json["code"].is_string(), "{method} {uri}: {}", a.json);
            }
        }
    }
    // The user lookup in the list above worked despite the empty pairs.
    let a = get(&h, "/api/v1/profiles?&&&identifier=user_id:u1&&").await;
    assert_eq!(a.json["id"], p1());
}

async fn post(router: &Router, uri: &str, body: Value) -> Answer {
    let response = router
        .clone()
        .oneshot(
            Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap(),
    }
}

#[tokio::test]
async fn deliveries_show_metrics_dead_letters_and_take_redrives_and_replays() {
    use uniflow_runtime::delivery::Message;
    use uniflow_runtime::embedded::queues::{EmbeddedQueues, Settle};

    let dir = tempfile::tempdir().unwrap();
    let bundle = bundle();
    let store =
        EmbeddedProfiles::open(&dir.path().join("p.redb"), Rules::new(&bundle.identity)).unwrap();
    let queues = EmbeddedQueues::open(&dir.path().join("q.redb")).unwrap();
    let message = |id: &str, event: &str| {
        Message {
        id: id.to_owned(),
        received_ms: 0,
        attempts: 0,
        last_error: None,
        event: Bytes::from(
            json!({"type": "track", "event": event, "messageId": id, "properties": {"order_id": "o1"}})
                .to_string(),
        ),
    }
    };
    let letters: Vec<Settle> = ["a", "b", "c"]
        .iter()
        .map(|id| Settle::DeadLetter {
            from: None,
            reason: "HTTP 400: no".to_owned(),
            message: Message {
                attempts: 1,
                ..message(
                    id,
                    if *id == "b" {
                        "Product Viewed"
                    } else {
                        "Order Completed"
                    },
                )
            },
        })
        .chain([Settle::Delivered {
            from: None,
            received_ms: 0,
        }])
        .collect();
    queues.settle("hook", &letters, None, 40).unwrap();
    let router = manage::router(
        Arc::new(store),
        Some(Arc::new(queues.clone())),
        Arc::new(bundle),
        Auth::Bearer(TOKEN.to_owned()),
    );
    let h = Harness { router, _dir: dir };

    let m = get(&h, "/api/v1/destinations/hook/metrics").await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.json);
    assert_eq!(m.json["delivered"], 1);
    assert_eq!(m.json["deadLettered"], 3);
    assert_eq!(m.json["dlqDepth"], 3);
    assert_eq!(m.json["latencyMs"]["p50"], 50);

    let page = get(&h, "/api/v1/destinations/hook/dead-letters?limit=2").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.json);
    let items = page.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["message"]["id"], "a");
    assert_eq!(items[0]["reason"], "HTTP 400: no");
    assert_eq!(items[0]["message"]["event"]["event"], "Order Completed");
    let next = page.json["next"].as_str().unwrap().to_owned();
    let rest = get(
        &h,
        &format!("/api/v1/destinations/hook/dead-letters?after={next}"),
    )
    .await;
    assert_eq!(rest.json["items"][0]["message"]["id"], "c");
    assert!(rest.json.get("next").is_none());

    let r = post(
        &h.router,
        "/api/v1/destinations/hook/dead-letters/redrive",
        json!({"filter": "event = 'Order Completed'", "max": 1}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json, json!({"moved": 1, "kept": 2}));
    let due = queues.due("hook", i64::MAX, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].message.id, "a");

    let e = post(
        &h.router,
        "/api/v1/destinations/hook/messages",
        json!({"messages": [serde_json::to_value(message("r1", "Order Completed")).unwrap()]}),
    )
    .await;
    assert_eq!(e.json, json!({"queued": 1}));
    assert_eq!(queues.due("hook", i64::MAX, 10).unwrap().len(), 2);

    check_error(
        &h,
        Method::GET,
        "/api/v1/destinations/nope/metrics",
        404,
        "destination_not_found",
        "it has: hook",
    )
    .await;
    check_error(
        &h,
        Method::GET,
        "/api/v1/destinations/hook/dead-letters?limit=0",
        400,
        "invalid_limit",
        "1 to 500",
    )
    .await;
    check_error(
        &h,
        Method::GET,
        "/api/v1/destinations/hook/messages",
        405,
        "method_not_allowed",
        "only POST",
    )
    .await;
    let bad = post(
        &h.router,
        "/api/v1/destinations/hook/dead-letters/redrive",
        json!({"filter": "event = "}),
    )
    .await;
    assert_eq!(
        (bad.status.as_u16(), bad.json["code"].as_str()),
        (400, Some("invalid_filter"))
    );
    let bad = post(
        &h.router,
        "/api/v1/destinations/hook/dead-letters/redrive",
        json!({"count": 1}),
    )
    .await;
    assert_eq!(bad.json["code"], "invalid_body");
}

#[tokio::test]
async fn without_queues_the_delivery_routes_say_so() {
    let h = harness(Auth::Bearer(TOKEN.to_owned())).await;
    check_error(
        &h,
        Method::GET,
        "/api/v1/destinations/hook/metrics",
        501,
        "deliveries_unavailable",
        "delivery queues",
    )
    .await;
}
