//! Session listing and revocation, and the admin session API.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both;
use crate::client::{Client, Kind};
use crate::flows::{finish, login, register};
use crate::harness::{Backend, TestServer};

const PW: &str = "correct horse battery staple";

async fn my_sessions_can_be_listed_and_revoked(b: Backend) {
    let srv = TestServer::start(b).await;
    let mut a = Client::new(&srv, Kind::Native);
    register(&mut a, "multi@example.com").await;
    let mut others = vec![];
    for kind in [Kind::Spa, Kind::Native, Kind::Browser] {
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, "multi@example.com", PW).await;
        finish(&mut c, res).await;
        others.push(c);
    }
    let res = a.send(a.req(Method::GET, &srv.public_url("/sessions"))).await;
    assert_eq!(res.status(), 200);
    let list: Vec<Value> = res.json().await.unwrap();
    assert_eq!(list.len(), 3, "the current session is not listed");
    let who: Value = a.whoami().await.json().await.unwrap();
    assert!(list.iter().all(|s| s["id"] != who["id"]));
    // Revoking the current session this way is refused; another one works.
    let res = a
        .send(a.req(
            Method::DELETE,
            &srv.public_url(&format!("/sessions/{}", who["id"].as_str().unwrap())),
        ))
        .await;
    assert_eq!(res.status(), 400);
    let victim = list[0]["id"].as_str().unwrap();
    let res = a
        .send(a.req(Method::DELETE, &srv.public_url(&format!("/sessions/{victim}"))))
        .await;
    assert_eq!(res.status(), 204);
    let res = a.send(a.req(Method::DELETE, &srv.public_url("/sessions"))).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["count"], 2);
    for c in &others {
        assert_eq!(c.whoami().await.status(), 401);
    }
    assert_eq!(a.whoami().await.status(), 200);
    // Another identity's session cannot be revoked.
    let mut stranger = Client::new(&srv, Kind::Native);
    register(&mut stranger, "stranger@example.com").await;
    let res = stranger
        .send(stranger.req(
            Method::DELETE,
            &srv.public_url(&format!("/sessions/{}", who["id"].as_str().unwrap())),
        ))
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(a.whoami().await.status(), 200);
}
both!(my_sessions_can_be_listed_and_revoked);

async fn admin_session_endpoints(b: Backend) {
    let srv = TestServer::start(b).await;
    let mut a = Client::new(&srv, Kind::Native);
    let reg = register(&mut a, "admin-s@example.com").await;
    let identity_id = reg["identity"]["id"].as_str().unwrap().to_string();
    let session_id = reg["session"]["id"].as_str().unwrap().to_string();
    let http = srv.client();

    let list: Vec<Value> = http
        .get(srv.admin_url("/admin/sessions?expand=identity"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["identity"]["id"], identity_id.as_str());
    assert!(
        list[0]["identity"].get("metadata_admin").is_some(),
        "admin sessions include metadata_admin"
    );

    let one: Value = http
        .get(srv.admin_url(&format!("/admin/sessions/{session_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], session_id.as_str());
    assert!(one.get("identity").is_none(), "identity only with expand");
    assert_eq!(
        http.get(srv.admin_url("/admin/sessions/4b1e4bbc-0b0a-4f5f-9a3c-1f2d3c4b5a69"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Extend: with earliest_possible_extend = lifespan, any active session is extended.
    srv.clock.advance(std::time::Duration::from_secs(3600));
    let res = http
        .patch(srv.admin_url(&format!("/admin/sessions/{session_id}/extend")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ext: Value = res.json().await.unwrap();
    assert!(ext["expires_at"].as_str().unwrap() > one["expires_at"].as_str().unwrap());

    let listed: Vec<Value> = http
        .get(srv.admin_url(&format!("/admin/identities/{identity_id}/sessions")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    assert_eq!(
        http.delete(srv.admin_url(&format!("/admin/sessions/{session_id}")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(a.whoami().await.status(), 401);
    let inactive: Vec<Value> = http
        .get(srv.admin_url("/admin/sessions?active=false"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inactive.len(), 1);
    assert_eq!(inactive[0]["active"], false);

    // Delete all of an identity's sessions.
    let mut c = Client::new(&srv, Kind::Native);
    let res = login(&mut c, "admin-s@example.com", PW).await;
    finish(&mut c, res).await;
    assert_eq!(
        http.delete(srv.admin_url(&format!("/admin/identities/{identity_id}/sessions")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(c.whoami().await.status(), 401);
    let all: Vec<Value> = http
        .get(srv.admin_url("/admin/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(all.is_empty());
}
both!(admin_session_endpoints);

async fn disabling_or_deleting_an_identity_ends_its_sessions(b: Backend) {
    let srv = TestServer::start(b).await;
    let mut a = Client::new(&srv, Kind::Spa);
    register(&mut a, "gone@example.com").await;
    let who: Value = a.whoami().await.json().await.unwrap();
    let id = who["identity"]["id"].as_str().unwrap().to_string();
    let http = srv.client();
    let res = http
        .put(srv.admin_url(&format!("/admin/identities/{id}")))
        .json(&json!({"state": "inactive", "traits": {"email": "gone@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        a.whoami().await.status(),
        401,
        "disabled identities have no working sessions"
    );
    // And cannot sign in.
    let c = Client::new(&srv, Kind::Native);
    let flow = c.init("login", "").await;
    let res = c
        .submit(
            &flow,
            json!({"method": "password", "identifier": "gone@example.com", "password": PW}),
        )
        .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(crate::client::message_ids(&body), vec![4010011]);

    let mut b2 = Client::new(&srv, Kind::Native);
    register(&mut b2, "deleted@example.com").await;
    let who: Value = b2.whoami().await.json().await.unwrap();
    let id = who["identity"]["id"].as_str().unwrap();
    assert_eq!(
        http.delete(srv.admin_url(&format!("/admin/identities/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(b2.whoami().await.status(), 401);
}
both!(disabling_or_deleting_an_identity_ends_its_sessions);

async fn whoami_cache_is_invalidated_by_revocation(b: Backend) {
    let srv = TestServer::start(b).await;
    // Token answers are cached by token hash, cookie answers by the sealed cookie.
    for (i, kind) in [Kind::Native, Kind::Browser, Kind::Spa].into_iter().enumerate() {
        whoami_cache_is_invalidated_for(&srv, kind, &format!("cache{i}@example.com")).await;
    }
}
both!(whoami_cache_is_invalidated_by_revocation);

async fn whoami_cache_is_invalidated_for(srv: &TestServer, kind: Kind, email: &str) {
    let mut a = Client::new(srv, kind);
    register(&mut a, email).await;
    let who: Value = a.whoami().await.json().await.unwrap();
    let id = who["identity"]["id"].as_str().unwrap().to_string();
    for _ in 0..3 {
        assert_eq!(a.whoami().await.status(), 200, "served, then cached");
    }
    // A trait change shows up at once.
    let res = srv
        .client()
        .put(srv.admin_url(&format!("/admin/identities/{id}")))
        .json(&json!({"state": "active", "traits": {"email": email, "name": {"first": "Cached"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let who: Value = a.whoami().await.json().await.unwrap();
    assert_eq!(who["identity"]["traits"]["name"]["first"], "Cached");
    // Revocation shows up at once.
    let sid = who["id"].as_str().unwrap();
    assert_eq!(
        srv.client()
            .delete(srv.admin_url(&format!("/admin/sessions/{sid}")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(a.whoami().await.status(), 401);
}

/// Two Latch nodes on one PostgreSQL: a revocation through one node reaches the other's cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(latch_pg), ignore = "set LATCH_TEST_POSTGRES_URL to run the PostgreSQL suite")]
async fn sessions_revoked_on_one_node_stop_working_on_another() {
    let a_srv = TestServer::start(Backend::Postgres).await;
    let b_srv = TestServer::sharing_db(&a_srv, json!({})).await;
    let mut a = Client::new(&a_srv, Kind::Native);
    let reg = register(&mut a, "nodes@example.com").await;
    let token = reg["session_token"].as_str().unwrap().to_string();
    let sid = reg["session"]["id"].as_str().unwrap().to_string();
    let whoami_b = || async {
        b_srv
            .client()
            .get(b_srv.public_url("/sessions/whoami"))
            .header("x-session-token", &token)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(whoami_b().await, 200);
    assert_eq!(whoami_b().await, 200, "now cached on node b");
    assert_eq!(
        a_srv
            .client()
            .delete(a_srv.admin_url(&format!("/admin/sessions/{sid}")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    // The notification is asynchronous: node b must stop accepting the token promptly.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        if whoami_b().await == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node b still accepts a revoked session"
        );
        tokio::task::yield_now().await;
    }
}

/// whoami from the database (cache off) is one joined statement: its answer is the admin
/// session (session and devices read row by row) with the same identity as the admin
/// identity API, for an identity that owns something of every kind.
async fn whoami_from_the_database_matches_the_admin_views(b: Backend) {
    let srv = TestServer::with_config(b, json!({"latch": {"cache": {"whoami": {"enabled": false}}}})).await;
    let email = "whole@example.com";
    let created = srv
        .create_identity(json!({
            "schema_id": "default",
            "traits": {"email": email, "name": {"first": "Whole", "last": "Person"}},
            "metadata_public": {"plan": "gold", "n": [1, 2.5, "x\"y"]},
            "metadata_admin": {"secret": true},
            "external_id": "ext-whole-1",
            "verifiable_addresses": [{"value": email, "via": "email", "verified": true, "status": "completed"}],
            "credentials": {"password": {"config": {"password": PW}}}
        }))
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    for kind in [Kind::Native, Kind::Browser, Kind::Spa] {
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, email, PW).await;
        finish(&mut c, res).await;
        let who: Value = c.whoami().await.json().await.unwrap();
        let again: Value = c.whoami().await.json().await.unwrap();
        assert_eq!(who, again);
        let sid = who["id"].as_str().unwrap();
        let mut admin: Value = srv
            .client()
            .get(srv.admin_url(&format!("/admin/sessions/{sid}?expand=identity")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(admin["identity"]["metadata_admin"], json!({"secret": true}));
        admin["identity"].as_object_mut().unwrap().remove("metadata_admin");
        assert_eq!(who, admin, "{kind:?}");
        let mut ident: Value = srv
            .client()
            .get(srv.admin_url(&format!("/admin/identities/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let o = ident.as_object_mut().unwrap();
        assert_eq!(
            o.remove("credentials").unwrap()["password"]["identifiers"],
            json!([email])
        );
        o.remove("metadata_admin");
        assert_eq!(who["identity"], ident);
        assert_eq!(who["identity"]["metadata_public"], created["metadata_public"]);
        assert_eq!(who["identity"]["external_id"], "ext-whole-1");
        assert_eq!(who["identity"]["verifiable_addresses"][0]["verified"], true);
        assert_eq!(who["identity"]["verifiable_addresses"], created["verifiable_addresses"]);
        assert_eq!(who["identity"]["recovery_addresses"], created["recovery_addresses"]);
        assert_eq!(who["identity"]["created_at"], created["created_at"]);
        assert_eq!(who["devices"].as_array().unwrap().len(), 1);
        assert_eq!(who["devices"][0]["ip_address"], "127.0.0.1");
    }
}
both!(whoami_from_the_database_matches_the_admin_views);
