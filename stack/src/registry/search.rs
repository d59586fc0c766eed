//! Where stack files are looked for, and how the files found there combine.

use std::path::PathBuf;

use super::{Registry, RegistryError, STACKS_FILE_VAR};

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

impl Registry {
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
}
