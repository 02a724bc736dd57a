//! Kratos-compatible UI model: the container a flow carries as `ui`, its
//! nodes, and the nodes generated from identity schemas.

pub mod container;
pub mod node;
pub mod traits;

pub use container::{Container, SortSpec};
pub use node::{
    AnchorAttributes, Attributes, Autocomplete, CSRF_TOKEN_NAME, DivisionAttributes, Group, ImageAttributes,
    InputAttributes, InputOption, InputType, Meta, Node, NodeType, ScriptAttributes, TextAttributes, Trigger,
    WEBAUTHN_SCRIPT_ID,
};
pub use traits::{property_order, trait_nodes};
