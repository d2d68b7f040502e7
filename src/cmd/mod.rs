//! One module per command group; each parses its arguments (clap derive) and calls the crates.

pub mod audit;
pub mod bundle;
pub mod doctor;
pub mod hook;
pub mod info;
pub mod key;
pub mod lazy;
pub mod manuals;
pub mod mkcomposefs;
pub mod mount;
pub mod oci;
pub mod partial;
pub mod policy;
pub mod progress;
pub mod registry;
pub mod sign;
pub mod sigstore;
pub mod store;
pub mod verify;

/// A verdict of "rejected" (or a broken audit chain): already explained on stdout, so the exit
/// code (1) alone reports it.
#[derive(Debug)]
pub struct Rejected;

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rejected")
    }
}

impl std::error::Error for Rejected {}

/// `Ok` when `accepted`, else [`Rejected`].
pub fn verdict(accepted: bool) -> anyhow::Result<()> {
    if accepted {
        Ok(())
    } else {
        Err(Rejected.into())
    }
}

/// Print `value` (serialised to a JSON object) with a `schema` member naming its versioned
/// schema (docs/json.md), pretty-printed.
pub fn print_json(schema: &str, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut doc = serde_json::to_value(value)?;
    let serde_json::Value::Object(map) = &mut doc else {
        anyhow::bail!("{schema}: the document is not a JSON object");
    };
    map.insert("schema".into(), schema.into());
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

/// An error and its causes on one line, `outer: cause: …`, without repeating a cause whose
/// text the message before it already ends with (`cfsgate_gate::reason_of`): library errors
/// (thiserror) often print their source inside their own message *and* expose it as
/// `source()`, so anyhow's `{:#}` would say "No such file or directory (os error 2): No such
/// file or directory (os error 2)". Tested on anyhow errors with `reason_of`.
pub fn error_chain(error: &anyhow::Error) -> String {
    cfsgate_gate::reason_of(error.as_ref())
}
