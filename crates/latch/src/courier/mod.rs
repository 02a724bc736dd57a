//! TEMPORARY: replaced by the courier module.
#![allow(missing_docs)]
use crate::deps::Deps;
use crate::store::StoreError;
use crate::store::code::CodeRow;

pub async fn send_with_code(
    deps: &Deps,
    row: &CodeRow,
    _template: &str,
    _to: &str,
    _data: &serde_json::Value,
) -> Result<(), StoreError> {
    deps.store.insert_code(row).await
}
