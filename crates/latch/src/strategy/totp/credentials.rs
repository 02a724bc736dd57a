//! TOTP keys: the `otpauth://totp/…` URL Kratos stores (`{"totp_url": …}`), new keys for
//! settings, code checks with ±1 step of skew, and the QR image of a key.
//! Kratos: `identity/credentials_totp.go`, `selfservice/strategy/totp/generator.go`.

use base64::Engine as _;
use serde_json::{Value, json};
use totp_rs::{Builder, Totp};

/// The stored credential config: `{"totp_url": "otpauth://totp/…"}`.
pub fn config_of(url: &str) -> Value {
    json!({ "totp_url": url })
}

/// The `totp_url` of a stored or imported credential config.
pub fn url_of(config: &Value) -> Option<&str> {
    config.get("totp_url").and_then(Value::as_str)
}

/// Why an `otpauth` URL is not a usable TOTP key (shown to admins on import).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

/// A key parsed from an `otpauth://totp/` URL.
#[derive(Debug, Clone)]
pub struct Key {
    totp: Totp,
}

impl Key {
    /// Parses an `otpauth://totp/…` URL. Like Kratos (pquerna/otp), short secrets and
    /// other algorithms, digit counts and periods are accepted; a URL without a secret, or
    /// with values no authenticator app produces codes for, is not.
    pub fn parse(url: &str) -> Result<Key, KeyError> {
        let totp = Totp::from_url_unchecked(url.trim())
            .map_err(|e| KeyError(format!("not an otpauth://totp/ URL with a secret: {e}")))?;
        if totp.secret().as_bytes().is_empty() {
            return Err(KeyError("the otpauth URL has an empty secret".into()));
        }
        if !(6..=8).contains(&totp.digits()) {
            return Err(KeyError(format!(
                "the otpauth URL asks for {} digits; 6 to 8 are supported",
                totp.digits()
            )));
        }
        if totp.step() == 0 {
            return Err(KeyError("the otpauth URL has a period of 0 seconds".into()));
        }
        Ok(Key { totp })
    }

    /// A new key: 160 random bits, SHA1, 6 digits, 30 s (Kratos' `NewKey`), labelled
    /// `issuer:account` for authenticator apps.
    pub fn generate(issuer: &str, account: &str) -> Result<(Key, String), KeyError> {
        // The otpauth label separates issuer and account with `:`, so neither may hold one.
        let clean = |s: &str| s.replace(':', " ").trim().to_string();
        let account = match clean(account) {
            a if a.is_empty() => "account".to_string(),
            a => a,
        };
        let issuer = clean(issuer);
        let totp = Builder::new()
            .with_account_name(account)
            .with_issuer((!issuer.is_empty()).then_some(issuer))
            .build()
            .map_err(|e| KeyError(e.to_string()))?;
        let url = totp.to_url().map_err(|e| KeyError(e.to_string()))?;
        Ok((Key { totp }, url))
    }

    /// The secret in base32, as authenticator apps take it when typed in.
    pub fn secret_base32(&self) -> String {
        self.totp.secret().to_base32()
    }

    /// The time step `code` is valid for at `unix` (±1 step of skew, as Kratos), compared in
    /// constant time; `None` when it is wrong.
    pub fn check(&self, code: &str, unix: u64) -> Option<u64> {
        let code = code.trim();
        if code.len() != usize::from(self.totp.digits()) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // totp-rs compares tokens in constant time; its skew is Kratos' (1).
        self.totp.check(code, unix)
    }

    /// Seconds in one step.
    pub fn period(&self) -> u64 {
        self.totp.step()
    }
}

/// The key's URL as a 256×256 PNG `data:` URL, as Kratos' `KeyToHTMLImage`.
pub fn qr_data_url(url: &str) -> Result<String, KeyError> {
    const SIZE: usize = 256;
    let code = qrcode::QrCode::new(url.as_bytes()).map_err(|e| KeyError(e.to_string()))?;
    let modules = code.width();
    let colors = code.to_colors();
    // Whole pixels per module, centred, with the rest as white margin (the quiet zone).
    let scale = (SIZE / (modules + 8)).max(1);
    let offset = SIZE.saturating_sub(modules * scale) / 2;
    let mut pixels = vec![255u8; SIZE * SIZE];
    for (i, p) in pixels.iter_mut().enumerate() {
        let (x, y) = (i % SIZE, i / SIZE);
        if x < offset || y < offset {
            continue;
        }
        let (mx, my) = ((x - offset) / scale, (y - offset) / scale);
        if mx < modules && my < modules && colors.get(my * modules + mx) == Some(&qrcode::Color::Dark) {
            *p = 0;
        }
    }
    let mut png = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png, SIZE as u32, SIZE as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| KeyError(e.to_string()))?;
        w.write_image_data(&pixels).map_err(|e| KeyError(e.to_string()))?;
    }
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&png)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B (SHA1, 8 digits, secret "12345678901234567890").
    #[test]
    fn rfc6238_vectors_and_skew() {
        let url = "otpauth://totp/Latch:ada?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=8&issuer=Latch";
        let key = Key::parse(url).unwrap();
        assert_eq!(key.check("94287082", 59), Some(1));
        assert_eq!(key.check("07081804", 1_111_111_109), Some(37_037_036));
        assert_eq!(key.check("14050471", 1_111_111_111), Some(37_037_037));
        // One step late or early is accepted, two are not.
        assert_eq!(key.check("07081804", 1_111_111_109 + 30), Some(37_037_036));
        assert_eq!(key.check("07081804", 1_111_111_109 + 60), None);
        assert_eq!(key.check("0708180", 1_111_111_109), None);
        assert_eq!(key.check("", 1_111_111_109), None);
    }

    #[test]
    fn generated_keys_round_trip_and_render() {
        let (key, url) = Key::generate("latch.test", "ada@example.com").unwrap();
        assert!(url.starts_with("otpauth://totp/latch.test:ada%40example.com?"), "{url}");
        assert_eq!(key.secret_base32().len(), 32);
        let parsed = Key::parse(&url).unwrap();
        assert_eq!(parsed.secret_base32(), key.secret_base32());
        assert_eq!(parsed.period(), 30);
        let png = qr_data_url(&url).unwrap();
        assert!(png.starts_with("data:image/png;base64,iVBORw0KGgo"));
        let (_, odd) = Key::generate("a:b", ":").unwrap();
        assert!(Key::parse(&odd).is_ok(), "{odd}");
    }

    #[test]
    fn unusable_urls_are_refused() {
        for bad in [
            "https://example.com/",
            "otpauth://hotp/x?secret=GEZDGNBVGY3TQOJQ&counter=1",
            "otpauth://totp/x",
            "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQ&digits=12",
            "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQ&period=0",
            "otpauth://totp/x?secret=!!!",
        ] {
            assert!(Key::parse(bad).is_err(), "{bad}");
        }
    }
}
