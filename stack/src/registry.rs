//! The registry of layers and named stacks: what turns a name such as `secure` or a spec such as
//! `port+passthrough` into a [`Stack`].
//!
//! # Names and specs
//!
//! A registry knows three kinds of names, all in one namespace:
//!
//! - **layers**: a name bound to a pair of factories, one per [`Side`];
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
//! # Built-ins
//!
//! [`Registry::with_builtins`] knows the layers `passthrough`, `port`, `seaside` and `frame`,
//! the aliases `pass` (for `passthrough`) and `framing` (for `frame`), and the stack `secure`
//! (`port+passthrough`). `seaside` (upstream SeasideVPN's PORT) must be the bottom layer: it
//! moves to a second TCP connection after its handshake.
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
//! use port_core::Side;
//! use stack::{LayerContext, Registry};
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
//! // Layers without setup of their own build directly; `port` needs a ClientConfig or a
//! // ServerConfig in the context.
//! let ctx = LayerContext::new(Side::Client, Instant::now(), Duration::from_secs(1), [0; 32]);
//! let stack = registry.build("frame+pass", &ctx)?;
//! assert_eq!(stack.layer_names(), ["frame", "passthrough"]);
//! assert!(registry.build("secure", &ctx).is_err());
//! # Ok::<(), stack::RegistryError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use port_core::Side;

use crate::layer::{Layer, LayerContext};
use crate::layers::{Frame, Passthrough, PortLayer, SeasideLayer};
use crate::stack::Stack;

/// Builds one layer for one side. `index` is the layer's position in the stack, 0 = bottom.
pub type LayerFactory =
    Arc<dyn Fn(&LayerContext, usize) -> Result<Box<dyn Layer>, RegistryError> + Send + Sync>;

/// The longest name a layer, alias or stack may have.
pub const MAX_NAME_LEN: usize = 64;
/// The most layers a spec may expand to.
pub const MAX_LAYERS: usize = 64;
/// How deeply aliases and named stacks may refer to one another.
pub const MAX_DEPTH: usize = 32;
/// The largest stack file [`Registry::load_file`] reads.
pub const MAX_FILE_LEN: u64 = 1024 * 1024;

/// The environment variable naming an extra stack file (see [`Registry::search_path`]).
pub const STACKS_FILE_VAR: &str = "PORT_STACKS_FILE";

/// Wraps a closure into a [`LayerFactory`].
pub fn factory<F>(f: F) -> LayerFactory
where
    F: Fn(&LayerContext, usize) -> Result<Box<dyn Layer>, RegistryError> + Send + Sync + 'static,
{
    Arc::new(f)
}

/// True if `name` is a valid layer, alias or stack name: 1 to [`MAX_NAME_LEN`] characters out of
/// `a-z`, `0-9`, `_` and `-`.
pub fn is_valid_name(name: &str) -> bool {
    name_problem(name).is_none()
}

/// Why `name` is not a valid name, if it is not.
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("a name cannot be empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("a name has at most 64 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        Some("names are lower-case letters a-z, digits, '_' and '-'")
    } else {
        None
    }
}

/// What is wrong with a spec, for the registry's and the address parser's errors.
#[derive(Debug)]
pub(crate) enum SpecProblem<'a> {
    /// The spec is empty.
    Empty,
    /// `+` at the start, at the end, or twice in a row.
    EmptyComponent,
    /// One component is not a valid name.
    BadName(&'a str, &'static str),
}

impl fmt::Display for SpecProblem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecProblem::Empty => f.write_str("it is empty"),
            SpecProblem::EmptyComponent => f.write_str(
                "it has an empty name ('+' at the start, at the end, or twice in a row)",
            ),
            SpecProblem::BadName(name, why) => write!(f, "bad name {}: {why}", quoted(name)),
        }
    }
}

/// Splits `NAME(+NAME)*` into its names, top first.
pub(crate) fn split_spec(spec: &str) -> Result<Vec<&str>, SpecProblem<'_>> {
    if spec.is_empty() {
        return Err(SpecProblem::Empty);
    }
    let names: Vec<&str> = spec.split('+').collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err(SpecProblem::EmptyComponent);
    }
    for name in &names {
        if let Some(why) = name_problem(name) {
            return Err(SpecProblem::BadName(name, why));
        }
    }
    Ok(names)
}

/// `text` quoted and escaped for a one-line message, cut to a readable length.
pub(crate) fn quoted(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut:?}...")
    }
}

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
    /// A layer's factory needs setup the [`LayerContext`] does not carry.
    MissingSetup {
        /// The layer.
        layer: String,
        /// The side being built.
        side: Side,
        /// What it needs.
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
            RegistryError::MissingSetup { layer, side, needs } => write!(
                f,
                "layer {} on the {side} side needs {needs} in the LayerContext",
                quoted(layer)
            ),
        }
    }
}

impl std::error::Error for RegistryError {}

/// The known name closest to `name` (at most two edits away), if any.
fn closest<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| *d <= 2 && *d < k.chars().count().max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// What a name stands for in a [`Registry`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Definition {
    /// A layer with its two factories.
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

#[derive(Clone)]
struct LayerEntry {
    client: LayerFactory,
    server: LayerFactory,
}

/// Layers, aliases and named stacks, by name. Cheap to clone (factories are shared).
#[derive(Clone)]
pub struct Registry {
    layers: BTreeMap<String, LayerEntry>,
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

fn missing(layer: &str, side: Side, needs: &'static str) -> RegistryError {
    RegistryError::MissingSetup {
        layer: layer.to_owned(),
        side,
        needs,
    }
}

/// The `needs` of a client-side `port` layer without a [`port_core::ClientConfig`].
pub const NEEDS_CLIENT_CONFIG: &str = "a ClientConfig (key and token)";
/// The `needs` of a server-side `port` layer without a [`port_core::ServerConfig`].
pub const NEEDS_SERVER_CONFIG: &str = "a ServerConfig (server key)";

/// The `needs` of a client-side `seaside` layer without a seaside client setup.
pub const NEEDS_SEASIDE_CLIENT_CONFIG: &str = "a seaside ClientConfig (upstream key and token)";
/// The `needs` of a server-side `seaside` layer without a seaside listener setup.
pub const NEEDS_SEASIDE_SERVER_CONFIG: &str = "a seaside ServerConfig (upstream private key)";

/// Refuses a layer that owns the transport anywhere but at the bottom.
fn bottom_only(layer: &str, index: usize) -> Result<(), RegistryError> {
    if index == 0 {
        return Ok(());
    }
    Err(RegistryError::Invalid {
        what: format!("layer {}", quoted(layer)),
        why: "it moves to a second TCP connection, so it must be the bottom (rightmost) layer"
            .to_owned(),
    })
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

    /// The built-in layers `passthrough`, `port`, `seaside` and `frame`, the aliases `pass`
    /// and `framing`, and the stack `secure` (`port` over `passthrough`).
    ///
    /// `seaside` (upstream SeasideVPN's PORT, see [`port_core::seaside`]) needs
    /// [`LayerContext::seaside_client`] or [`LayerContext::seaside_server`], and must be the
    /// bottom layer: it moves to a second TCP connection after its handshake.
    ///
    /// `port` needs [`LayerContext::client`] on the client side and [`LayerContext::server`] on
    /// the server side (otherwise [`RegistryError::MissingSetup`]) and takes its seed from
    /// [`LayerContext::seed_for`] its index.
    pub fn with_builtins() -> Registry {
        let mut registry = Registry::empty();
        let passthrough = factory(|_, _| Ok(Box::new(Passthrough::new())));
        let frame = factory(|_, _| Ok(Box::new(Frame::new())));
        let port_client = factory(|ctx, index| {
            let setup = ctx
                .client
                .as_ref()
                .ok_or_else(|| missing("port", Side::Client, NEEDS_CLIENT_CONFIG))?;
            Ok(Box::new(PortLayer::client(
                setup,
                ctx.now,
                ctx.unix_time,
                ctx.seed_for(index),
            )))
        });
        let port_server = factory(|ctx, index| {
            let setup = ctx
                .server
                .as_ref()
                .ok_or_else(|| missing("port", Side::Server, NEEDS_SERVER_CONFIG))?;
            Ok(Box::new(PortLayer::server(
                setup,
                ctx.now,
                ctx.unix_time,
                ctx.seed_for(index),
            )))
        });
        let seaside_client = factory(|ctx, index| {
            bottom_only("seaside", index)?;
            let setup = ctx
                .seaside_client
                .as_ref()
                .ok_or_else(|| missing("seaside", Side::Client, NEEDS_SEASIDE_CLIENT_CONFIG))?;
            Ok(Box::new(SeasideLayer::client(
                setup,
                ctx.now,
                ctx.seed_for(index),
            )))
        });
        let seaside_server = factory(|ctx, index| {
            bottom_only("seaside", index)?;
            let setup = ctx
                .seaside_server
                .as_ref()
                .ok_or_else(|| missing("seaside", Side::Server, NEEDS_SEASIDE_SERVER_CONFIG))?;
            Ok(Box::new(SeasideLayer::server(
                setup,
                ctx.now,
                ctx.seed_for(index),
            )))
        });
        let builtin = [
            ("passthrough", passthrough.clone(), passthrough),
            ("port", port_client, port_server),
            ("seaside", seaside_client, seaside_server),
            ("frame", frame.clone(), frame),
        ];
        for (name, client, server) in builtin {
            registry
                .layers
                .insert(name.to_owned(), LayerEntry { client, server });
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

    /// Registers a layer under `name`, with one factory per side.
    ///
    /// Fails with [`RegistryError::Invalid`] for a bad name and with
    /// [`RegistryError::Duplicate`] if the name is already taken (by a layer, an alias or a
    /// stack).
    pub fn register_layer(
        &mut self,
        name: &str,
        client: LayerFactory,
        server: LayerFactory,
    ) -> Result<(), RegistryError> {
        check_name("layer name", name)?;
        if self.definition(name).is_some() {
            return Err(RegistryError::Duplicate {
                name: name.to_owned(),
            });
        }
        self.layers
            .insert(name.to_owned(), LayerEntry { client, server });
        Ok(())
    }

    /// Registers a layer built the same way on both sides.
    pub fn register_symmetric_layer(
        &mut self,
        name: &str,
        factory: LayerFactory,
    ) -> Result<(), RegistryError> {
        self.register_layer(name, factory.clone(), factory)
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

    /// Loads stacks and aliases from the TOML `text` of a stack file (see the
    /// [module documentation](self) for the format); `origin` names the file in errors.
    ///
    /// The whole file is checked before anything is applied: on error the registry is
    /// unchanged. Every error is a [`RegistryError::File`] whose message starts with the line
    /// (and for syntax errors the column).
    pub fn load_toml_str(&mut self, text: &str, origin: &str) -> Result<(), RegistryError> {
        let parsed = parse_stack_file(text, origin)?;
        let err = |span: &std::ops::Range<usize>, message: String| RegistryError::File {
            path: origin.to_owned(),
            message: format!("{}: {message}", Position::of(text, span.start)),
        };
        for def in &parsed {
            if self.layers.contains_key(&def.name) {
                let (kind, header) = match def.body {
                    Body::Stack(_) => ("stack", format!("[stack.{}]", def.name)),
                    Body::Alias(_) => ("alias", format!("alias {:?}", def.name)),
                };
                return Err(err(
                    &def.span,
                    format!(
                        "{header}: {:?} is a layer; a {kind} may not shadow a layer name",
                        def.name
                    ),
                ));
            }
        }
        for def in parsed {
            match def.body {
                Body::Stack(layers) => {
                    self.aliases.remove(&def.name);
                    self.stacks.insert(def.name, layers);
                }
                Body::Alias(target) => {
                    self.stacks.remove(&def.name);
                    self.aliases.insert(def.name, target);
                }
            }
        }
        Ok(())
    }

    /// Loads a stack file (at most [`MAX_FILE_LEN`] bytes of UTF-8 TOML); errors name `path`.
    pub fn load_file(&mut self, path: &Path) -> Result<(), RegistryError> {
        let shown = path.display().to_string();
        let file_err = |message: String| RegistryError::File {
            path: shown.clone(),
            message,
        };
        let file = std::fs::File::open(path).map_err(|e| file_err(format!("cannot open: {e}")))?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| file_err(format!("cannot read: {e}")))?;
        if bytes.len() as u64 > MAX_FILE_LEN {
            return Err(file_err(format!(
                "larger than {MAX_FILE_LEN} bytes; not a stack file?"
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            file_err(format!(
                "not UTF-8 (at byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        self.load_toml_str(&text, &shown)
    }

    /// Where stack files are looked for, most specific first:
    ///
    /// 1. the file named by `$PORT_STACKS_FILE`, if that variable is set and not empty;
    /// 2. `port-stacks.toml` in the current directory;
    /// 3. `$XDG_CONFIG_HOME/port/stacks.toml` if `XDG_CONFIG_HOME` is set to an absolute path,
    ///    otherwise `$HOME/.config/port/stacks.toml` if `HOME` is set.
    ///
    /// See [`load_search_path`](Self::load_search_path) for how they combine.
    pub fn search_path() -> Vec<PathBuf> {
        search_path_with(|var| std::env::var_os(var))
            .into_iter()
            .map(|(path, _)| path)
            .collect()
    }

    /// Loads the files of [`search_path`](Self::search_path) that exist, most general first,
    /// so that a more specific file's stacks and aliases replace a more general one's, and
    /// returns them in the order they were loaded.
    ///
    /// A file named by `$PORT_STACKS_FILE` must exist. On any error the registry is unchanged.
    pub fn load_search_path(&mut self) -> Result<Vec<PathBuf>, RegistryError> {
        self.load_candidates(search_path_with(|var| std::env::var_os(var)))
    }

    /// Loads candidates given most specific first, each `(path, required)`.
    fn load_candidates(
        &mut self,
        candidates: Vec<(PathBuf, bool)>,
    ) -> Result<Vec<PathBuf>, RegistryError> {
        let mut next = self.clone();
        let mut loaded = Vec::new();
        for (path, required) in candidates.into_iter().rev() {
            let exists = match std::fs::metadata(&path) {
                Ok(meta) => meta.is_file(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => {
                    return Err(RegistryError::File {
                        path: path.display().to_string(),
                        message: format!("cannot open: {e}"),
                    });
                }
            };
            if !exists {
                if required {
                    return Err(RegistryError::File {
                        path: path.display().to_string(),
                        message: format!("named by ${STACKS_FILE_VAR}, but not a readable file"),
                    });
                }
                continue;
            }
            next.load_file(&path)?;
            loaded.push(path);
        }
        *self = next;
        Ok(loaded)
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

    /// Resolves `spec`, builds each layer bottom first with its factory for `ctx.side` (index
    /// 0 = bottom), and returns the stack over an already connected transport
    /// ([`Stack::over_transport`]), named `spec`.
    pub fn build(&self, spec: &str, ctx: &LayerContext) -> Result<Stack, RegistryError> {
        let names = self.resolve(spec)?;
        let mut layers: Vec<Box<dyn Layer>> = Vec::with_capacity(names.len());
        for (index, name) in names.iter().rev().enumerate() {
            let entry = self
                .layers
                .get(name)
                .ok_or_else(|| RegistryError::UnknownName {
                    name: name.clone(),
                    known: self.names(),
                })?;
            let make = match ctx.side {
                Side::Client => &entry.client,
                Side::Server => &entry.server,
            };
            layers.push(make(ctx, index)?);
        }
        Stack::over_transport(spec, layers, ctx.now).ok_or_else(|| RegistryError::Invalid {
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

/// The candidates of the search path, most specific first, each `(path, required)`.
fn search_path_with(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Vec<(PathBuf, bool)> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    let mut paths = Vec::new();
    if let Some(file) = set(STACKS_FILE_VAR) {
        paths.push((PathBuf::from(file), true));
    }
    paths.push((PathBuf::from("port-stacks.toml"), false));
    let xdg = set("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let config = xdg.or_else(|| set("HOME").map(|home| PathBuf::from(home).join(".config")));
    if let Some(config) = config {
        paths.push((config.join("port").join("stacks.toml"), false));
    }
    paths
}

/// A line and column (1-based) in a text.
struct Position {
    line: usize,
    column: usize,
}

impl Position {
    fn of(text: &str, offset: usize) -> Position {
        let bytes = text.as_bytes();
        let before = &bytes[..offset.min(bytes.len())];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        Position {
            line: before.iter().filter(|&&b| b == b'\n').count() + 1,
            // Characters, not bytes: skip UTF-8 continuation bytes.
            column: before[line_start..]
                .iter()
                .filter(|&&b| b & 0xC0 != 0x80)
                .count()
                + 1,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)
    }
}

enum Body {
    Stack(Vec<String>),
    Alias(String),
}

struct Parsed {
    name: String,
    /// Where the name is defined.
    span: std::ops::Range<usize>,
    body: Body,
}

/// Parses and checks a stack file, without looking at any registry.
fn parse_stack_file(text: &str, origin: &str) -> Result<Vec<Parsed>, RegistryError> {
    use toml::de::{DeTable, DeValue};

    let err = |span: &std::ops::Range<usize>, message: String| RegistryError::File {
        path: origin.to_owned(),
        message: format!("{}: {message}", Position::of(text, span.start)),
    };
    let doc = DeTable::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let at = Position::of(text, span.start);
        let message: String = e
            .message()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        RegistryError::File {
            path: origin.to_owned(),
            message: format!(
                "line {}, column {}: TOML syntax error: {}",
                at.line,
                at.column,
                message.trim()
            ),
        }
    })?;

    // Report problems in file order.
    let mut top: Vec<_> = doc.get_ref().iter().collect();
    top.sort_by_key(|(key, _)| key.span().start);
    let mut out: Vec<Parsed> = Vec::new();
    for (key, value) in top {
        let key_name: &str = key.get_ref();
        match key_name {
            "stack" => {
                let Some(stacks) = value.get_ref().as_table() else {
                    return Err(err(
                        &value.span(),
                        "\"stack\" must be a table of stacks ([stack.NAME] sections)".to_owned(),
                    ));
                };
                let mut stacks: Vec<_> = stacks.iter().collect();
                stacks.sort_by_key(|(key, _)| key.span().start);
                for (key, body) in stacks {
                    let span = key.span();
                    let name: &str = key.get_ref();
                    let header = format!("[stack.{name}]");
                    if let Some(why) = name_problem(name) {
                        return Err(err(
                            &span,
                            format!("bad stack name {}: {why}", quoted(name)),
                        ));
                    }
                    let Some(table) = body.get_ref().as_table() else {
                        return Err(err(
                            &body.span(),
                            format!("{header} must be a table with a \"layers\" list"),
                        ));
                    };
                    let mut fields: Vec<_> = table.iter().collect();
                    fields.sort_by_key(|(key, _)| key.span().start);
                    let mut layers = None;
                    for (field, value) in fields {
                        let field_name: &str = field.get_ref();
                        if field_name != "layers" {
                            return Err(err(
                                &field.span(),
                                format!(
                                    "unknown key {} in {header} (the only key is \"layers\")",
                                    quoted(field_name)
                                ),
                            ));
                        }
                        let bad_type = || {
                            err(
                                &value.span(),
                                format!("{header} layers must be a list of names"),
                            )
                        };
                        let DeValue::Array(items) = value.get_ref() else {
                            return Err(bad_type());
                        };
                        let mut names = Vec::with_capacity(items.len());
                        for item in items.iter() {
                            let Some(layer) = item.get_ref().as_str() else {
                                return Err(bad_type());
                            };
                            if let Some(why) = name_problem(layer) {
                                return Err(err(
                                    &item.span(),
                                    format!("{header} bad layer name {}: {why}", quoted(layer)),
                                ));
                            }
                            names.push(layer.to_owned());
                        }
                        if names.is_empty() {
                            return Err(err(
                                &value.span(),
                                format!("{header} layers must name at least one layer"),
                            ));
                        }
                        layers = Some(names);
                    }
                    let Some(layers) = layers else {
                        return Err(err(
                            &span,
                            format!("{header} needs a \"layers\" list (top first)"),
                        ));
                    };
                    out.push(Parsed {
                        name: name.to_owned(),
                        span,
                        body: Body::Stack(layers),
                    });
                }
            }
            "alias" => {
                let Some(aliases) = value.get_ref().as_table() else {
                    return Err(err(
                        &value.span(),
                        "\"alias\" must be a table of NAME = \"TARGET\" entries".to_owned(),
                    ));
                };
                let mut aliases: Vec<_> = aliases.iter().collect();
                aliases.sort_by_key(|(key, _)| key.span().start);
                for (name, target) in aliases {
                    let span = name.span();
                    let name: &str = name.get_ref();
                    if let Some(why) = name_problem(name) {
                        return Err(err(
                            &span,
                            format!("bad alias name {}: {why}", quoted(name)),
                        ));
                    }
                    let Some(target_name) = target.get_ref().as_str() else {
                        return Err(err(
                            &target.span(),
                            format!("alias {name:?} must be a string naming a layer or stack"),
                        ));
                    };
                    if let Some(why) = name_problem(target_name) {
                        return Err(err(
                            &target.span(),
                            format!("alias {name:?}: bad target {}: {why}", quoted(target_name)),
                        ));
                    }
                    out.push(Parsed {
                        name: name.to_owned(),
                        span,
                        body: Body::Alias(target_name.to_owned()),
                    });
                }
            }
            other => {
                return Err(err(
                    &key.span(),
                    format!(
                        "unknown key {} (expected [stack.NAME] sections and an [alias] table)",
                        quoted(other)
                    ),
                ));
            }
        }
    }
    for (i, later) in out.iter().enumerate() {
        if out[..i].iter().any(|p| p.name == later.name) {
            return Err(err(
                &later.span,
                format!(
                    "{} is defined both as a stack and as an alias",
                    quoted(&later.name)
                ),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn search_path_order() {
        let all = search_path_with(env(&[
            ("PORT_STACKS_FILE", "/etc/x.toml"),
            ("XDG_CONFIG_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ]));
        assert_eq!(
            all,
            [
                (PathBuf::from("/etc/x.toml"), true),
                (PathBuf::from("port-stacks.toml"), false),
                (PathBuf::from("/xdg/port/stacks.toml"), false),
            ]
        );
        // Empty or relative XDG_CONFIG_HOME falls back to HOME; an empty variable is unset.
        for xdg in ["", "relative"] {
            let paths = search_path_with(env(&[
                ("PORT_STACKS_FILE", ""),
                ("XDG_CONFIG_HOME", xdg),
                ("HOME", "/home/u"),
            ]));
            assert_eq!(
                paths,
                [
                    (PathBuf::from("port-stacks.toml"), false),
                    (PathBuf::from("/home/u/.config/port/stacks.toml"), false),
                ]
            );
        }
        assert_eq!(
            search_path_with(env(&[])),
            [(PathBuf::from("port-stacks.toml"), false)]
        );
    }

    #[test]
    fn candidates_load_general_first_and_atomically() {
        let dir = std::env::temp_dir().join(format!("stack-registry-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let specific = dir.join("specific.toml");
        let general = dir.join("general.toml");
        let broken = dir.join("broken.toml");
        std::fs::write(&specific, "[alias]\nx = \"frame\"\n").unwrap();
        std::fs::write(&general, "[alias]\nx = \"port\"\ny = \"pass\"\n").unwrap();
        std::fs::write(&broken, "[alias\n").unwrap();
        let missing = dir.join("missing.toml");

        let mut r = Registry::with_builtins();
        let loaded = r
            .load_candidates(vec![
                (specific.clone(), false),
                (missing.clone(), false),
                (general.clone(), false),
            ])
            .unwrap();
        assert_eq!(loaded, [general.clone(), specific.clone()]);
        assert_eq!(r.resolve("x").unwrap(), ["frame"]);
        assert_eq!(r.resolve("y").unwrap(), ["passthrough"]);

        // A required file that is missing, or any broken file, changes nothing.
        let mut r = Registry::with_builtins();
        let err = r
            .load_candidates(vec![(missing.clone(), true), (general.clone(), false)])
            .unwrap_err();
        assert!(err.to_string().contains("PORT_STACKS_FILE"), "{err}");
        assert_eq!(r.definition("y"), None);
        let err = r
            .load_candidates(vec![(broken.clone(), false), (general.clone(), false)])
            .unwrap_err();
        assert!(matches!(err, RegistryError::File { .. }));
        assert_eq!(r.definition("y"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "ab\né€x\n";
        let at = |offset| {
            let p = Position::of(text, offset);
            (p.line, p.column)
        };
        assert_eq!(at(0), (1, 1));
        assert_eq!(at(3), (2, 1));
        assert_eq!(at("ab\né€".len()), (2, 3));
        assert_eq!(at(1000), (3, 1));
    }

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("prot", "port"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("frame", "frame"), 0);
        let known = vec!["frame".to_owned(), "port".to_owned()];
        assert_eq!(closest("prot", &known), Some("port"));
        assert_eq!(closest("fram", &known), Some("frame"));
        assert_eq!(closest("zz", &known), None);
    }
}
