//! A sandboxed Jsonnet engine for OIDC claim mappers and webhook bodies.
//!
//! Kratos runs both through go-jsonnet's `jsonnetsecure` VM: claims and the current identity arrive
//! as `ExtCode` variables (`std.extVar('claims')` is an object, not a string), webhook bodies get
//! `ctx` as a top-level argument (`TLACode`), every import is refused (`ErrorImporter`) and each
//! evaluation runs in a worker subprocess with a 1 s deadline and a 2 GiB address-space cap.
//! Latch evaluates with the pure-Rust `rsjsonnet-lang` (Jsonnet 0.20) in-process:
//!
//! - **Imports** (`import`, `importstr`, `importbin`) are refused by [`Callbacks`](rsjsonnet_lang::program::Callbacks)
//!   and reported as [`JsonnetError::ImportDenied`]; `std.native` has no functions.
//! - **Stack**: calls nest at most [`Limits::max_stack`] deep (the engine's own counter, so deep
//!   recursion ends with an error, not a crashed thread); the evaluation thread also gets a large
//!   native stack for deeply nested sources.
//! - **Time**: `rsjsonnet-lang` cannot be interrupted (it has no step budget and no hook called
//!   during evaluation). [`evaluate_limited`] therefore runs each evaluation on a dedicated OS
//!   thread and stops *waiting* at [`Limits::timeout`]; a program that is still running is
//!   detached and runs to its end on that thread. To keep runaway programs from taking every
//!   core, while [`max_runaway`] detached programs are still running (a process-wide count, as
//!   tokio keeps for its blocking pool) new evaluations fail at once with
//!   [`JsonnetError::Timeout`]; a detached thread frees its place when its program ends.
//!   Worst case: a mapper that never ends in practice (say, exponential recursion) pins
//!   [`max_runaway`] cores (half the machine, at least two) until restart, and every later
//!   evaluation fails; the rest of the server keeps serving.
//! - **Output**: the manifested JSON is refused above [`Limits::max_output_bytes`].
//! - **Memory** is not capped (no address-space limit inside one process); a program that builds
//!   a huge array can grow the process. Kratos' subprocess with `RLIMIT_AS` would be the next step.
//!
//! Why threads and not a worker subprocess as in Kratos: see `docs/adr/0009-jsonnet-sandbox.md`.
//!
//! Mappers and webhook bodies come from the operator's configuration; the claims and flow data
//! they read come from users and identity providers and are passed as values, never as code.

mod engine;
mod load;
mod messages;
mod runner;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use load::load;

/// A Jsonnet program and where it came from.
///
/// `origin` is shown in every error so that an operator knows which mapper or body to fix:
/// `file:///etc/latch/google.jsonnet`, `https://example.com/m.jsonnet` (no query or credentials),
/// or `base64://bG9jYWwg…` (truncated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The Jsonnet source text.
    pub source: String,
    /// Where it came from, for messages (also `std.thisFile`).
    pub origin: String,
}

impl Program {
    /// A program given inline (tests, `latch` subcommands); `origin` names it in errors.
    pub fn inline(origin: impl Into<String>, source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            origin: origin.into(),
        }
    }
}

/// Resource limits of one evaluation (Kratos: `jsonnetsecure` 1 s deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long [`evaluate_limited`] waits, including the wait for a free evaluation thread.
    pub timeout: Duration,
    /// Deepest call nesting before the program fails (the engine's default is 500).
    pub max_stack: usize,
    /// Largest manifested JSON output accepted, in bytes.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(1),
            max_stack: 500,
            max_output_bytes: 1024 * 1024,
        }
    }
}

/// Why a Jsonnet program could not be loaded or evaluated. Every variant names the program's
/// origin; `Syntax` and `Runtime` messages carry the line and column in the program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonnetError {
    /// The program could not be fetched or read (scheme, I/O, HTTP status, size, encoding).
    #[error("cannot load Jsonnet {origin}: {reason}")]
    Load { origin: String, reason: String },
    /// The program does not parse (or refers to unknown variables).
    #[error("Jsonnet {origin} is invalid: {message}")]
    Syntax { origin: String, message: String },
    /// The program failed while running (`error`, missing field, wrong type, stack overflow…).
    #[error("Jsonnet {origin} failed: {message}")]
    Runtime { origin: String, message: String },
    /// The program raised `error "cancel"` (any message starting with `cancel`): Kratos skips the
    /// webhook call silently (`request.ErrCancel`).
    #[error("Jsonnet {origin} cancelled the call")]
    Cancelled { origin: String },
    /// The evaluation did not finish within [`Limits::timeout`].
    #[error("Jsonnet {origin} did not finish within its time limit")]
    Timeout { origin: String },
    /// The output was larger than [`Limits::max_output_bytes`].
    #[error("Jsonnet {origin} produced more output than allowed")]
    TooLarge { origin: String },
    /// The program used `import`, `importstr` or `importbin`, which are never allowed.
    #[error("Jsonnet {origin} uses an import; imports are not allowed")]
    ImportDenied { origin: String },
}

impl JsonnetError {
    /// The origin of the program the error is about.
    pub fn origin(&self) -> &str {
        match self {
            Self::Load { origin, .. }
            | Self::Syntax { origin, .. }
            | Self::Runtime { origin, .. }
            | Self::Cancelled { origin }
            | Self::Timeout { origin }
            | Self::TooLarge { origin }
            | Self::ImportDenied { origin } => origin,
        }
    }
}

/// The values a program receives, both passed as data (Kratos passes them as JSON code, which
/// is the same thing for JSON).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// `std.extVar(name)` values (Kratos `ExtCode`; mappers get `claims` and `identity`).
    pub ext_code: Vec<(String, serde_json::Value)>,
    /// Named arguments for a top-level function (Kratos `TLACode`; webhook bodies get `ctx`).
    /// A program whose value is a function is called with them, as go-jsonnet does.
    pub tla_code: Vec<(String, serde_json::Value)>,
}

/// Evaluates `program` on the calling thread with `ext_code` variables and default stack and
/// output limits, and returns the manifested JSON. No time limit, and the parser recurses on the
/// caller's stack: request paths use [`evaluate_limited`]; this is for tests and CLI checks.
pub fn evaluate(program: &Program, ext_code: &[(&str, &serde_json::Value)]) -> Result<serde_json::Value, JsonnetError> {
    let inputs = Inputs {
        ext_code: ext_code
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).clone()))
            .collect(),
        tla_code: Vec::new(),
    };
    evaluate_inputs(program, &inputs, &Limits::default())
}

/// [`evaluate`] with top-level arguments too, and the stack and output limits of `limits`
/// (its timeout is not enforced here).
pub fn evaluate_inputs(program: &Program, inputs: &Inputs, limits: &Limits) -> Result<serde_json::Value, JsonnetError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine::run(program, inputs, limits)))
        .unwrap_or_else(|_| Err(engine::crashed(program)))
}

/// Evaluates with `ext_code` variables under all of `limits`; returns at the deadline even if
/// the program is still running (see the module docs for what happens to it).
pub async fn evaluate_limited(
    program: &Program,
    ext_code: Vec<(String, serde_json::Value)>,
    limits: Limits,
) -> Result<serde_json::Value, JsonnetError> {
    let inputs = Inputs {
        ext_code,
        tla_code: Vec::new(),
    };
    evaluate_inputs_limited(program, inputs, limits).await
}

/// [`evaluate_limited`] with top-level arguments (webhook bodies: `function(ctx) {…}`).
pub async fn evaluate_inputs_limited(
    program: &Program,
    inputs: Inputs,
    limits: Limits,
) -> Result<serde_json::Value, JsonnetError> {
    runner::Runner::shared().run(program, inputs, limits).await
}

/// How many timed-out evaluations may still be running before new ones are refused: half the
/// cores, at least two, so that programs that never end cannot take the whole machine.
pub fn max_runaway() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() / 2)
        .unwrap_or(2)
        .max(2)
}
