//! Stack files: named stacks and aliases in TOML, read with serde and checked as a whole before
//! anything in them is applied.

use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{MAX_FILE_LEN, Registry, RegistryError};
use crate::names::{name_problem, quoted};
use crate::toml_file::{self, position};

/// A stack file as written: `[stack.NAME]` tables and one `[alias]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StackFile {
    #[serde(default)]
    stack: BTreeMap<String, Spanned<StackTable>>,
    #[serde(default)]
    alias: BTreeMap<String, Spanned<String>>,
}

/// One `[stack.NAME]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StackTable {
    /// Layer, alias or stack names, top first.
    layers: Spanned<Vec<Spanned<String>>>,
}

/// One definition of a file, checked, with where its name stands.
struct Definition {
    name: String,
    span: Range<usize>,
    body: Body,
}

enum Body {
    Stack(Vec<String>),
    Alias(String),
}

/// Errors about one file: each message starts with the line it is about.
struct Checker<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Checker<'_> {
    fn at(&self, span: &Range<usize>, message: String) -> RegistryError {
        RegistryError::File {
            path: self.origin.to_owned(),
            message: format!("line {}: {message}", position(self.text, span.start).0),
        }
    }

    /// Refuses a bad `name`; `what` says what it names, for example "stack name".
    fn name(&self, span: &Range<usize>, what: &str, name: &str) -> Result<(), RegistryError> {
        match name_problem(name) {
            None => Ok(()),
            Some(why) => Err(self.at(span, format!("{what} {}: {why}", quoted(name)))),
        }
    }

    /// Reads and checks the whole file, without looking at any registry.
    fn parse(&self) -> Result<Vec<Definition>, RegistryError> {
        let file: StackFile = toml_file::from_str(self.text).map_err(|e| RegistryError::File {
            path: self.origin.to_owned(),
            message: e.to_string(),
        })?;
        let mut out = Vec::new();
        for (name, table) in file.stack {
            let header = format!("[stack.{name}]");
            let span = table.span();
            self.name(&span, "bad stack name", &name)?;
            let table = table.into_inner();
            if table.layers.get_ref().is_empty() {
                let message = format!("{header} layers must name at least one layer");
                return Err(self.at(&table.layers.span(), message));
            }
            for layer in table.layers.get_ref() {
                self.name(
                    &layer.span(),
                    &format!("{header} bad layer name"),
                    layer.get_ref(),
                )?;
            }
            let layers = table.layers.into_inner();
            out.push(Definition {
                span,
                name,
                body: Body::Stack(layers.into_iter().map(Spanned::into_inner).collect()),
            });
        }
        for (name, target) in file.alias {
            let span = target.span();
            self.name(&span, "bad alias name", &name)?;
            let what = format!("alias {}: bad target", quoted(&name));
            self.name(&span, &what, target.get_ref())?;
            out.push(Definition {
                span,
                name,
                body: Body::Alias(target.into_inner()),
            });
        }
        // Report what follows in file order.
        out.sort_by_key(|d| d.span.start);
        for (i, later) in out.iter().enumerate() {
            if out[..i].iter().any(|d| d.name == later.name) {
                let message = format!(
                    "{} is defined both as a stack and as an alias",
                    quoted(&later.name)
                );
                return Err(self.at(&later.span, message));
            }
        }
        Ok(out)
    }
}

impl Registry {
    /// Loads stacks and aliases from the TOML `text` of a stack file (see the
    /// [module documentation](crate::registry) for the format); `origin` names the file in errors.
    ///
    /// The whole file is checked before anything is applied: on error the registry is
    /// unchanged. Every error is a [`RegistryError::File`] whose message starts with the line
    /// (and for errors of form or type the column).
    pub fn load_toml_str(&mut self, text: &str, origin: &str) -> Result<(), RegistryError> {
        let checker = Checker { text, origin };
        let parsed = checker.parse()?;
        for def in &parsed {
            if self.layers.contains_key(&def.name) {
                let (kind, header) = match def.body {
                    Body::Stack(_) => ("stack", format!("[stack.{}]", def.name)),
                    Body::Alias(_) => ("alias", format!("alias {:?}", def.name)),
                };
                let message = format!(
                    "{header}: {:?} is a layer; a {kind} may not shadow a layer name",
                    def.name
                );
                return Err(checker.at(&def.span, message));
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
}
