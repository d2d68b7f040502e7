//! Limits on the shape of an image that every reader enforces alike (the layout and registry
//! resolver, the containers-storage reader): a leaf they share.

/// Most layers an image may have (overlayfs stacks at most 500 lower layers).
pub const MAX_LAYERS: usize = 500;
