//! The server's tokens file, and the client's token file, as `port-tunnel` and `echotest`
//! read them.
//!
//! A tokens file holds one token per line, optionally followed by whitespace and a name that
//! logs show instead of the token: `s3cr3t-token alice`. Blank lines and lines starting with
//! `#` are skipped, as is anything after a ` #` on a line. A token is any run of non-blank
//! characters, at most [`MAX_TOKEN_LEN`] bytes. A client's token file holds one such line (so
//! a line copied from the server's file works as it is); only the token is sent.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, RwLock};

use port_core::{MAX_TOKEN_LEN, Status};

/// The status a server refuses a token it does not list with (the user cannot be registered).
pub const UNKNOWN_TOKEN: Status = Status::RegistrationError;

/// A refusal by a server that reads a tokens file, said for what it means there.
pub fn describe_refusal(status: Status) -> String {
    match status {
        UNKNOWN_TOKEN => {
            "the server does not know this token (it is not in its tokens file)".into()
        }
        status => format!("the server refused the token: {status}"),
    }
}

/// Why a token(s) file could not be used: one line naming the file, the line and the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokensError(String);

impl TokensError {
    fn msg(message: String) -> TokensError {
        TokensError(message)
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TokensError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TokensError {}

/// One accepted token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name logs show (the line's second word, or `line N`).
    pub name: String,
    /// The user id the client is accepted with: its entry's position in the file, from 1.
    pub user_id: u32,
}

/// The tokens of one tokens file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    by_token: HashMap<Vec<u8>, Entry>,
}

/// One parsed line: the token and its optional name.
struct Line<'a> {
    number: usize,
    token: &'a str,
    name: Option<&'a str>,
}

/// The meaningful lines of a token(s) file; `origin` names it in errors.
fn lines<'a>(text: &'a str, origin: &str) -> Result<Vec<Line<'a>>, TokensError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        // A ` #` starts a comment; a `#` inside a token does not.
        let content = match raw.find(" #").or_else(|| raw.find("\t#")) {
            Some(at) => &raw[..at],
            None => raw,
        };
        let content = content.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let mut words = content.split_whitespace();
        let token = words.next().unwrap_or_default();
        let name = words.next();
        if words.next().is_some() {
            return Err(TokensError::msg(format!(
                "bad tokens file {origin}, line {number}: expected TOKEN [NAME], found more words"
            )));
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokensError::msg(format!(
                "bad tokens file {origin}, line {number}: the token is {} bytes, at most \
                 {MAX_TOKEN_LEN} allowed",
                token.len()
            )));
        }
        out.push(Line {
            number,
            token,
            name,
        });
    }
    Ok(out)
}

impl Tokens {
    /// Parses the text of a tokens file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Tokens, TokensError> {
        let mut by_token = HashMap::new();
        for (index, line) in lines(text, origin)?.into_iter().enumerate() {
            let entry = Entry {
                name: line
                    .name
                    .map_or_else(|| format!("line {}", line.number), str::to_owned),
                user_id: u32::try_from(index + 1).unwrap_or(u32::MAX),
            };
            if by_token
                .insert(line.token.as_bytes().to_vec(), entry)
                .is_some()
            {
                return Err(TokensError::msg(format!(
                    "bad tokens file {origin}, line {}: this token is already listed above",
                    line.number
                )));
            }
        }
        Ok(Tokens { by_token })
    }

    /// Reads and parses a tokens file.
    pub fn load(path: &Path) -> Result<Tokens, TokensError> {
        let text = fs::read_to_string(path).map_err(|e| {
            TokensError::msg(format!("cannot read tokens file {}: {e}", path.display()))
        })?;
        Tokens::parse(&text, &path.display().to_string())
    }

    /// The entry of `token`, if it is listed.
    pub fn get(&self, token: &[u8]) -> Option<&Entry> {
        self.by_token.get(token)
    }

    /// How many tokens are listed.
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    /// True if no token is listed (every client is then refused).
    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

/// The server's current tokens, replaced as a whole when the file is reloaded: a lookup sees
/// either the old set or the new one, never a mix.
#[derive(Clone, Debug, Default)]
pub struct SharedTokens(Arc<RwLock<Arc<Tokens>>>);

impl SharedTokens {
    /// Starts with `tokens`.
    pub fn new(tokens: Tokens) -> SharedTokens {
        SharedTokens(Arc::new(RwLock::new(Arc::new(tokens))))
    }

    /// The tokens in force now.
    pub fn current(&self) -> Arc<Tokens> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `tokens` in force.
    pub fn replace(&self, tokens: Tokens) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tokens);
    }
}

/// Reads a client's token file: exactly one `TOKEN [NAME]` line; returns the token.
pub fn read_token_file(path: &Path) -> Result<Vec<u8>, TokensError> {
    let text = fs::read_to_string(path)
        .map_err(|e| TokensError::msg(format!("cannot read token file {}: {e}", path.display())))?;
    parse_token(&text, &path.display().to_string())
}

/// The token of a client's token file text; `origin` names it in errors.
pub fn parse_token(text: &str, origin: &str) -> Result<Vec<u8>, TokensError> {
    let found = lines(text, origin)
        .map_err(|e| TokensError::msg(e.message().replacen("tokens file", "token file", 1)))?;
    match found.as_slice() {
        [line] => Ok(line.token.as_bytes().to_vec()),
        [] => Err(TokensError::msg(format!(
            "bad token file {origin}: it holds no token (expected one line: TOKEN [NAME])"
        ))),
        [_, second, ..] => Err(TokensError::msg(format!(
            "bad token file {origin}, line {}: expected one token, found another",
            second.number
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_names_comments_and_user_ids() {
        let text = "# who may connect\n\nalpha alice\n  beta\t bob  # the second\ngam#ma\n";
        let tokens = Tokens::parse(text, "t").unwrap();
        assert_eq!(tokens.len(), 3);
        let alice = tokens.get(b"alpha").unwrap();
        assert_eq!((alice.name.as_str(), alice.user_id), ("alice", 1));
        let bob = tokens.get(b"beta").unwrap();
        assert_eq!((bob.name.as_str(), bob.user_id), ("bob", 2));
        let third = tokens.get(b"gam#ma").unwrap();
        assert_eq!((third.name.as_str(), third.user_id), ("line 5", 3));
        assert!(tokens.get(b"alice").is_none());
        assert!(tokens.get(b"").is_none());
    }

    #[test]
    fn bad_tokens_files_name_the_line() {
        let e = Tokens::parse("a x\nb y z\n", "f").unwrap_err();
        assert_eq!(
            e.message(),
            "bad tokens file f, line 2: expected TOKEN [NAME], found more words"
        );
        let e = Tokens::parse("a\n#\na\n", "f").unwrap_err();
        assert!(e.message().contains("line 3") && e.message().contains("already listed"));
        let long = "x".repeat(MAX_TOKEN_LEN + 1);
        let e = Tokens::parse(&long, "f").unwrap_err();
        assert!(e.message().contains("at most 4096"), "{e}");
        assert!(Tokens::parse("# nothing\n", "f").unwrap().is_empty());
    }

    #[test]
    fn a_client_token_file_holds_one_token() {
        assert_eq!(parse_token("# mine\nabc alice\n", "f").unwrap(), b"abc");
        let e = parse_token("\n# none\n", "f").unwrap_err();
        assert!(e.message().contains("holds no token"), "{e}");
        let e = parse_token("a\nb\n", "f").unwrap_err();
        assert!(e.message().contains("line 2"), "{e}");
        let e = parse_token("a b c\n", "f").unwrap_err();
        assert!(e.message().starts_with("bad token file f, line 1"), "{e}");
    }

    #[test]
    fn shared_tokens_are_replaced_whole() {
        let shared = SharedTokens::new(Tokens::parse("a\n", "f").unwrap());
        let before = shared.current();
        shared.replace(Tokens::parse("b\n", "f").unwrap());
        assert!(before.get(b"a").is_some());
        assert!(shared.current().get(b"a").is_none());
        assert!(shared.current().get(b"b").is_some());
    }
}
