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
/// file or directory (os error 2)".
pub fn error_chain(error: &anyhow::Error) -> String {
    cfsgate_gate::reason_of(error.as_ref())
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    /// Like a thiserror variant `#[error("… {source}")]`: its message includes its source.
    #[derive(Debug)]
    struct Open {
        source: std::io::Error,
    }

    impl std::fmt::Display for Open {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot open image /x: {}", self.source)
        }
    }

    impl std::error::Error for Open {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let error = anyhow::Error::new(Open { source: io }).context("mounting sha256:ab on /m");
        assert_eq!(
            error_chain(&error),
            "mounting sha256:ab on /m: cannot open image /x: entity not found"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_chain(&plain), "outer: inner");
    }
}
