//! The registry of layers and named stacks: what turns a name such as `secure` or a spec such as
//! `port+passthrough` into a [`Stack`].
//!
//! # Names and specs
//!
//! A registry knows three kinds of names, all in one namespace:
//!
//! - **layers**: a name bound to a [`LayerFactory`], which builds one layer of a connection;
//! - **aliases**: another name for one name (`pass` for `passthrough`);
//! - **named stacks**: a list of names, top first (`secure` is `port` over `passthrough`).
//!
//! A name is 1 to [`MAX_NAME_LEN`] characters out of lower-case ASCII letters, digits, `_` and
//! `-` (`[a-z0-9_-]+`). A **spec** is a name or several joined with `+`, leftmost on top, as in an
//! address scheme (`git+ssh`): `frame+secure` is `frame` over whatever `secure` is.
//! [`Registry::resolve`] expands aliases and named stacks recursively down to layer names, and
//! refuses unknown names, cycles, empty specs or components, bad characters, nesting deeper
//! than [`MAX_DEPTH`] and stacks of more than [`MAX_LAYERS`] layers.
//!
//! Layers are fixed once registered: a stack or alias may not reuse a layer's name. A stack or
//! alias defined again replaces the earlier definition (an alias replaces a stack of the same
//! name and the other way round), so a user's file can redefine `secure`.
//!
//! # Layers and their set-up
//!
//! A factory captures whatever its layer needs (keys, a configuration) and is called once per
//! connection with the connection's [`Start`] (the moment, the wall clock, entropy derived for
//! that layer) and the layer's index (0 = bottom). A new layer is a file with its factory
//! and one line in [`Registry::with_builtins`], or one [`Registry::register_layer`] call.
//!
//! [`Registry::with_builtins`] knows the layers `passthrough`, `frame`, `port` and `seaside`,
//! the aliases `pass` (for `passthrough`) and `framing` (for `frame`), and the stack `secure`
//! (`port+passthrough`). `port` and `seaside` need keys, which only the application has: until
//! it hands the registry a factory holding them ([`Registry::configure`] with
//! [`layers::port::client`] and the like), building them fails
//! with [`RegistryError::MissingSetup`], while their names resolve as usual. `seaside`
//! (upstream SeasideVPN's PORT) must be the bottom layer: it moves to a second TCP connection
//! after its handshake.
//!
//! # Stack files
//!
//! Named stacks and aliases can be declared in TOML files:
//!
//! ```toml
//! [stack.secure]
//! layers = ["port", "passthrough"]   # top first
//!
//! [stack.framed]
//! layers = ["frame", "secure"]       # may reference other stacks and aliases
//!
//! [alias]
//! p = "port"
//! ```
//!
//! The only top-level keys are `stack` and `alias`, and the only key of a `[stack.NAME]` table is
//! `layers`, a non-empty list of names; anything else is an error naming the key, the file and
//! the line. A file is checked as a whole before anything in it is applied. References are
//! checked when a spec is resolved, not when a file is loaded, so files may be loaded in any
//! order ([`Registry::validate`] checks everything at once).
//!
//! [`Registry::search_path`] lists where stack files are looked for, and
//! [`Registry::load_search_path`] loads those that exist.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use port_core::Start;
//! use port_stack::Registry;
//!
//! let mut registry = Registry::with_builtins();
//! registry.load_toml_str(
//!     r#"
//!     [stack.framed]
//!     layers = ["frame", "secure"]
//!
//!     [alias]
//!     f = "framed"
//!     "#,
//!     "stacks.toml",
//! )?;
//! assert_eq!(registry.resolve("f")?, ["frame", "port", "passthrough"]);
//! assert_eq!(registry.resolve("frame+pass")?, ["frame", "passthrough"]);
//!
//! // Layers without set-up of their own build directly; `port` needs its keys first.
//! let start = Start { now: Instant::now(), unix_time: Duration::from_secs(1), seed: [0; 32] };
//! let stack = registry.build("frame+pass", &start)?;
//! assert_eq!(stack.layer_names(), ["frame", "passthrough"]);
//! assert!(registry.build("secure", &start).is_err());
//! # Ok::<(), port_stack::RegistryError>(())
//! ```

mod file;
mod search;

use std::collections::BTreeMap;
use std::fmt;

use port_core::Start;

pub use crate::error::RegistryError;
pub use crate::factory::{LayerFactory, factory};
pub use crate::names::{MAX_NAME_LEN, is_valid_name};

use crate::layers;
use crate::names::{name_problem, quoted, split_spec};
use crate::stack::Stack;

/// The most layers a spec may expand to.
pub const MAX_LAYERS: usize = 64;
/// How deeply aliases and named stacks may refer to one another.
pub const MAX_DEPTH: usize = 32;
/// The largest stack file [`Registry::load_file`] reads.
pub const MAX_FILE_LEN: u64 = 1024 * 1024;

/// The environment variable naming an extra stack file (see [`Registry::search_path`]).
pub const STACKS_FILE_VAR: &str = "PORT_STACKS_FILE";

/// What a name stands for in a [`Registry`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Definition {
    /// A layer, with its factory.
    Layer,
    /// Another name for `target`.
    Alias {
        /// The name it stands for.
        target: String,
    },
    /// A named stack.
    Stack {
        /// Its names, top first, as defined (not expanded).
        layers: Vec<String>,
    },
}

/// Layers, aliases and named stacks, by name. Cheap to clone (factories are shared).
#[derive(Clone)]
pub struct Registry {
    layers: BTreeMap<String, LayerFactory>,
    aliases: BTreeMap<String, String>,
    stacks: BTreeMap<String, Vec<String>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("layers", &self.layers.keys().collect::<Vec<_>>())
            .field("aliases", &self.aliases)
            .field("stacks", &self.stacks)
            .finish()
    }
}

impl Default for Registry {
    /// The same as [`Registry::with_builtins`].
    fn default() -> Self {
        Registry::with_builtins()
    }
}

impl Registry {
    /// A registry that knows nothing.
    pub fn empty() -> Registry {
        Registry {
            layers: BTreeMap::new(),
            aliases: BTreeMap::new(),
            stacks: BTreeMap::new(),
        }
    }

    /// The built-in layers `passthrough`, `frame`, `port` and `seaside`, the aliases `pass`
    /// and `framing`, and the stack `secure` (`port` over `passthrough`).
    ///
    /// `port` and `seaside` are registered without their keys: see [`configure`](Self::configure).
    pub fn with_builtins() -> Registry {
        let mut registry = Registry::empty();
        let builtin = [
            ("passthrough", layers::passthrough::factory()),
            ("frame", layers::frame::factory()),
            ("port", layers::port::unconfigured()),
            ("seaside", layers::seaside::unconfigured()),
        ];
        for (name, factory) in builtin {
            registry.layers.insert(name.to_owned(), factory);
        }
        registry
            .aliases
            .insert("pass".to_owned(), "passthrough".to_owned());
        registry
            .aliases
            .insert("framing".to_owned(), "frame".to_owned());
        registry.stacks.insert(
            "secure".to_owned(),
            vec!["port".to_owned(), "passthrough".to_owned()],
        );
        registry
    }

    /// Registers a layer under `name`.
    ///
    /// Fails with [`RegistryError::Invalid`] for a bad name and with
    /// [`RegistryError::Duplicate`] if the name is already taken (by a layer, an alias or a
    /// stack).
    pub fn register_layer(
        &mut self,
        name: &str,
        factory: LayerFactory,
    ) -> Result<(), RegistryError> {
        check_name("layer name", name)?;
        if self.definition(name).is_some() {
            return Err(RegistryError::Duplicate {
                name: name.to_owned(),
            });
        }
        self.layers.insert(name.to_owned(), factory);
        Ok(())
    }

    /// Gives the layer `name` the factory it is built with from now on: how an application
    /// hands a layer its set-up (`port` its keys, with
    /// [`layers::port::server`], say).
    ///
    /// Fails with [`RegistryError::UnknownName`] if `name` is not a layer (an alias or a named
    /// stack is not configured; its layers are).
    pub fn configure(&mut self, name: &str, factory: LayerFactory) -> Result<(), RegistryError> {
        match self.layers.get_mut(name) {
            Some(slot) => {
                *slot = factory;
                Ok(())
            }
            None => Err(RegistryError::UnknownName {
                name: name.to_owned(),
                known: self.layers.keys().cloned().collect(),
            }),
        }
    }

    /// Makes `alias` another name for `target` (a layer, an alias or a stack; checked when
    /// resolved). Replaces an earlier alias or stack named `alias`; fails with
    /// [`RegistryError::Duplicate`] if `alias` is a layer.
    pub fn alias(&mut self, alias: &str, target: &str) -> Result<(), RegistryError> {
        check_name("alias name", alias)?;
        check_name(&format!("target of alias {}", quoted(alias)), target)?;
        if self.layers.contains_key(alias) {
            return Err(RegistryError::Duplicate {
                name: alias.to_owned(),
            });
        }
        self.stacks.remove(alias);
        self.aliases.insert(alias.to_owned(), target.to_owned());
        Ok(())
    }

    /// Defines the stack `name` as `layers_top_first` (names of layers, aliases or other
    /// stacks; checked when resolved). Replaces an earlier stack or alias named `name`; fails
    /// with [`RegistryError::Duplicate`] if `name` is a layer, and with
    /// [`RegistryError::Invalid`] for bad names or an empty list.
    pub fn define_stack(
        &mut self,
        name: &str,
        layers_top_first: &[&str],
    ) -> Result<(), RegistryError> {
        check_name("stack name", name)?;
        if layers_top_first.is_empty() {
            return Err(RegistryError::Invalid {
                what: format!("stack {}", quoted(name)),
                why: "a stack needs at least one layer".to_owned(),
            });
        }
        for layer in layers_top_first {
            check_name(&format!("layer of stack {}", quoted(name)), layer)?;
        }
        if self.layers.contains_key(name) {
            return Err(RegistryError::Duplicate {
                name: name.to_owned(),
            });
        }
        self.aliases.remove(name);
        self.stacks.insert(
            name.to_owned(),
            layers_top_first.iter().map(|l| (*l).to_owned()).collect(),
        );
        Ok(())
    }

    /// Expands `spec` (a layer, an alias, a named stack, or several names joined by `+`,
    /// leftmost on top) to layer names, top first.
    ///
    /// Aliases and named stacks are expanded recursively. Fails with
    /// [`RegistryError::Invalid`] for an empty spec, an empty component (`port++passthrough`),
    /// a bad name, nesting deeper than [`MAX_DEPTH`] or more than [`MAX_LAYERS`] layers; with
    /// [`RegistryError::UnknownName`] for a name that is not defined (also one an alias or
    /// stack refers to); and with [`RegistryError::Cycle`] for definitions that refer to
    /// themselves.
    pub fn resolve(&self, spec: &str) -> Result<Vec<String>, RegistryError> {
        let names = split_spec(spec).map_err(|problem| RegistryError::Invalid {
            what: format!("stack spec {}", quoted(spec)),
            why: problem.to_string(),
        })?;
        let mut out = Vec::new();
        let mut path = Vec::new();
        for name in names {
            self.expand(spec, name, &mut path, &mut out)?;
        }
        Ok(out)
    }

    fn expand(
        &self,
        spec: &str,
        name: &str,
        path: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<(), RegistryError> {
        if self.layers.contains_key(name) {
            if out.len() >= MAX_LAYERS {
                return Err(RegistryError::Invalid {
                    what: format!("stack spec {}", quoted(spec)),
                    why: format!("it expands to more than {MAX_LAYERS} layers"),
                });
            }
            out.push(name.to_owned());
            return Ok(());
        }
        if let Some(start) = path.iter().position(|p| p == name) {
            let mut cycle = path[start..].to_vec();
            cycle.push(name.to_owned());
            return Err(RegistryError::Cycle { path: cycle });
        }
        if path.len() >= MAX_DEPTH {
            return Err(RegistryError::Invalid {
                what: format!("stack spec {}", quoted(spec)),
                why: format!("its definitions nest more than {MAX_DEPTH} deep"),
            });
        }
        let children: &[String] = if let Some(target) = self.aliases.get(name) {
            std::slice::from_ref(target)
        } else if let Some(layers) = self.stacks.get(name) {
            layers
        } else {
            return Err(RegistryError::UnknownName {
                name: name.to_owned(),
                known: self.names(),
            });
        };
        path.push(name.to_owned());
        for child in children {
            self.expand(spec, child, path, out)?;
        }
        path.pop();
        Ok(())
    }

    /// Resolves every alias and named stack, reporting the first problem (an unknown
    /// reference, a cycle, a stack too large), so that errors in stack files show up when
    /// they are loaded rather than when a stack is used.
    pub fn validate(&self) -> Result<(), RegistryError> {
        for name in self.aliases.keys().chain(self.stacks.keys()) {
            self.resolve(name)?;
        }
        Ok(())
    }

    /// Every name (layers, aliases and stacks), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .layers
            .keys()
            .chain(self.aliases.keys())
            .chain(self.stacks.keys())
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// What `name` stands for, if it is known.
    pub fn definition(&self, name: &str) -> Option<Definition> {
        if self.layers.contains_key(name) {
            Some(Definition::Layer)
        } else if let Some(target) = self.aliases.get(name) {
            Some(Definition::Alias {
                target: target.clone(),
            })
        } else {
            self.stacks.get(name).map(|layers| Definition::Stack {
                layers: layers.clone(),
            })
        }
    }

    /// Resolves `spec`, builds each layer bottom first with its factory (index 0 = bottom,
    /// each with its own seed derived from `start`), and returns the stack, named `spec`.
    pub fn build(&self, spec: &str, start: &Start) -> Result<Stack, RegistryError> {
        let names = self.resolve(spec)?;
        let mut layers = Vec::with_capacity(names.len());
        for (index, name) in names.iter().rev().enumerate() {
            let make = self
                .layers
                .get(name)
                .ok_or_else(|| RegistryError::UnknownName {
                    name: name.clone(),
                    known: self.names(),
                })?;
            layers.push((name.clone(), make(&start.derive(index), index)?));
        }
        Stack::new(spec, layers).ok_or_else(|| RegistryError::Invalid {
            what: format!("stack spec {}", quoted(spec)),
            why: "it has no layers".to_owned(),
        })
    }
}

fn check_name(what: &str, name: &str) -> Result<(), RegistryError> {
    match name_problem(name) {
        None => Ok(()),
        Some(why) => Err(RegistryError::Invalid {
            what: format!("{what} {}", quoted(name)),
            why: why.to_owned(),
        }),
    }
}
