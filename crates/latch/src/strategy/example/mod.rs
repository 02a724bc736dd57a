//! placeholder
pub fn register(_r: &mut super::Registry<'_>) {}
