//! Scope lookup: which requirements apply to an image, with the record of every key tried.
//!
//! Order (containers/image `requirementsForImageRef`), first hit wins, nothing is merged:
//!
//! 1. the transport section of the image's transport, if any:
//!    1. the image's identity (`docker`: `name:tag` / `name@digest`; `dir`/`oci`: the path);
//!    2. each namespace from [`ImageRef::namespaces`], most specific first;
//!    3. the transport default `""`;
//! 2. the global `default`.
//!
//! Each lookup is a hash probe, so resolution costs O(number of namespaces), independent
//! of how many scopes the policy has.

use crate::error::Location;
use crate::model::{Mode, Policy, Requirement, Scope, ScopeKind};
use crate::transport::ImageRef;

/// The scope chosen for an image and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedScope<'p> {
    /// The transport section consulted (`None` when the policy has no section for the
    /// image's transport, or when the global default was used).
    pub transport: Option<&'p str>,
    /// The image's transport (`docker` for a local image named with `--reference`).
    pub image_transport: String,
    /// The matched scope (the global default has kind [`ScopeKind::GlobalDefault`]).
    pub scope: &'p Scope,
    /// Every key tried, in order, ending with the one that matched (`""` for a transport
    /// default, `default` for the global default).
    pub tried: Vec<LookupStep>,
    /// For a local image named with `--reference`: its real transport and path.
    pub source: Option<(String, String)>,
}

/// One probe of the lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupStep {
    /// The scope key probed (`""` for the defaults).
    pub key: String,
    /// Which step of the lookup order it was.
    pub role: StepRole,
    /// Whether the policy has that key (the lookup stops at the first match).
    pub matched: bool,
}

/// Why a key was tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepRole {
    /// The image's own identity (`name:tag`, `name@digest`, or the path).
    Identity,
    /// One of the image's enclosing namespaces, most specific first.
    Namespace,
    /// The transport's `""` scope.
    TransportDefault,
    /// The top-level `default`.
    GlobalDefault,
}

impl<'p> MatchedScope<'p> {
    /// The requirements to evaluate (all must pass).
    pub fn requirements(&self) -> &'p [Requirement] {
        &self.scope.requirements
    }
    /// Where each requirement is in the file.
    pub fn requirement_locations(&self) -> &'p [Location] {
        &self.scope.requirement_locations
    }
    /// Enforce or warn.
    pub fn mode(&self) -> Mode {
        self.scope.mode
    }
    /// One line saying which scope applied, for explanations.
    pub fn describe(&self) -> String {
        match (self.scope.kind, self.transport) {
            (ScopeKind::GlobalDefault, _) => format!(
                "global default (line {}) — no scope of transport {:?} matched",
                self.scope.location.line, self.image_transport
            ),
            (ScopeKind::TransportDefault, Some(t)) => {
                format!(
                    "transports.{t} default \"\" (line {})",
                    self.scope.location.line
                )
            }
            (_, t) => format!(
                "transports.{} scope {:?} (line {})",
                t.unwrap_or_default(),
                self.scope.name,
                self.scope.location.line
            ),
        }
    }
}

impl Policy {
    /// Selects the scope for `image`, recording the path of the lookup.
    pub fn requirements_for(&self, image: &ImageRef) -> MatchedScope<'_> {
        let mut tried = Vec::new();
        let source = image.source().map(|(t, p)| (t.to_string(), p.to_string()));
        if let Some(section) = self.transport(image.transport()) {
            let candidates = std::iter::once((image.identity(), StepRole::Identity))
                .chain(
                    image
                        .namespaces()
                        .iter()
                        .map(|n| (n.as_str(), StepRole::Namespace)),
                )
                .chain(std::iter::once(("", StepRole::TransportDefault)));
            for (key, role) in candidates {
                let found = section.scope(key);
                tried.push(LookupStep {
                    key: key.to_string(),
                    role,
                    matched: found.is_some(),
                });
                if let Some(scope) = found {
                    return MatchedScope {
                        transport: Some(section.name.as_str()),
                        image_transport: image.transport().to_string(),
                        scope,
                        tried,
                        source,
                    };
                }
            }
        }
        tried.push(LookupStep {
            key: "default".to_string(),
            role: StepRole::GlobalDefault,
            matched: true,
        });
        MatchedScope {
            transport: None,
            image_transport: image.transport().to_string(),
            scope: &self.default,
            tried,
            source,
        }
    }
}
