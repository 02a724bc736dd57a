//! A method that exists only in tests: it proves that a method is its folder plus one line in
//! [`super::all`] (`docs/adding-a-method.md`). People sign up with a name and a pass phrase
//! (`method=example`, `example_name`, `example_phrase`) and sign in with both. Nothing
//! outside this folder names it.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{
    CredentialType, Cx, FlowError, LoginOutcome, LoginStrategy, RegistrationOutcome, RegistrationStep,
    RegistrationStrategy, Registry, Strategy, field,
};
use crate::crypto::{ct_eq, sha256_hex};
use crate::deps::Env;
use crate::identity::Identity;
use crate::identity::manager::{apply_traits, new_identity, set_credential};
use crate::model::flow::Flow;
use crate::strategy::shared::traits_from;
use crate::text;
use crate::ui::{Group, InputType, Node};

const ID: &str = "example";

#[derive(Debug)]
struct Example;

#[derive(Debug)]
struct ExampleCredential;

static CREDENTIAL: ExampleCredential = ExampleCredential;

/// Registers the example method (always enabled in tests).
pub fn register(r: &mut Registry<'_>) {
    r.credential(&CREDENTIAL);
    r.strategy(std::sync::Arc::new(Example));
}

impl CredentialType for ExampleCredential {
    fn id(&self) -> &'static str {
        ID
    }
    fn signs_in_alone(&self, _config: &crate::config::Config, identity: &Identity) -> bool {
        identity
            .credentials
            .get(ID)
            .and_then(|c| c.config.get("phrase_hash"))
            .is_some()
    }
}

/// The callback an external step comes back to: `?flow=&name=&phrase=` becomes a login
/// submission of that flow.
#[derive(Debug)]
struct Callback;

#[async_trait]
impl super::RouteHandler for Callback {
    async fn handle(&self, _deps: &Env, input: &super::RouteInput) -> Result<super::RouteOutcome, FlowError> {
        let flow_id = input
            .query
            .get("flow")
            .and_then(|f| uuid::Uuid::parse_str(f).ok())
            .ok_or_else(|| FlowError::message(text::validation_generic("the flow parameter is missing")))?;
        Ok(super::RouteOutcome::Submit {
            flow_id,
            body: json!({
                "method": ID,
                "example_name": input.query.get("name").cloned().unwrap_or_default(),
                "example_phrase": input.query.get("phrase").cloned().unwrap_or_default(),
            }),
        })
    }
}

impl Strategy for Example {
    fn id(&self) -> &'static str {
        ID
    }
    fn routes(&self) -> Vec<super::StrategyRoute> {
        vec![super::StrategyRoute {
            path: "/self-service/methods/example/callback",
            handler: std::sync::Arc::new(Callback),
        }]
    }
    fn login(&self) -> Option<&dyn LoginStrategy> {
        Some(self)
    }
    fn registration(&self) -> Option<&dyn RegistrationStrategy> {
        Some(self)
    }
}

fn nodes(flow: &mut Flow) {
    flow.ui
        .upsert(Node::input("example_name", InputType::Text, Group::Default).required());
    flow.ui
        .upsert(Node::input("example_phrase", InputType::Password, Group::Default).required());
    flow.ui
        .append(Node::input("method", InputType::Submit, Group::Default).value(ID));
}

#[async_trait]
impl LoginStrategy for Example {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, _deps: &Env, flow: &mut Flow, _signed_in: Option<&Identity>) {
        nodes(flow);
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<LoginOutcome, FlowError> {
        if field(body, "example_external").is_some() {
            // Sign in elsewhere and come back on the callback route.
            return Ok(LoginOutcome::RedirectExternal(format!(
                "https://idp.example.test/authorize?flow={}",
                flow.id
            )));
        }
        let name = field(body, "example_name").unwrap_or("");
        let phrase = field(body, "example_phrase").unwrap_or("");
        let found = cx.env.store.find_identity_by_identifier(ID, name).await?;
        let stored = found
            .as_ref()
            .and_then(|i| i.credentials.get(ID))
            .and_then(|c| c.config.get("phrase_hash"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let given = sha256_hex(phrase.as_bytes());
        match found {
            Some(identity) if ct_eq(stored.as_bytes(), given.as_bytes()) => Ok(LoginOutcome::Authenticated {
                identity: Box::new(identity),
                method: ID,
                aal: crate::model::Aal::Aal1,
            }),
            _ => Err(FlowError::message(text::invalid_credentials())),
        }
    }
}

#[async_trait]
impl RegistrationStrategy for Example {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, _deps: &Env, flow: &mut Flow, _step: RegistrationStep) {
        nodes(flow);
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<RegistrationOutcome, FlowError> {
        let env = cx.env;
        let traits = traits_from(flow, body)?;
        let name = field(body, "example_name").unwrap_or("").trim().to_string();
        let phrase = field(body, "example_phrase").unwrap_or("");
        if name.is_empty() || phrase.is_empty() {
            return Err(FlowError::on_node("example_name", text::required("example_name")));
        }
        let mut identity = new_identity(env.schemas.default_id(), traits, env.clock.as_ref());
        if let Err(e) = apply_traits(&mut identity, &env.schemas, env.clock.as_ref()) {
            return Err(FlowError::message(text::system_generic(&e.to_string())));
        }
        let config = json!({"phrase_hash": sha256_hex(phrase.as_bytes())});
        set_credential(&mut identity, ID, vec![name], config, 1, env.clock.as_ref());
        Ok(RegistrationOutcome::Create {
            identity: Box::new(identity),
            method: ID,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use crate::app::{App, BuildOptions};

    const SCHEMA: &str = r#"{"$id":"https://example.test/schema.json","$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"traits":{"type":"object","properties":{"email":{"type":"string","format":"email"}}}}}"#;

    /// The example method takes part in login and registration, its credential is imported
    /// and shown by the admin API, and it counts as a first factor — all from its folder and
    /// its line in `strategy::all`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_method_is_its_folder_and_one_registration_line() {
        use base64::Engine;
        let schema = base64::engine::general_purpose::STANDARD.encode(SCHEMA);
        let doc = json!({
            "dsn": "memory",
            "serve": {"public": {"host": "127.0.0.1", "port": 4433}, "admin": {"host": "127.0.0.1", "port": 4434}},
            "identity": {"default_schema_id": "default", "schemas": [{"id": "default", "url": format!("base64://{schema}")}]},
            "selfservice": {
                "default_browser_return_url": "http://app.test/",
                "methods": {"passkey": {"enabled": false}},
                "flows": {"registration": {"after": {"example": {"hooks": [{"hook": "session"}]}}}}
            },
            "secrets": {"cookie": ["a-test-cookie-secret-of-32-chars!"]}
        });
        let mut config = crate::config::Config::from_value(doc, true).unwrap();
        config.serve.public.port = 0;
        config.serve.admin.port = 0;
        let app = App::build(
            config,
            BuildOptions {
                clock: None,
                migrate: true,
            },
        )
        .await
        .unwrap();
        let public = format!("http://{}", app.public_addr());
        let admin = format!("http://{}", app.admin_addr());
        let deps: Arc<crate::deps::Deps> = app.deps().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = app
                .run(async move {
                    let _ = rx.await;
                })
                .await;
        });
        let http = reqwest::Client::new();
        let get = |url: String| {
            let http = http.clone();
            async move {
                let res = http.get(url).send().await.unwrap();
                let body: Value = res.json().await.unwrap();
                body
            }
        };
        let names = |flow: &Value| -> Vec<String> {
            flow["ui"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|n| n["attributes"]["name"].as_str().map(str::to_string))
                .collect()
        };

        // Its nodes appear in login and registration flows.
        let login = get(format!("{public}/self-service/login/api")).await;
        assert!(names(&login).contains(&"example_phrase".to_string()), "{login}");
        let registration = get(format!("{public}/self-service/registration/api")).await;
        let action = registration["ui"]["action"].as_str().unwrap().to_string();
        // profile_first: the traits first, then the method.
        let res = http
            .post(&action)
            .json(&json!({"method": "profile", "traits": {"email": "ex@example.com"}}))
            .send()
            .await
            .unwrap();
        let step: Value = res.json().await.unwrap();
        assert!(names(&step).contains(&"example_name".to_string()), "{step}");

        // Sign up and sign in with it.
        let res = http
            .post(&action)
            .json(&json!({"method": "example", "traits": {"email": "ex@example.com"}, "example_name": "ex", "example_phrase": "open sesame"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let done: Value = res.json().await.unwrap();
        let id = done["identity"]["id"].as_str().unwrap().to_string();
        let login = get(format!("{public}/self-service/login/api")).await;
        let res = http
            .post(login["ui"]["action"].as_str().unwrap())
            .json(&json!({"method": "example", "example_name": "ex", "example_phrase": "open sesame"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let signed_in: Value = res.json().await.unwrap();
        assert_eq!(signed_in["session"]["authentication_methods"][0]["method"], "example");

        // It can send the client elsewhere and own the route it comes back on.
        let login = get(format!("{public}/self-service/login/api")).await;
        let flow_id = login["id"].as_str().unwrap().to_string();
        let res = http
            .post(login["ui"]["action"].as_str().unwrap())
            .json(&json!({"method": "example", "example_external": "1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "native and SPA clients are told to change location");
        let change: Value = res.json().await.unwrap();
        assert_eq!(change["error"]["id"], "browser_location_change_required");
        assert_eq!(
            change["redirect_browser_to"],
            format!("https://idp.example.test/authorize?flow={flow_id}")
        );
        let res = http
            .get(format!(
                "{public}/self-service/methods/example/callback?flow={flow_id}&name=ex&phrase=open%20sesame"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let back: Value = res.json().await.unwrap();
        assert!(back["session_token"].is_string(), "{back}");

        // The admin API shows and imports its credential.
        let shown = get(format!("{admin}/admin/identities/{id}?include_credential=example")).await;
        assert_eq!(shown["credentials"]["example"]["identifiers"], json!(["ex"]), "{shown}");
        let res = http
            .post(format!("{admin}/admin/identities"))
            .json(&json!({
                "schema_id": "default",
                "traits": {"email": "imported@example.com"},
                "credentials": {"example": {"config": {"phrase_hash": "00"}}}
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let imported: Value = res.json().await.unwrap();
        assert!(imported["credentials"]["example"].is_object(), "{imported}");

        // It counts as a first factor: removing another method's credential would not lock
        // this identity out.
        let identity = deps
            .store
            .get_identity(uuid::Uuid::parse_str(&id).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(
            deps.credentials
                .has_first_factor_besides(&deps.config, &identity, "passkey")
        );
        assert!(
            !deps
                .credentials
                .has_first_factor_besides(&deps.config, &identity, ID_FOR_TEST)
        );

        let _ = tx.send(());
        let _ = server.await;
    }

    const ID_FOR_TEST: &str = super::ID;
}
