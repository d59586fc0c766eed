//! What can go wrong while defining, loading, resolving or building stacks.

use std::fmt;

use crate::names::{closest, quoted};

/// What went wrong while defining, loading, resolving or building stacks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// A name that is neither a layer, an alias nor a named stack.
    UnknownName {
        /// The unknown name.
        name: String,
        /// Every name the registry knows, sorted.
        known: Vec<String>,
    },
    /// Aliases or named stacks that refer to themselves.
    Cycle {
        /// The chain of names, its first name repeated at the end.
        path: Vec<String>,
    },
    /// A malformed name, spec or definition.
    Invalid {
        /// What is malformed, with the culprit quoted.
        what: String,
        /// Why.
        why: String,
    },
    /// A layer name registered twice, or reused by a stack or alias.
    Duplicate {
        /// The name.
        name: String,
    },
    /// A stack file could not be read, or its content is wrong.
    File {
        /// The file, as given.
        path: String,
        /// What is wrong, starting with the line when there is one.
        message: String,
    },
    /// A layer that needs set-up (keys, say) was built before the application gave the
    /// registry a factory that holds it (see [`Registry::configure`](crate::Registry::configure)).
    MissingSetup {
        /// The layer.
        layer: String,
        /// What it needs, and how to give it.
        needs: &'static str,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::UnknownName { name, known } => {
                write!(f, "unknown stack or layer {}", quoted(name))?;
                let suggestion = closest(name, known);
                match (suggestion, known.is_empty()) {
                    (_, true) => f.write_str(" (nothing is registered)"),
                    (Some(s), false) => {
                        write!(f, " (did you mean {s:?}? known: {})", known.join(", "))
                    }
                    (None, false) => write!(f, " (known: {})", known.join(", ")),
                }
            }
            RegistryError::Cycle { path } => {
                write!(f, "stack definition cycle: {}", path.join(" -> "))
            }
            RegistryError::Invalid { what, why } => write!(f, "invalid {what}: {why}"),
            RegistryError::Duplicate { name } => write!(
                f,
                "duplicate name {}: a layer is registered once, and a stack or alias may not \
                 reuse a layer's name",
                quoted(name)
            ),
            RegistryError::File { path, message } => write!(f, "{path}: {message}"),
            RegistryError::MissingSetup { layer, needs } => {
                write!(
                    f,
                    "layer {} is not configured: it needs {needs}",
                    quoted(layer)
                )
            }
        }
    }
}

impl std::error::Error for RegistryError {}
