//! The self-service data that both the flow engine and the strategies work on. It depends on
//! neither, so strategies never import the engine (`flow/`).

pub mod credential;
pub mod flow;
pub mod session;

/// An authenticator assurance level. Kratos: `identity.AuthenticatorAssuranceLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aal {
    /// No authentication.
    Aal0,
    /// One factor.
    #[default]
    Aal1,
    /// Two factors.
    Aal2,
}

impl Aal {
    /// The wire value (`aal1`).
    pub fn as_str(self) -> &'static str {
        match self {
            Aal::Aal0 => "aal0",
            Aal::Aal1 => "aal1",
            Aal::Aal2 => "aal2",
        }
    }

    /// Parses the wire value.
    pub fn parse(s: &str) -> Option<Aal> {
        match s {
            "aal0" => Some(Aal::Aal0),
            "aal1" => Some(Aal::Aal1),
            "aal2" => Some(Aal::Aal2),
            _ => None,
        }
    }
}

impl std::fmt::Display for Aal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Aal {
    /// Unknown values read as `aal0` (grants nothing).
    fn from(s: &str) -> Aal {
        Aal::parse(s).unwrap_or(Aal::Aal0)
    }
}

impl PartialEq<&str> for Aal {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
