//! What request handlers share: the dependencies and the enabled strategies the engine
//! dispatches to. Strategies receive `&Deps` and never the strategy list itself, so `deps`
//! does not depend on `strategy`.

use std::sync::Arc;

use crate::deps::Deps;
use crate::strategy::Strategies;

/// The dependencies plus the engine's strategies.
#[derive(Debug)]
pub struct Service {
    /// Everything else.
    pub deps: Arc<Deps>,
    /// The enabled methods.
    pub strategies: Strategies,
}

impl std::ops::Deref for Service {
    type Target = Deps;
    fn deref(&self) -> &Deps {
        &self.deps
    }
}

/// Handler state.
pub type AppState = Arc<Service>;
