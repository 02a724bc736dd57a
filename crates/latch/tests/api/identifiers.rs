//! Identifiers are normalised as the README says: surrounding spaces and upper case in an
//! email do not matter for registration, password login and code login, for every client.

use serde_json::{Value, json};

use crate::both;
use crate::client::{ALL, Client, Kind, message_ids};
use crate::code::code_from_admin_api;
use crate::flows::{finish, login, register};
use crate::harness::{Backend, TestServer};

const PW: &str = "correct horse battery staple";

async fn identifiers_with_spaces_and_capitals_register_and_sign_in(b: Backend) {
    let srv = TestServer::start(b).await;
    for kind in ALL {
        let plain = format!("padded-{kind:?}@example.com").to_lowercase();
        let padded = format!("  Padded-{kind:?}@Example.COM \t");
        // Registration trims the traits (the profile step and the password step).
        let mut c = Client::new(&srv, kind);
        let body = register(&mut c, &padded).await;
        if kind != Kind::Browser {
            let email = body["identity"]["traits"]["email"].as_str().unwrap();
            assert_eq!(email, padded.trim(), "traits keep the case, without the spaces");
            assert_eq!(body["identity"]["verifiable_addresses"][0]["value"], plain);
        }
        // Password login with another spelling of the same address.
        let mut c = Client::new(&srv, kind);
        let res = login(&mut c, &format!(" {} ", plain.to_uppercase()), PW).await;
        finish(&mut c, res).await;
        assert_eq!(c.whoami().await.status(), 200);
        // Code login with spaces around the identifier, in both steps.
        let mut c = Client::new(&srv, kind);
        let flow = c.init("login", "").await;
        let spaced = format!("\t{plain}  ");
        let res = c.submit(&flow, json!({"method": "code", "identifier": spaced})).await;
        let (_, flow) = c.flow_after("login", res).await;
        assert_eq!(flow["state"], "sent_email", "{flow}");
        assert_eq!(message_ids(&flow), vec![1010014]);
        let code = code_from_admin_api(&srv, &plain).await;
        let res = c
            .submit(&flow, json!({"method": "code", "identifier": spaced, "code": code}))
            .await;
        finish(&mut c, res).await;
        assert_eq!(c.whoami().await.status(), 200);
    }
    // One identity per address, however it was typed.
    let list: Vec<Value> = srv
        .client()
        .get(srv.admin_url("/admin/identities"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 3);
    srv.stop().await;
}
both!(identifiers_with_spaces_and_capitals_register_and_sign_in);
