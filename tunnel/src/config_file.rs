//! The `--config FILE`: TOML read with serde, every key checked, and errors that name the
//! file, the line and the key (see [`crate::config`] for what the keys mean).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use port_core::Config;
use port_stack::toml_file;
use serde::Deserialize;
use toml::Spanned;

use crate::error::Error;

/// The prefix of every `PORT_*` variable, which `[port]` keys stand for without it.
pub(crate) const ENV_PREFIX: &str = "PORT_";

/// The file as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    pub(crate) log_level: Option<String>,
    #[serde(default)]
    pub(crate) server: ServerTable,
    #[serde(default)]
    pub(crate) client: ClientTable,
    #[serde(default)]
    port: BTreeMap<String, Spanned<Scalar>>,
}

/// The `[server]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerTable {
    pub(crate) listen: Option<String>,
    pub(crate) key_file: Option<String>,
    pub(crate) forward: Option<String>,
    pub(crate) tokens_file: Option<String>,
    pub(crate) stack: Option<String>,
    pub(crate) stacks_file: Option<String>,
    pub(crate) fallback: Option<String>,
    #[serde(default, deserialize_with = "scalar_text")]
    pub(crate) max_unauthenticated: Option<String>,
    pub(crate) allow: Option<String>,
    pub(crate) metrics: Option<String>,
}

/// A value the file may give as a number or as text, as text.
fn scalar_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Scalar>::deserialize(d)?.map(|s| s.text()))
}

/// The `[client]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientTable {
    pub(crate) listen: Option<String>,
    pub(crate) server: Option<String>,
    pub(crate) key_file: Option<String>,
    pub(crate) token_file: Option<String>,
    pub(crate) stacks_file: Option<String>,
    pub(crate) socks5: Option<String>,
    pub(crate) socks5_auth_file: Option<String>,
    pub(crate) metrics: Option<String>,
    pub(crate) early_data: Option<String>,
}

/// A `[port]` value: `PORT_*` variables are text, and the file may give numbers as numbers.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged, expecting = "expected a number or a string")]
enum Scalar {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(text) => text.clone(),
            Scalar::Integer(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
        }
    }
}

/// A parsed file and where it is.
#[derive(Clone, Debug, Default)]
pub(crate) struct FileValues {
    /// The file, as given (for messages).
    pub(crate) origin: String,
    /// Relative paths in the file are relative to this directory.
    pub(crate) base: PathBuf,
    pub(crate) values: ConfigFile,
    /// `[port]` settings as `(PORT_VARIABLE, value)`.
    pub(crate) port: Vec<(String, String)>,
}

/// Reads the TOML `text` of the file at `path`.
pub(crate) fn parse(text: &str, path: &Path) -> Result<FileValues, Error> {
    let origin = path.display().to_string();
    let values: ConfigFile = toml_file::from_str(text)
        .map_err(|e| Error::msg(format!("bad --config file {origin}, {e}")))?;
    let mut port = Vec::new();
    for (name, value) in &values.port {
        let var = format!("{ENV_PREFIX}{}", name.to_ascii_uppercase());
        if !Config::variables().any(|v| v == var) {
            let known: Vec<String> = Config::variables()
                .map(|v| v.trim_start_matches(ENV_PREFIX).to_lowercase())
                .collect();
            let (line, column) = toml_file::position(text, value.span().start);
            return Err(Error::msg(format!(
                "bad --config file {origin}, line {line}, column {column} (port.{name}): unknown \
                 key {name:?} in the [port] table (expected one of {})",
                known.join(", ")
            )));
        }
        port.push((var, value.get_ref().text()));
    }
    Ok(FileValues {
        base: path.parent().map(Path::to_owned).unwrap_or_default(),
        origin,
        values,
        port,
    })
}
