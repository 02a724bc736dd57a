//! The self-service data that both the flow engine and the strategies work on. It depends on
//! neither, so strategies never import the engine (`flow/`).

pub mod credential;
pub mod flow;
