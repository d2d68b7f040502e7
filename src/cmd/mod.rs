//! One module per command group; each parses its arguments (clap derive) and calls the crates.

pub mod audit;
pub mod bundle;
pub mod hook;
pub mod info;
pub mod key;
pub mod mkcomposefs;
pub mod mount;
pub mod oci;
pub mod policy;
pub mod store;
pub mod verify;
