//! Admin identities API (Kratos operations createIdentity … batchPatchIdentities).

use serde_json::{Value, json};

use crate::both;
use crate::harness::{Backend, TestServer};

fn person(email: &str) -> Value {
    json!({"schema_id": "default", "traits": {"email": email}})
}

async fn count(s: &TestServer) -> usize {
    let list: Vec<Value> = s
        .client()
        .get(s.admin_url("/admin/identities"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list.len()
}

async fn create_identity_returns_201_location_and_kratos_json(b: Backend) {
    let s = TestServer::start(b).await;
    let res = s
        .client()
        .post(s.admin_url("/admin/identities"))
        .json(&json!({"schema_id": "default", "traits": {"email": "Jane@Example.COM"}, "metadata_public": {"plan": "pro"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let body: Value = res.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(location, format!("{}/admin/identities/{id}", s.admin));
    assert_eq!(body["schema_id"], "default");
    assert_eq!(body["schema_url"], format!("{}/schemas/ZGVmYXVsdA", s.public));
    assert_eq!(body["state"], "active");
    assert_eq!(body["metadata_public"], json!({"plan": "pro"}));
    assert_eq!(body["metadata_admin"], Value::Null);
    assert_eq!(body["organization_id"], Value::Null);
    assert_eq!(body["verifiable_addresses"][0]["value"], "jane@example.com");
    assert_eq!(body["verifiable_addresses"][0]["verified"], false);
    assert_eq!(body["verifiable_addresses"][0]["status"], "pending");
    assert_eq!(body["verifiable_addresses"][0]["via"], "email");
    assert_eq!(body["recovery_addresses"][0]["value"], "jane@example.com");
    assert_eq!(body["credentials"]["code"]["identifiers"], json!(["jane@example.com"]));
    assert!(
        body["credentials"]["code"].get("config").is_none(),
        "config only with include_credential"
    );
    time::OffsetDateTime::parse(
        body["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();

    let got: Value = s.client().get(&location).send().await.unwrap().json().await.unwrap();
    assert_eq!(got, body, "GET returns what POST returned");
}
both!(create_identity_returns_201_location_and_kratos_json);

async fn create_identity_with_taken_identifier_is_409_and_writes_nothing(b: Backend) {
    let s = TestServer::start(b).await;
    s.create_identity(person("a@example.com")).await;
    let res = s
        .client()
        .post(s.admin_url("/admin/identities"))
        .json(&person("A@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], 409);
    assert_eq!(
        body["error"]["reason"],
        "This identity conflicts with another identity that already exists."
    );
    assert_eq!(count(&s).await, 1);
}
both!(create_identity_with_taken_identifier_is_409_and_writes_nothing);

async fn create_identity_with_invalid_traits_is_400_with_schema_error(b: Backend) {
    let s = TestServer::start(b).await;
    let c = s.client();
    let res = c
        .post(s.admin_url("/admin/identities"))
        .json(&person("not-an-email"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["reason"].as_str().unwrap().contains("traits.email"),
        "{body}"
    );
    let res = c
        .post(s.admin_url("/admin/identities"))
        .json(&json!({"schema_id": "default", "traits": {"name": {"first": "x"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"]["reason"].as_str().unwrap().contains("email"), "{body}");
    let res = c
        .post(s.admin_url("/admin/identities"))
        .json(&json!({"schema_id": "nope", "traits": {"email": "a@b.co"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(count(&s).await, 0);
}
both!(create_identity_with_invalid_traits_is_400_with_schema_error);

async fn bad_bodies_are_refused_and_write_nothing(b: Backend) {
    let s = TestServer::start(b).await;
    let c = s.client();
    let url = s.admin_url("/admin/identities");
    let res = c
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"]["reason"].as_str().unwrap().contains("JSON"));
    let res = c
        .post(&url)
        .header("content-type", "text/plain")
        .body(person("x@y.co").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"]["reason"].as_str().unwrap().contains("Content-Type"));
    let res = c
        .post(&url)
        .json(&json!({"schema_id": "default", "traits": {"email": "x@y.co"}, "unknown_field": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let big = format!(
        "{{\"schema_id\":\"default\",\"traits\":{{\"email\":\"x@y.co\"}},\"metadata_admin\":\"{}\"}}",
        "a".repeat(6 * 1024 * 1024)
    );
    let res = c
        .post(&url)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], 413);
    assert_eq!(count(&s).await, 0);
}
both!(bad_bodies_are_refused_and_write_nothing);

async fn get_identity_unknown_is_404_and_include_credential_adds_config(b: Backend) {
    let s = TestServer::start(b).await;
    let c = s.client();
    for id in ["4b1e4bbc-0b0a-4f5f-9a3c-1f2d3c4b5a69", "not-a-uuid"] {
        let res = c
            .get(s.admin_url(&format!("/admin/identities/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["status"], "Not Found");
    }
    let created = s
        .create_identity(json!({
            "schema_id": "default",
            "traits": {"email": "pw@example.com"},
            "credentials": {"password": {"config": {"password": "a long enough passphrase"}}}
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created["credentials"]["password"]["identifiers"],
        json!(["pw@example.com"])
    );
    let url = s.admin_url(&format!(
        "/admin/identities/{id}?include_credential=password&include_credential=code"
    ));
    let got: Value = c.get(url).send().await.unwrap().json().await.unwrap();
    assert!(
        got["credentials"]["password"]["config"]["hashed_password"]
            .as_str()
            .unwrap()
            .starts_with("$argon2id$")
    );
    assert_eq!(
        got["credentials"]["code"]["config"]["addresses"][0],
        json!({"channel": "email", "address": "pw@example.com"})
    );
}
both!(get_identity_unknown_is_404_and_include_credential_adds_config);

async fn imported_bcrypt_hash_is_kept_and_bad_hash_refused(b: Backend) {
    let s = TestServer::start(b).await;
    let hash = bcrypt::hash("secret-password", 4).unwrap();
    let created = s
        .create_identity(json!({
            "schema_id": "default",
            "traits": {"email": "imp@example.com"},
            "credentials": {"password": {"config": {"hashed_password": hash}}}
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    let got: Value = s
        .client()
        .get(s.admin_url(&format!("/admin/identities/{id}?include_credential=password")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["credentials"]["password"]["config"]["hashed_password"], hash);
    let res = s
        .client()
        .post(s.admin_url("/admin/identities"))
        .json(&json!({"schema_id": "default", "traits": {"email": "bad@example.com"},
            "credentials": {"password": {"config": {"hashed_password": "$md5$nope"}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(count(&s).await, 1);
}
both!(imported_bcrypt_hash_is_kept_and_bad_hash_refused);

async fn update_identity_replaces_traits_and_keeps_verified_addresses(b: Backend) {
    let s = TestServer::start(b).await;
    let c = s.client();
    let created = s
        .create_identity(json!({
            "schema_id": "default",
            "traits": {"email": "u@example.com"},
            "verifiable_addresses": [{"value": "u@example.com", "via": "email", "verified": true, "status": "completed"}]
        }))
        .await;
    assert_eq!(created["verifiable_addresses"][0]["verified"], true);
    let id = created["id"].as_str().unwrap();
    let url = s.admin_url(&format!("/admin/identities/{id}"));
    let res = c
        .put(&url)
        .json(&json!({"schema_id": "default", "state": "active", "traits": {"email": "u@example.com", "name": {"first": "U"}}, "metadata_admin": {"note": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["traits"]["name"]["first"], "U");
    assert_eq!(body["metadata_admin"], json!({"note": 1}));
    assert_eq!(
        body["verifiable_addresses"][0]["verified"], true,
        "an unchanged address stays verified"
    );
    // Changing the email replaces the address with an unverified one.
    let res = c
        .put(&url)
        .json(&json!({"state": "inactive", "traits": {"email": "new@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["state"], "inactive");
    assert_eq!(body["verifiable_addresses"][0]["value"], "new@example.com");
    assert_eq!(body["verifiable_addresses"][0]["verified"], false);
    assert_eq!(body["credentials"]["code"]["identifiers"], json!(["new@example.com"]));
    // The old identifier is free again.
    s.create_identity(person("u@example.com")).await;
    // Invalid update: 400 and nothing changes.
    let res = c
        .put(&url)
        .json(&json!({"state": "active", "traits": {"email": "nope"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = c
        .put(&url)
        .json(&json!({"state": "weird", "traits": {"email": "n@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = c
        .put(&url)
        .json(&json!({"state": "active", "traits": {"email": "u@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409, "taking another identity's identifier conflicts");
    let now: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(now["traits"]["email"], "new@example.com");
    assert_eq!(now["state"], "inactive");
    let res = c
        .put(s.admin_url("/admin/identities/4b1e4bbc-0b0a-4f5f-9a3c-1f2d3c4b5a69"))
        .json(&json!({"state": "active", "traits": {"email": "z@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
both!(update_identity_replaces_traits_and_keeps_verified_addresses);

async fn patch_identity_applies_rfc6902(b: Backend) {
    let s = TestServer::start(b).await;
    let c = s.client();
    let created = s.create_identity(person("p@example.com")).await;
    let url = s.admin_url(&format!("/admin/identities/{}", created["id"].as_str().unwrap()));
    let res = c
        .patch(&url)
        .json(&json!([
            {"op": "replace", "path": "/traits/email", "value": "patched@example.com"},
            {"op": "add", "path": "/metadata_public", "value": {"a": 1}},
            {"op": "replace", "path": "/verifiable_addresses/0/verified", "value": true}
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["traits"]["email"], "patched@example.com");
    assert_eq!(body["metadata_public"], json!({"a": 1}));
    let res = c
        .patch(&url)
        .json(&json!([{"op": "replace", "path": "/id", "value": "x"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = c
        .patch(&url)
        .json(&json!([{"op": "test", "path": "/traits/email", "value": "other"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = c
        .patch(&url)
        .json(&json!([{"op": "remove", "path": "/traits/email"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "the patched traits are validated");
    let now: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(now["traits"]["email"], "patched@example.com");
}
both!(patch_identity_applies_rfc6902);

async fn delete_identity_is_204_then_404(b: Backend) {
    let s = TestServer::start(b).await;
    let c = s.client();
    let created = s.create_identity(person("d@example.com")).await;
    let url = s.admin_url(&format!("/admin/identities/{}", created["id"].as_str().unwrap()));
    assert_eq!(c.delete(&url).send().await.unwrap().status(), 204);
    assert_eq!(c.delete(&url).send().await.unwrap().status(), 404);
    assert_eq!(c.get(&url).send().await.unwrap().status(), 404);
    // Its identifier can be used again.
    s.create_identity(person("d@example.com")).await;
}
both!(delete_identity_is_204_then_404);

async fn list_identities_paginates_with_link_header_and_filters(b: Backend) {
    let s = TestServer::start(b).await;
    let c = s.client();
    let mut ids = vec![];
    for i in 0..5 {
        let created = s.create_identity(person(&format!("l{i}@example.com"))).await;
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let mut seen = vec![];
    let mut url = s.admin_url("/admin/identities?page_size=2");
    let mut pages = 0;
    loop {
        let res = c.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let link = res
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let page: Vec<Value> = res.json().await.unwrap();
        assert!(page.len() <= 2);
        pages += 1;
        seen.extend(page.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        let next = link.split(',').find(|l| l.contains("rel=\"next\""));
        match next {
            Some(n) => url = n.trim().trim_start_matches('<').split('>').next().unwrap().to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "every identity once, ordered by id");

    let q = format!("/admin/identities?ids={}&ids={}", ids[0], ids[3]);
    let page: Vec<Value> = c.get(s.admin_url(&q)).send().await.unwrap().json().await.unwrap();
    assert_eq!(page.len(), 2);
    let page: Vec<Value> = c
        .get(s.admin_url("/admin/identities?credentials_identifier=L2@example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["traits"]["email"], "l2@example.com");
    let res = c
        .get(s.admin_url("/admin/identities?page_token=garbage"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = c
        .get(s.admin_url("/admin/identities?page_size=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = c
        .get(s.admin_url(&format!("/admin/identities?ids={}&credentials_identifier=x", ids[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}
both!(list_identities_paginates_with_link_header_and_filters);

async fn identity_by_external_id(b: Backend) {
    let s = TestServer::start(b).await;
    let c = s.client();
    let created = s
        .create_identity(json!({"schema_id": "default", "traits": {"email": "e@example.com"}, "external_id": "crm-42"}))
        .await;
    assert_eq!(created["external_id"], "crm-42");
    let got: Value = c
        .get(s.admin_url("/admin/identities/by/external/crm-42"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["id"], created["id"]);
    assert_eq!(
        c.get(s.admin_url("/admin/identities/by/external/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let res = c
        .post(s.admin_url("/admin/identities"))
        .json(&json!({"schema_id": "default", "traits": {"email": "e2@example.com"}, "external_id": "crm-42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
}
both!(identity_by_external_id);

async fn delete_identity_credentials(b: Backend) {
    let s = TestServer::start(b).await;
    let c = s.client();
    let created = s
        .create_identity(json!({"schema_id": "default", "traits": {"email": "c@example.com"},
            "credentials": {"password": {"config": {"password": "another long passphrase"}}}}))
        .await;
    let id = created["id"].as_str().unwrap();
    let url = s.admin_url(&format!("/admin/identities/{id}/credentials/password"));
    assert_eq!(c.delete(&url).send().await.unwrap().status(), 204);
    let got: Value = c
        .get(s.admin_url(&format!("/admin/identities/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(got["credentials"].get("password").is_none());
    assert_eq!(c.delete(&url).send().await.unwrap().status(), 404);
    let res = c
        .delete(s.admin_url(&format!("/admin/identities/{id}/credentials/code")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = c
        .delete(s.admin_url("/admin/identities/4b1e4bbc-0b0a-4f5f-9a3c-1f2d3c4b5a69/credentials/password"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
both!(delete_identity_credentials);

async fn batch_patch_creates_and_reports_errors_per_item(b: Backend) {
    let s = TestServer::start(b).await;
    let res = s
        .client()
        .patch(s.admin_url("/admin/identities"))
        .json(&json!({"identities": [
            {"patch_id": "00000000-0000-4000-8000-000000000001", "create": person("b1@example.com")},
            {"patch_id": "00000000-0000-4000-8000-000000000002", "create": person("b1@example.com")},
            {"patch_id": "00000000-0000-4000-8000-000000000003", "create": person("invalid")},
            {"create": person("b2@example.com")}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let items = body["identities"].as_array().unwrap();
    assert_eq!(items[0]["action"], "create");
    assert_eq!(items[0]["patch_id"], "00000000-0000-4000-8000-000000000001");
    assert!(items[0]["identity"].as_str().is_some());
    assert_eq!(items[1]["action"], "error");
    assert_eq!(items[1]["error"]["code"], 409);
    assert_eq!(items[2]["action"], "error");
    assert_eq!(items[2]["error"]["code"], 400);
    assert_eq!(items[3]["action"], "create");
    assert_eq!(count(&s).await, 2);
}
both!(batch_patch_creates_and_reports_errors_per_item);

async fn concurrent_creates_of_one_identifier_yield_exactly_one_201(b: Backend) {
    let s = TestServer::start(b).await;
    let mut tasks = vec![];
    for i in 0..16 {
        let c = s.client();
        let url = s.admin_url("/admin/identities");
        // Different spellings of one address normalise to the same identifier.
        let email = if i % 2 == 0 {
            "race@example.com"
        } else {
            "RACE@example.com"
        };
        tasks.push(tokio::spawn(async move {
            c.post(url).json(&person(email)).send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = vec![];
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 15, "{statuses:?}");
    assert_eq!(count(&s).await, 1);
}
both!(concurrent_creates_of_one_identifier_yield_exactly_one_201);
