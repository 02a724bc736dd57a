//! Moving users in: `latch import identities` through the batch endpoint, every password hash
//! format Kratos imports (fixtures made here from known passwords with RustCrypto crates and
//! the `openssl passwd` CLI), login with each and the rehash to argon2id, and the
//! `list` / `get` / `delete` identity commands.

use std::process::Output;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::{Value, json};
use sha2::Digest;

use crate::both;
use crate::cli::latch;
use crate::client::{ALL, Client};
use crate::flows::{finish, login};
use crate::harness::{Backend, TestServer};

fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

fn raw64(b: &[u8]) -> String {
    STANDARD_NO_PAD.encode(b)
}

fn salt(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

fn openssl_crypt(flag: &str, salt: &str, pw: &str) -> String {
    let out = std::process::Command::new("openssl")
        .args(["passwd", flag, "-salt", salt, pw])
        .output()
        .expect("the openssl CLI makes the crypt(3) fixtures");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn hmac_hex<M: hmac::Mac + hmac::KeyInit>(key: &[u8], pw: &[u8]) -> String {
    let mut m = <M as hmac::KeyInit>::new_from_slice(key).unwrap();
    m.update(pw);
    m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn sha_template(name: &str, pf: &str, salt: &[u8], digest: Vec<u8>) -> String {
    format!("${name}$pf={}${}${}", b64(pf.as_bytes()), b64(salt), b64(&digest))
}

/// Makes a stored hash from a password.
type HashMaker = Box<dyn Fn(&str) -> String>;

/// One `(format, password, stored hash)` per format Kratos imports, built from known passwords.
fn fixtures() -> Vec<(&'static str, String, String)> {
    let mut f: Vec<(&'static str, HashMaker)> = Vec::new();
    f.push(("bcrypt", Box::new(|pw| bcrypt::hash(pw, 4).unwrap())));
    for (name, alg) in [
        ("argon2id", argon2::Algorithm::Argon2id),
        ("argon2i", argon2::Algorithm::Argon2i),
    ] {
        f.push((
            name,
            Box::new(move |pw| {
                use argon2::PasswordHasher as _;
                let params = argon2::Params::new(1024, 1, 1, Some(32)).unwrap();
                argon2::Argon2::new(alg, argon2::Version::V0x13, params)
                    .hash_password(pw.as_bytes())
                    .unwrap()
                    .to_string()
            }),
        ));
    }
    f.push((
        "pbkdf2-sha1",
        Box::new(|pw| {
            let s = salt(16);
            let mut out = [0u8; 20];
            pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pw.as_bytes(), &s, 1000, &mut out);
            format!("$pbkdf2-sha1$i=1000,l=20${}${}", raw64(&s), raw64(&out))
        }),
    ));
    f.push((
        "pbkdf2-sha256",
        Box::new(|pw| {
            let s = salt(16);
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pw.as_bytes(), &s, 27500, &mut out);
            format!("$pbkdf2-sha256$i=27500,l=32${}${}", raw64(&s), raw64(&out))
        }),
    ));
    // Keycloak's export keeps the base64 padding; Latch tolerates it.
    f.push((
        "pbkdf2-sha256-padded",
        Box::new(|pw| {
            let s = salt(16);
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pw.as_bytes(), &s, 27500, &mut out);
            format!("$pbkdf2-sha256$i=27500,l=32${}${}", b64(&s), b64(&out))
        }),
    ));
    f.push((
        "pbkdf2-sha512",
        Box::new(|pw| {
            let s = salt(16);
            let mut out = [0u8; 64];
            pbkdf2::pbkdf2_hmac::<sha2::Sha512>(pw.as_bytes(), &s, 1000, &mut out);
            format!("$pbkdf2-sha512$i=1000,l=64${}${}", raw64(&s), raw64(&out))
        }),
    ));
    f.push((
        "scrypt",
        Box::new(|pw| {
            let s = salt(16);
            let mut out = [0u8; 32];
            scrypt::scrypt(pw.as_bytes(), &s, &scrypt::Params::new(10, 8, 1).unwrap(), &mut out).unwrap();
            format!("$scrypt$ln=1024,r=8,p=1${}${}", b64(&s), b64(&out))
        }),
    ));
    f.push((
        "firescrypt",
        Box::new(|pw| {
            use aes::cipher::{KeyIvInit, StreamCipher};
            let (s, sep, signer) = (salt(12), vec![7u8], salt(64));
            let mut key = [0u8; 32];
            let full: Vec<u8> = [s.clone(), sep.clone()].concat();
            scrypt::scrypt(pw.as_bytes(), &full, &scrypt::Params::new(10, 8, 1).unwrap(), &mut key).unwrap();
            let mut hash = signer.clone();
            ctr::Ctr128BE::<aes::Aes256>::new(&key.into(), &[0u8; 16].into()).apply_keystream(&mut hash);
            format!(
                "$firescrypt$ln=10,r=8,p=1${}${}${}${}",
                b64(&s),
                b64(&hash),
                b64(&sep),
                b64(&signer)
            )
        }),
    ));
    f.push(("md5", Box::new(|pw| format!("$md5${}", b64(&md5::Md5::digest(pw))))));
    f.push((
        "md5-salted",
        Box::new(|pw| {
            let s = b"pepper42".to_vec();
            let d = md5::Md5::digest(format!("pepper42--{pw}")).to_vec();
            format!("$md5$pf={}${}${}", b64(b"{SALT}--{PASSWORD}"), b64(&s), b64(&d))
        }),
    ));
    f.push((
        "sha1-salted",
        Box::new(|pw| {
            sha_template(
                "sha1",
                "{PASSWORD}{SALT}",
                b"s4lt",
                sha1::Sha1::digest(format!("{pw}s4lt")).to_vec(),
            )
        }),
    ));
    f.push((
        "sha256-salted",
        Box::new(|pw| {
            sha_template(
                "sha256",
                "{SALT}{PASSWORD}",
                b"s4lt",
                sha2::Sha256::digest(format!("s4lt{pw}")).to_vec(),
            )
        }),
    ));
    f.push((
        "sha512-salted",
        Box::new(|pw| {
            sha_template(
                "sha512",
                "{SALT}:{PASSWORD}",
                b"s4lt",
                sha2::Sha512::digest(format!("s4lt:{pw}")).to_vec(),
            )
        }),
    ));
    f.push((
        "sha1-plain",
        Box::new(|pw| sha_template("sha1", "{PASSWORD}", b"", sha1::Sha1::digest(pw).to_vec())),
    ));
    f.push((
        "sha256-plain",
        Box::new(|pw| sha_template("sha256", "{PASSWORD}", b"", sha2::Sha256::digest(pw).to_vec())),
    ));
    f.push((
        "sha512-plain",
        Box::new(|pw| sha_template("sha512", "{PASSWORD}", b"", sha2::Sha512::digest(pw).to_vec())),
    ));
    f.push((
        "ssha",
        Box::new(|pw| {
            let s = salt(8);
            format!(
                "{{SSHA}}{}",
                b64(&[sha1::Sha1::digest([pw.as_bytes(), &s].concat()).to_vec(), s].concat())
            )
        }),
    ));
    f.push((
        "ssha256",
        Box::new(|pw| {
            let s = salt(8);
            format!(
                "{{SSHA256}}{}",
                b64(&[sha2::Sha256::digest([pw.as_bytes(), &s].concat()).to_vec(), s].concat())
            )
        }),
    ));
    f.push((
        "ssha512",
        Box::new(|pw| {
            let s = salt(8);
            format!(
                "{{SSHA512}}{}",
                b64(&[sha2::Sha512::digest([pw.as_bytes(), &s].concat()).to_vec(), s].concat())
            )
        }),
    ));
    macro_rules! hmac_fixture {
        ($name:literal, $d:ty) => {
            f.push((
                concat!("hmac-", $name),
                Box::new(|pw| {
                    let key = b"the-hmac-key";
                    let hex = hmac_hex::<hmac::SimpleHmac<$d>>(key, pw.as_bytes());
                    format!("$hmac-{}${}${}", $name, b64(hex.as_bytes()), b64(key))
                }),
            ));
        };
    }
    hmac_fixture!("md4", md4::Md4);
    hmac_fixture!("md5", md5::Md5);
    hmac_fixture!("sha1", sha1::Sha1);
    hmac_fixture!("sha224", sha2::Sha224);
    hmac_fixture!("sha256", sha2::Sha256);
    hmac_fixture!("sha384", sha2::Sha384);
    hmac_fixture!("sha512", sha2::Sha512);
    f.push((
        "md5-crypt",
        Box::new(|pw| openssl_crypt("-1", "s4ltS4lt", pw).replacen("$1$", "$md5-crypt$", 1)),
    ));
    f.push((
        "sha256-crypt",
        Box::new(|pw| openssl_crypt("-5", "rounds=10000$s4ltS4lt", pw).replacen("$5$", "$sha256-crypt$", 1)),
    ));
    f.push((
        "sha512-crypt",
        Box::new(|pw| openssl_crypt("-6", "s4ltS4lt", pw).replacen("$6$", "$sha512-crypt$", 1)),
    ));
    f.into_iter()
        .map(|(name, make)| {
            let pw = format!("{name} known password!");
            let hash = make(&pw);
            (name, pw, hash)
        })
        .collect()
}

fn person(email: &str, password_config: Value) -> Value {
    json!({"schema_id": "default", "traits": {"email": email},
        "credentials": {"password": {"config": password_config}}})
}

async fn run(args: Vec<String>, stdin: Option<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut cmd = latch();
        cmd.env_remove("KRATOS_ADMIN_URL").args(&args);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Every identity, page by page through the admin API.
async fn all_identities(srv: &TestServer) -> Vec<Value> {
    let mut out = Vec::new();
    let mut url = srv.admin_url("/admin/identities?page_size=1000");
    loop {
        let res = srv.client().get(&url).send().await.unwrap();
        let link = res
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        let page: Vec<Value> = res.json().await.unwrap();
        out.extend(page);
        match link.split(',').find(|l| l.contains("rel=\"next\"")) {
            Some(next) => {
                url = next
                    .trim()
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_string()
            }
            None => return out,
        }
    }
}

async fn stored_hash(srv: &TestServer, id: &str) -> String {
    let got: Value = srv
        .client()
        .get(srv.admin_url(&format!("/admin/identities/{id}?include_credential=password")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    got["credentials"]["password"]["config"]["hashed_password"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

const TOTAL: usize = 10_000;
const PLAINTEXT: usize = 20;

async fn cli_imports_ten_thousand_identities_with_every_hash_format(b: Backend) {
    // Many logins from 127.0.0.1: the per-IP password limits are off for this test.
    let srv = TestServer::with_config(b, json!({"latch": {"rate_limits": {"enabled": false}}})).await;
    let fx = fixtures();
    let mut records: Vec<Value> = Vec::with_capacity(TOTAL);
    // One account per format whose password is known, logged in below.
    for (name, _, hash) in &fx {
        records.push(person(
            &format!("fmt-{name}@example.com"),
            json!({"hashed_password": hash}),
        ));
    }
    // A few plaintext passwords (hashed with argon2id by the server).
    for i in 0..PLAINTEXT {
        records.push(person(
            &format!("plain-{i}@example.com"),
            json!({"password": format!("plain password {i}!")}),
        ));
    }
    // Invalid records, five of each kind, spread through the file.
    let invalid_kinds: Vec<Box<dyn Fn(usize) -> Value>> = vec![
        // The same identifier as an earlier record: 409.
        Box::new(|_| {
            person(
                "fmt-bcrypt@example.com",
                json!({"hashed_password": "$md5$XUFAKrxLKna5cZ2REBfFkg=="}),
            )
        }),
        // Traits the schema refuses.
        Box::new(|i| json!({"schema_id": "default", "traits": {"email": format!("not-an-email-{i}")}})),
        // A format Latch does not know.
        Box::new(|i| {
            person(
                &format!("whirlpool-{i}@example.com"),
                json!({"hashed_password": "$pbkdf2-whirlpool$i=1,l=1$AA$AA"}),
            )
        }),
        // Absurd cost parameters.
        Box::new(|i| {
            person(
                &format!("costly-{i}@example.com"),
                json!({"hashed_password": format!("$pbkdf2-sha256$i=100000000,l=32$c2FsdA${}", raw64(&[0u8; 32]))}),
            )
        }),
        // A field createIdentityBody does not have.
        Box::new(
            |i| json!({"schema_id": "default", "traits": {"email": format!("extra-{i}@example.com")}, "nope": true}),
        ),
        // No traits at all.
        Box::new(|_| json!({"schema_id": "default"})),
        // Not an object.
        Box::new(|i| json!(i)),
        // A malformed md5 hash.
        Box::new(|i| {
            person(
                &format!("badmd5-{i}@example.com"),
                json!({"hashed_password": "$md5$nope"}),
            )
        }),
    ];
    let invalid = invalid_kinds.len() * 5;
    let bulk = TOTAL - records.len() - invalid;
    let mut bulk_records: Vec<Value> = (0..bulk)
        .map(|i| {
            let (_, _, hash) = &fx[i % fx.len()];
            person(&format!("user-{i}@example.com"), json!({"hashed_password": hash}))
        })
        .collect();
    for (k, make) in invalid_kinds.iter().enumerate() {
        for j in 0..5 {
            let at = (k * 5 + j) * (bulk_records.len() / invalid) + 1;
            bulk_records.insert(at.min(bulk_records.len()), make(k * 5 + j));
        }
    }
    records.extend(bulk_records);
    assert_eq!(records.len(), TOTAL);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.json");
    std::fs::write(&file, serde_json::to_vec(&records).unwrap()).unwrap();

    let started = std::time::Instant::now();
    let out = run(
        vec![
            "import".into(),
            "identities".into(),
            file.display().to_string(),
            "-e".into(),
            srv.admin.clone(),
            "--format".into(),
            "json".into(),
        ],
        None,
    )
    .await;
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "failures make the exit code 1: {stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    eprintln!(
        "imported {} identities ({} failed) in {:.1}s on {b:?}",
        summary["created"],
        summary["failed"],
        elapsed.as_secs_f64()
    );
    assert_eq!(summary["created"], TOTAL - invalid, "{stderr}");
    assert_eq!(summary["failed"], invalid, "{stderr}");
    assert_eq!(summary["identities"].as_array().unwrap().len(), TOTAL - invalid);
    // Plain progress lines on a pipe (no terminal), one per chunk, the last one complete.
    let progress: Vec<&str> = stderr.lines().filter(|l| l.starts_with("progress: ")).collect();
    assert!(progress.len() >= 10, "{stderr}");
    assert!(
        progress.last().unwrap().starts_with(&format!(
            "progress: {TOTAL}/{TOTAL} identities processed, {} created, {invalid} failed",
            TOTAL - invalid
        )),
        "{stderr}"
    );
    // Every failure is named with its place in the file and the reason.
    let errors = summary["errors"].as_array().unwrap();
    let reasons = |needle: &str| {
        errors
            .iter()
            .filter(|e| e["reason"].as_str().unwrap().contains(needle))
            .count()
    };
    assert_eq!(reasons("409"), 5, "{errors:?}");
    assert_eq!(reasons("pbkdf2-whirlpool is not supported"), 5, "{errors:?}");
    assert_eq!(reasons("exceeds what Latch accepts"), 5, "{errors:?}");
    assert_eq!(reasons("unknown field `nope`"), 5, "{errors:?}");
    assert_eq!(reasons("md5 hash must decode to 16 bytes"), 5, "{errors:?}");
    assert!(errors.iter().all(|e| {
        e["source"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}[", file.display()))
    }));
    assert!(
        stderr.contains(&format!("{}[", file.display())) && stderr.contains(": 409 "),
        "{stderr}"
    );

    let all = all_identities(&srv).await;
    assert_eq!(all.len(), TOTAL - invalid);

    // One known password per format logs in (browser, SPA and native in turn) and the
    // stored hash becomes argon2id.
    let by_email = |email: &str| {
        all.iter()
            .find(|i| i["traits"]["email"] == email)
            .unwrap_or_else(|| panic!("{email} was not imported"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (n, (name, pw, hash)) in fx.iter().enumerate() {
        let email = format!("fmt-{name}@example.com");
        let id = by_email(&email);
        assert_eq!(&stored_hash(&srv, &id).await, hash, "{name} is stored as imported");
        let mut c = Client::new(&srv, crate::client::Kind::Native);
        let res = login(&mut c, &email, "wrong password").await;
        assert_eq!(res.status(), 400, "{name}: a wrong password fails");
        let mut c = Client::new(&srv, ALL[n % 3]);
        let res = login(&mut c, &email, pw).await;
        finish(&mut c, res).await;
        let after = stored_hash(&srv, &id).await;
        assert!(after.starts_with("$argon2id$"), "{name} rehashed: {after}");
        // And the new hash still takes the same password.
        let mut c = Client::new(&srv, ALL[(n + 1) % 3]);
        let res = login(&mut c, &email, pw).await;
        finish(&mut c, res).await;
    }
    // A plaintext import logs in too.
    let mut c = Client::new(&srv, ALL[2]);
    let res = login(&mut c, "plain-3@example.com", "plain password 3!").await;
    finish(&mut c, res).await;
    // A bulk identity shares its format's hash: it logs in with that password.
    let (_, pw, _) = &fx[7 % fx.len()];
    let mut c = Client::new(&srv, ALL[1]);
    let res = login(&mut c, "user-7@example.com", pw).await;
    finish(&mut c, res).await;
}
both!(cli_imports_ten_thousand_identities_with_every_hash_format);

async fn import_dry_run_and_stdin(b: Backend) {
    let srv = TestServer::start(b).await;
    srv.create_identity(json!({"schema_id": "default", "traits": {"email": "taken@example.com"}}))
        .await;
    let records = json!([
        person(
            "a@example.com",
            json!({"hashed_password": bcrypt::hash("pw", 4).unwrap()})
        ),
        person("b@example.com", json!({"password": "a plaintext password"})),
        person("taken@example.com", json!({})),
        person("a@example.com", json!({})),
        person(
            "c@example.com",
            json!({"hashed_password": "$2b$31$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})
        ),
    ]);
    let out = run(
        strings(&[
            "import",
            "identities",
            "-",
            "--dry-run",
            "-e",
            &srv.admin,
            "--format",
            "json",
        ]),
        Some(records.to_string()),
    )
    .await;
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["valid"], 2, "{summary}");
    assert_eq!(summary["failed"], 3, "{summary}");
    let sources: Vec<&str> = summary["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["STD_IN[2]", "STD_IN[3]", "STD_IN[4]"]);
    assert_eq!(all_identities(&srv).await.len(), 1, "a dry run writes nothing");

    // The same input for real, as one object per file and the table summary.
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.json");
    std::fs::write(&one, records[1].to_string()).unwrap();
    let out = run(
        vec![
            "import".into(),
            "identities".into(),
            one.display().to_string(),
            "-e".into(),
            srv.admin.clone(),
        ],
        None,
    )
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Imported 1 identities, 0 failed"), "{text}");
    assert_eq!(all_identities(&srv).await.len(), 2);
    // Without an endpoint the CLI says how to give one.
    let out = run(strings(&["import", "identities", "-"]), Some("{}".into())).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("KRATOS_ADMIN_URL"));
}
both!(import_dry_run_and_stdin);

async fn list_get_delete_identity_commands(b: Backend) {
    let srv = TestServer::start(b).await;
    let mut ids = Vec::new();
    for e in ["l1@example.com", "l2@example.com", "l3@example.com"] {
        let created = srv
            .create_identity(json!({"schema_id": "default", "traits": {"email": e}, "external_id": format!("ext-{e}")}))
            .await;
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let e = srv.admin.clone();
    // list: a page and its next page token.
    let out = run(
        strings(&["list", "identities", "-e", &e, "--page-size", "2", "--format", "json"]),
        None,
    )
    .await;
    assert!(out.status.success());
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["identities"].as_array().unwrap().len(), 2);
    let token = page["next_page_token"].as_str().unwrap().to_string();
    assert!(!token.is_empty());
    let out = run(
        strings(&[
            "ls",
            "identities",
            "-e",
            &e,
            "--page-size",
            "2",
            "--page-token",
            &token,
            "--format",
            "json",
        ]),
        None,
    )
    .await;
    let page2: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page2["identities"].as_array().unwrap().len(), 1);
    assert_eq!(page2["next_page_token"], "");
    // Table output names the columns Kratos prints.
    let out = run(strings(&["list", "identities", "-e", &e]), None).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains("VERIFIED ADDRESSES") && table.contains("l3@example.com") && table.contains("NEXT PAGE TOKEN")
    );
    // get: one (vertical table / object), several (array), by external id, with credentials.
    let out = run(
        strings(&["get", "identity", &ids[0], "-e", &e, "--format", "json"]),
        None,
    )
    .await;
    let one: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(one["id"], ids[0].as_str());
    let out = run(
        strings(&["get", "identity", &ids[0], &ids[1], "-e", &e, "--format", "json"]),
        None,
    )
    .await;
    let two: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(two.as_array().unwrap().len(), 2);
    let out = run(
        strings(&[
            "get",
            "identity",
            "--external-id",
            "ext-l2@example.com",
            "-e",
            &e,
            "--format",
            "jsonpointer=/id",
        ]),
        None,
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("\"{}\"", ids[1]));
    let out = run(
        strings(&["get", "identity", &ids[2], "-e", &e, "--format", "yaml"]),
        None,
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("l3@example.com"));
    let out = run(strings(&["get", "identity", &ids[0], "-e", &e, "-q"]), None).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ids[0]);
    let missing = uuid::Uuid::new_v4().to_string();
    let out = run(strings(&["get", "identity", &missing, "-e", &e]), None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{missing}: 404")));
    // delete: the ids deleted are printed; unknown ones fail the command.
    let out = run(strings(&["delete", "identity", &ids[0], &missing, "-e", &e]), None).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ids[0]);
    let res = srv
        .client()
        .get(srv.admin_url(&format!("/admin/identities/{}", ids[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // The endpoint can also come from KRATOS_ADMIN_URL.
    let out = tokio::task::spawn_blocking({
        let (e, id) = (e.clone(), ids[1].clone());
        move || {
            latch()
                .args(["get", "identity", &id, "-q"])
                .env("KRATOS_ADMIN_URL", e)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ids[1]);
}
both!(list_get_delete_identity_commands);

async fn batch_endpoint_limits_and_shape_match_kratos(b: Backend) {
    let srv = TestServer::start(b).await;
    let c = srv.client();
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"create": {"schema_id": "default", "traits": {"email": format!("m{i}@example.com")}}}))
        .collect();
    let res = c
        .patch(srv.admin_url("/admin/identities"))
        .json(&json!({"identities": many}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"]["reason"].as_str().unwrap().contains("is 1000"), "{body}");
    let plain: Vec<Value> = (0..201)
        .map(|i| json!({"create": person(&format!("p{i}@example.com"), json!({"password": "a plaintext password"}))}))
        .collect();
    let res = c
        .patch(srv.admin_url("/admin/identities"))
        .json(&json!({"identities": plain}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("plaintext password is 200"),
        "{body}"
    );
    assert_eq!(all_identities(&srv).await.len(), 0);
    // Entries without patch_id carry none; errors carry no identity.
    let res = c
        .patch(srv.admin_url("/admin/identities"))
        .json(&json!({"identities": [
            {"create": {"schema_id": "default", "traits": {"email": "s1@example.com"}}},
            {"create": {"schema_id": "default", "traits": {"email": "s1@example.com"}}}
        ]}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let items = body["identities"].as_array().unwrap();
    assert!(
        items[0].get("patch_id").is_none() && items[0]["identity"].is_string(),
        "{body}"
    );
    assert_eq!(items[1]["action"], "error");
    assert!(
        items[1].get("identity").is_none() && items[1].get("patch_id").is_none(),
        "{body}"
    );
    assert_eq!(items[1]["error"]["code"], 409);
}
both!(batch_endpoint_limits_and_shape_match_kratos);
