//! The one entry point for a reference of any transport: `containers-storage:…` goes to the
//! containers-storage reader ([`crate::cstorage`]), `oci:…` and `dir:…` to the layout resolver
//! ([`crate::resolve`]). Above both, so neither needs the other.

use crate::error::OciError;
use crate::layout::ImageRef;
use crate::resolve::{resolve_ref, Platform, ResolvedImage};

/// Resolve a reference text (`oci:…`, `dir:…` or `containers-storage:…`) for the running
/// platform.
pub fn resolve(reference: &str) -> Result<ResolvedImage, OciError> {
    if crate::cstorage::is_storage_reference(reference) {
        return crate::cstorage::resolve(reference, &Platform::current());
    }
    resolve_ref(&ImageRef::parse(reference)?, &Platform::current())
}
