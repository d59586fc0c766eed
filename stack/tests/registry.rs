//! The registry (names, aliases, named stacks, stack files, building stacks by name) and stack
//! addresses.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use port_core::{
    ClientConfig, CloseReason, Config, Event, ProtocolError, ServerConfig, ServerKey, Session,
    Side, Status, seaside,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stack::layers::Passthrough;
use stack::registry::{Definition, MAX_DEPTH, MAX_LAYERS, factory, is_valid_name};
use stack::{Address, AddressError, Layer, LayerContext, Registry, RegistryError, Stack};

const UNIX: Duration = Duration::from_secs(1_800_000_000);

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn loaded(text: &str) -> Registry {
    let mut registry = Registry::with_builtins();
    registry.load_toml_str(text, "stacks.toml").unwrap();
    registry
}

fn load_err(text: &str) -> (String, String) {
    let mut registry = Registry::with_builtins();
    let before = format!("{registry:?}");
    match registry.load_toml_str(text, "conf/stacks.toml") {
        Err(RegistryError::File { path, message }) => {
            assert_eq!(path, "conf/stacks.toml");
            // A refused file changes nothing.
            assert_eq!(format!("{registry:?}"), before);
            let display = RegistryError::File {
                path: path.clone(),
                message: message.clone(),
            }
            .to_string();
            assert!(display.starts_with("conf/stacks.toml: "), "{display}");
            assert!(!display.contains('\n'), "{display}");
            (message, display)
        }
        other => panic!("expected a file error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Resolving names.

#[test]
fn builtins_resolve() {
    let r = Registry::with_builtins();
    assert_eq!(r.resolve("passthrough").unwrap(), ["passthrough"]);
    assert_eq!(r.resolve("port").unwrap(), ["port"]);
    assert_eq!(r.resolve("frame").unwrap(), ["frame"]);
    assert_eq!(
        r.resolve("port+passthrough").unwrap(),
        ["port", "passthrough"]
    );
    assert_eq!(r.resolve("secure").unwrap(), ["port", "passthrough"]);
    assert_eq!(
        r.resolve("frame+secure").unwrap(),
        ["frame", "port", "passthrough"]
    );
    assert_eq!(
        r.names(),
        strings(&[
            "frame",
            "framing",
            "pass",
            "passthrough",
            "port",
            "seaside",
            "secure"
        ])
    );
    assert_eq!(r.definition("port"), Some(Definition::Layer));
    assert_eq!(
        r.definition("pass"),
        Some(Definition::Alias {
            target: "passthrough".into()
        })
    );
    assert_eq!(
        r.definition("secure"),
        Some(Definition::Stack {
            layers: strings(&["port", "passthrough"])
        })
    );
    assert_eq!(r.definition("nope"), None);
    r.validate().unwrap();
    assert_eq!(format!("{:?}", Registry::default()), format!("{r:?}"));
}

#[test]
fn aliases_expand() {
    let mut r = Registry::with_builtins();
    assert_eq!(r.resolve("pass").unwrap(), ["passthrough"]);
    assert_eq!(r.resolve("framing+pass").unwrap(), ["frame", "passthrough"]);
    // An alias of an alias of a stack.
    r.alias("s", "secure").unwrap();
    r.alias("s2", "s").unwrap();
    assert_eq!(
        r.resolve("framing+s2").unwrap(),
        ["frame", "port", "passthrough"]
    );
    r.validate().unwrap();
}

#[test]
fn nested_stacks_from_toml_expand_in_order() {
    let r = loaded(
        r#"
        # Top first, as in an address.
        [stack.framed]
        layers = ["frame", "secure"]   # may reference other stacks

        [stack.double]
        layers = ["framed", "p", "framed"]

        [alias]
        p = "port"
        d = "double"
        "#,
    );
    assert_eq!(
        r.resolve("framed").unwrap(),
        ["frame", "port", "passthrough"]
    );
    assert_eq!(
        r.resolve("d").unwrap(),
        [
            "frame",
            "port",
            "passthrough",
            "port",
            "frame",
            "port",
            "passthrough"
        ]
    );
    assert_eq!(r.resolve("p+pass").unwrap(), ["port", "passthrough"]);
    r.validate().unwrap();
    assert!(r.names().contains(&"double".to_owned()));
}

#[test]
fn files_may_come_in_any_order_and_later_definitions_replace_earlier_ones() {
    let mut r = Registry::with_builtins();
    // `outer` refers to `inner`, defined by the next file only.
    r.load_toml_str("[stack.outer]\nlayers = [\"frame\", \"inner\"]\n", "a.toml")
        .unwrap();
    assert!(matches!(
        r.resolve("outer"),
        Err(RegistryError::UnknownName { ref name, .. }) if name == "inner"
    ));
    r.load_toml_str("[stack.inner]\nlayers = [\"pass\"]\n", "b.toml")
        .unwrap();
    assert_eq!(r.resolve("outer").unwrap(), ["frame", "passthrough"]);

    // A later file replaces a built-in stack, an alias replaces a stack and the other way round.
    r.load_toml_str(
        "[stack.secure]\nlayers = [\"port\", \"frame\"]\n[alias]\ninner = \"port\"\n",
        "c.toml",
    )
    .unwrap();
    assert_eq!(r.resolve("secure").unwrap(), ["port", "frame"]);
    assert_eq!(
        r.definition("inner"),
        Some(Definition::Alias {
            target: "port".into()
        })
    );
    assert_eq!(r.resolve("outer").unwrap(), ["frame", "port"]);
    r.load_toml_str("[stack.inner]\nlayers = [\"frame\"]\n", "d.toml")
        .unwrap();
    assert!(matches!(
        r.definition("inner"),
        Some(Definition::Stack { .. })
    ));
    assert_eq!(r.resolve("outer").unwrap(), ["frame", "frame"]);
}

#[test]
fn define_stack_and_alias_through_the_api() {
    let mut r = Registry::empty();
    assert!(r.names().is_empty());
    r.register_layer(
        "a",
        factory(|_, _| Ok(Box::new(Passthrough::new()))),
        factory(|_, _| Ok(Box::new(Passthrough::new()))),
    )
    .unwrap();
    r.define_stack("two", &["a", "a"]).unwrap();
    r.alias("t", "two").unwrap();
    assert_eq!(r.resolve("t+a").unwrap(), ["a", "a", "a"]);
    // Redefining a stack as an alias replaces it.
    r.alias("two", "a").unwrap();
    assert_eq!(r.resolve("t").unwrap(), ["a"]);
    r.define_stack("t", &["two", "two"]).unwrap();
    assert_eq!(r.resolve("t").unwrap(), ["a", "a"]);
    assert_eq!(r.names(), strings(&["a", "t", "two"]));
    assert!(is_valid_name("a-b_0"));
    assert!(!is_valid_name("A"));
    assert!(!is_valid_name(""));
}

// ---------------------------------------------------------------------------------------------
// Resolution errors.

#[test]
fn unknown_names_list_what_is_known_and_suggest() {
    let r = Registry::with_builtins();
    let err = r.resolve("prot+passthrough").unwrap_err();
    let RegistryError::UnknownName { name, known } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(name, "prot");
    assert_eq!(known, &r.names());
    let text = err.to_string();
    assert_eq!(
        text,
        "unknown stack or layer \"prot\" (did you mean \"port\"? known: frame, framing, pass, \
         passthrough, port, seaside, secure)"
    );
    let far = r.resolve("zzzzzz").unwrap_err().to_string();
    assert!(
        far.starts_with("unknown stack or layer \"zzzzzz\" (known: frame,"),
        "{far}"
    );
    assert!(!far.contains("did you mean"), "{far}");
    let none = Registry::empty().resolve("port").unwrap_err().to_string();
    assert!(
        none.contains("\"port\"") && none.contains("nothing is registered"),
        "{none}"
    );
}

#[test]
fn cycles_are_reported_with_their_path() {
    let mut r = Registry::with_builtins();
    r.define_stack("selfish", &["frame", "selfish"]).unwrap();
    r.alias("me", "me").unwrap();
    r.define_stack("a", &["frame", "b"]).unwrap();
    r.define_stack("b", &["pass", "c"]).unwrap();
    r.alias("c", "a").unwrap();

    let direct = r.resolve("selfish").unwrap_err();
    assert_eq!(
        direct,
        RegistryError::Cycle {
            path: strings(&["selfish", "selfish"])
        }
    );
    assert_eq!(
        direct.to_string(),
        "stack definition cycle: selfish -> selfish"
    );
    assert_eq!(
        r.resolve("me").unwrap_err(),
        RegistryError::Cycle {
            path: strings(&["me", "me"])
        }
    );
    let indirect = r.resolve("port+b").unwrap_err();
    assert_eq!(
        indirect,
        RegistryError::Cycle {
            path: strings(&["b", "c", "a", "b"])
        }
    );
    assert_eq!(
        indirect.to_string(),
        "stack definition cycle: b -> c -> a -> b"
    );
    assert!(matches!(r.validate(), Err(RegistryError::Cycle { .. })));
    // A name used twice side by side is not a cycle.
    r.define_stack("twice", &["secure", "secure"]).unwrap();
    assert_eq!(r.resolve("twice").unwrap().len(), 4);
}

#[test]
fn bad_names_and_empty_specs_are_invalid() {
    let r = Registry::with_builtins();
    let cases: [(&str, &str); 9] = [
        ("", "it is empty"),
        ("port++passthrough", "empty name"),
        ("+port", "empty name"),
        ("port+", "empty name"),
        ("Port", "\"Port\""),
        ("port passthrough", "\"port passthrough\""),
        ("pört", "\"pört\""),
        ("port+pass/x", "\"pass/x\""),
        ("port:1", "\"port:1\""),
    ];
    for (spec, culprit) in cases {
        let err = r.resolve(spec).unwrap_err();
        assert!(
            matches!(err, RegistryError::Invalid { .. }),
            "{spec:?}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.starts_with("invalid stack spec "), "{text}");
        assert!(text.contains(culprit), "{spec:?}: {text}");
        assert!(!text.contains('\n'));
    }
    let long = "a".repeat(65);
    assert!(matches!(
        r.resolve(&long),
        Err(RegistryError::Invalid { .. })
    ));
    // Control characters are escaped, not printed.
    let text = r.resolve("a\nb").unwrap_err().to_string();
    assert!(text.contains("\\n") && !text.contains('\n'), "{text}");

    let mut r = Registry::with_builtins();
    for bad in ["", "Up", "a+b", "a b"] {
        assert!(matches!(
            r.define_stack(bad, &["port"]),
            Err(RegistryError::Invalid { .. })
        ));
        assert!(matches!(
            r.alias(bad, "port"),
            Err(RegistryError::Invalid { .. })
        ));
        assert!(matches!(
            r.alias("ok", bad),
            Err(RegistryError::Invalid { .. })
        ));
        assert!(matches!(
            r.define_stack("ok", &["port", bad]),
            Err(RegistryError::Invalid { .. })
        ));
    }
    let empty = r.define_stack("nothing", &[]).unwrap_err();
    assert!(matches!(empty, RegistryError::Invalid { .. }));
    assert!(empty.to_string().contains("\"nothing\""), "{empty}");
    assert_eq!(r.definition("ok"), None);
}

#[test]
fn expansion_is_bounded() {
    let mut r = Registry::with_builtins();
    // Each level doubles: 2^10 layers would come out without a limit.
    r.define_stack("l0", &["pass", "pass"]).unwrap();
    for i in 1..=10 {
        let below = format!("l{}", i - 1);
        r.define_stack(&format!("l{i}"), &[&below, &below]).unwrap();
    }
    assert_eq!(r.resolve("l4").unwrap().len(), 32);
    let err = r.resolve("l10").unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("more than {MAX_LAYERS} layers")),
        "{err}"
    );
    // A long chain of aliases.
    r.alias("c0", "port").unwrap();
    for i in 1..=MAX_DEPTH + 5 {
        r.alias(&format!("c{i}"), &format!("c{}", i - 1)).unwrap();
    }
    assert_eq!(r.resolve("c3").unwrap(), ["port"]);
    let deep = r.resolve(&format!("c{}", MAX_DEPTH + 5)).unwrap_err();
    assert!(deep.to_string().contains("nest more than"), "{deep}");
}

#[test]
fn an_alias_to_an_unknown_name_is_found_at_resolve_time() {
    let mut r = loaded("[alias]\nq = \"nosuch\"\n");
    let err = r.resolve("q").unwrap_err();
    assert!(
        matches!(&err, RegistryError::UnknownName { name, .. } if name == "nosuch"),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"nosuch\""));
    assert_eq!(r.validate(), Err(err));
    r.alias("nosuch", "frame").unwrap();
    assert_eq!(r.resolve("q").unwrap(), ["frame"]);
}

#[test]
fn stacks_and_aliases_may_not_shadow_layers() {
    let mut r = Registry::with_builtins();
    assert_eq!(
        r.define_stack("port", &["frame"]),
        Err(RegistryError::Duplicate {
            name: "port".into()
        })
    );
    let err = r.alias("frame", "port").unwrap_err();
    assert_eq!(
        err,
        RegistryError::Duplicate {
            name: "frame".into()
        }
    );
    assert!(
        err.to_string().starts_with("duplicate name \"frame\""),
        "{err}"
    );
    let twice = r.register_layer(
        "passthrough",
        factory(|_, _| Ok(Box::new(Passthrough::new()))),
        factory(|_, _| Ok(Box::new(Passthrough::new()))),
    );
    assert!(matches!(twice, Err(RegistryError::Duplicate { .. })));
    // A layer may not take a stack's or an alias's name either.
    let symmetric = factory(|_, _| Ok(Box::new(Passthrough::new())));
    assert!(matches!(
        r.register_symmetric_layer("secure", symmetric.clone()),
        Err(RegistryError::Duplicate { .. })
    ));
    assert!(matches!(
        r.register_symmetric_layer("pass", symmetric.clone()),
        Err(RegistryError::Duplicate { .. })
    ));
    r.register_symmetric_layer("new", symmetric).unwrap();
    assert_eq!(
        r.resolve("new+secure").unwrap(),
        ["new", "port", "passthrough"]
    );

    let (message, display) = load_err("[stack.port]\nlayers = [\"frame\"]\n");
    assert!(message.starts_with("line 1: "), "{message}");
    assert!(display.contains("\"port\" is a layer"), "{display}");
    let (message, _) = load_err("[alias]\n\nframe = \"port\"\n");
    assert!(message.starts_with("line 3: "), "{message}");
    assert!(message.contains("\"frame\" is a layer"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Stack files.

#[test]
fn toml_syntax_errors_name_the_file_and_line() {
    let (message, display) = load_err("[stack.a]\nlayers = [\"port\"]\n\n[stack.b\nlayers = []\n");
    assert!(message.starts_with("line 4, column "), "{message}");
    assert!(message.contains("TOML syntax error"), "{message}");
    assert!(display.starts_with("conf/stacks.toml: line 4"), "{display}");

    let (message, _) = load_err("[alias]\np = \"port\"\np = \"frame\"\n");
    assert!(message.starts_with("line 3"), "{message}");
    let (message, _) = load_err("layers = [\"port\"\n");
    assert!(message.contains("TOML syntax error"), "{message}");
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let (message, display) =
        load_err("[stack.a]\nlayers = [\"port\"]\n\n[stacks.b]\nlayers = []\n");
    assert!(message.starts_with("line 4: "), "{message}");
    assert!(display.contains("unknown key \"stacks\""), "{display}");

    let (message, display) = load_err("[stack.a]\nlayers = [\"port\"]\nlayer = [\"frame\"]\n");
    assert!(message.starts_with("line 3: "), "{message}");
    assert!(
        display.contains("unknown key \"layer\" in [stack.a]"),
        "{display}"
    );

    let (message, _) = load_err("version = 1\n");
    assert!(message.contains("unknown key \"version\""), "{message}");
}

#[test]
fn wrong_types_are_errors() {
    let (message, display) = load_err("[stack.x]\nlayers = \"port\"\n");
    assert_eq!(
        display,
        "conf/stacks.toml: line 2: [stack.x] layers must be a list of names"
    );
    assert!(message.starts_with("line 2"));
    let (_, display) = load_err("[stack.x]\nlayers = [\"port\", 3]\n");
    assert!(
        display.ends_with("[stack.x] layers must be a list of names"),
        "{display}"
    );
    let (_, display) = load_err("[stack.x]\nlayers = [[\"port\"]]\n");
    assert!(
        display.ends_with("[stack.x] layers must be a list of names"),
        "{display}"
    );
    let (_, display) = load_err("stack = 3\n");
    assert!(display.contains("\"stack\" must be a table"), "{display}");
    let (_, display) = load_err("[stack]\nx = 3\n");
    assert!(display.contains("[stack.x] must be a table"), "{display}");
    let (_, display) = load_err("alias = [\"p\"]\n");
    assert!(display.contains("\"alias\" must be a table"), "{display}");
    let (message, display) = load_err("[alias]\np = 3\n");
    assert!(message.starts_with("line 2"), "{message}");
    assert!(
        display.contains("alias \"p\" must be a string"),
        "{display}"
    );
}

#[test]
fn bad_definitions_in_files_are_errors() {
    let (_, display) = load_err("[stack.x]\nlayers = []\n");
    assert!(
        display.contains("[stack.x] layers must name at least one layer"),
        "{display}"
    );
    let (_, display) = load_err("[stack.x]\n");
    assert!(
        display.contains("[stack.x] needs a \"layers\" list"),
        "{display}"
    );
    let (message, display) = load_err("[stack.Bad]\nlayers = [\"port\"]\n");
    assert!(message.starts_with("line 1"), "{message}");
    assert!(display.contains("bad stack name \"Bad\""), "{display}");
    let (message, display) = load_err("[stack.x]\nlayers = [\n  \"port\",\n  \"a+b\",\n]\n");
    assert!(message.starts_with("line 4"), "{message}");
    assert!(display.contains("bad layer name \"a+b\""), "{display}");
    let (_, display) = load_err("[alias]\n\"P Q\" = \"port\"\n");
    assert!(display.contains("bad alias name \"P Q\""), "{display}");
    let (_, display) = load_err("[alias]\np = \"port+frame\"\n");
    assert!(display.contains("bad target \"port+frame\""), "{display}");
    let (_, display) = load_err("[alias]\nx = \"port\"\n[stack.x]\nlayers = [\"frame\"]\n");
    assert!(
        display.contains("\"x\" is defined both as a stack and as an alias"),
        "{display}"
    );
}

#[test]
fn load_file_names_the_path() {
    let dir = std::env::temp_dir().join(format!("stack-registry-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    let bad = dir.join("bad.toml");
    std::fs::write(&good, "[stack.f]\nlayers = [\"frame\", \"pass\"]\n").unwrap();
    std::fs::write(&bad, "[stack.f]\nlayers = [\"frame\"]\nextra = 1\n").unwrap();
    let mut r = Registry::with_builtins();
    r.load_file(&good).unwrap();
    assert_eq!(r.resolve("f").unwrap(), ["frame", "passthrough"]);
    let err = r.load_file(&bad).unwrap_err();
    let RegistryError::File { path, message } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(path, &bad.display().to_string());
    assert!(message.starts_with("line 3: "), "{message}");
    assert!(err.to_string().contains("bad.toml: line 3"), "{err}");
    let missing = r.load_file(&dir.join("missing.toml")).unwrap_err();
    assert!(
        matches!(&missing, RegistryError::File { path, .. } if path.ends_with("missing.toml")),
        "{missing:?}"
    );
    let binary = dir.join("binary.toml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    assert!(
        r.load_file(&binary)
            .unwrap_err()
            .to_string()
            .contains("not UTF-8")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_search_path_ends_with_the_local_and_user_files() {
    let paths = Registry::search_path();
    assert!(
        paths
            .iter()
            .any(|p| p == std::path::Path::new("port-stacks.toml"))
    );
    if std::env::var_os("PORT_STACKS_FILE").is_none() {
        assert_eq!(paths[0], std::path::Path::new("port-stacks.toml"));
    }
    if std::env::var_os("HOME").is_some() || std::env::var_os("XDG_CONFIG_HOME").is_some() {
        assert!(paths.last().unwrap().ends_with("port/stacks.toml"));
    }
}

// ---------------------------------------------------------------------------------------------
// Building stacks and running them against each other.

fn setups(n: u8) -> (ClientConfig, ServerConfig) {
    let key = ServerKey::generate(&mut ChaCha20Rng::from_seed([n; 32]));
    let config = Config::default();
    let client = ClientConfig::new(config.clone(), key.client_key(), "tok").unwrap();
    (client, ServerConfig::new(config, key))
}

fn contexts(n: u8, now: Instant) -> (LayerContext, LayerContext) {
    let (client_setup, server_setup) = setups(n);
    let mut client = LayerContext::new(Side::Client, now, UNIX, [n; 32]);
    client.client = Some(client_setup);
    let mut server = LayerContext::new(Side::Server, now, UNIX, [n.wrapping_add(1); 32]);
    server.server = Some(server_setup);
    let seaside_key = seaside::ServerKey::generate(&mut ChaCha20Rng::from_seed([n ^ 0x55; 32]));
    client.seaside_client = Some(
        seaside::ClientConfig::new(Config::default(), seaside_key.client_key(), "tok").unwrap(),
    );
    server.seaside_server = Some(seaside::ServerConfig::new(Config::default(), seaside_key));
    (client, server)
}

/// A client and a server stack joined by in-memory byte streams cut into `chunk`-byte pieces,
/// on a virtual clock. The server accepts, echoes and closes when the client finished.
struct Wire {
    client: Stack,
    server: Stack,
    now: Instant,
    chunk: usize,
    client_events: Vec<Event>,
    server_events: Vec<Event>,
    client_fin: bool,
    server_fin: bool,
    steps: usize,
}

impl Wire {
    fn new(client: Stack, server: Stack, now: Instant, chunk: usize) -> Wire {
        Wire {
            client,
            server,
            now,
            chunk,
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_fin: false,
            server_fin: false,
            steps: 0,
        }
    }

    fn step(&mut self) -> bool {
        self.steps += 1;
        assert!(self.steps < 100_000, "step limit reached");
        let mut moved = false;
        while let Some(bytes) = Session::poll_transmit(&mut self.client, self.now) {
            moved = true;
            for piece in bytes.chunks(self.chunk) {
                Session::handle_input(&mut self.server, self.now, piece);
            }
        }
        while let Some(bytes) = Session::poll_transmit(&mut self.server, self.now) {
            moved = true;
            for piece in bytes.chunks(self.chunk) {
                Session::handle_input(&mut self.client, self.now, piece);
            }
        }
        if !self.client_fin && Session::is_send_finished(&self.client) {
            self.client_fin = true;
            Session::handle_transport_end(&mut self.server, self.now);
            moved = true;
        }
        if !self.server_fin && Session::is_send_finished(&self.server) {
            self.server_fin = true;
            Session::handle_transport_end(&mut self.client, self.now);
            moved = true;
        }
        while let Some(event) = Session::poll_event(&mut self.server) {
            moved = true;
            match &event {
                Event::Authenticate { token, .. } => {
                    assert_eq!(&token[..], b"tok");
                    Session::accept(&mut self.server, 5).unwrap();
                }
                Event::Data(m) => Session::send(&mut self.server, m.clone()).unwrap(),
                Event::Finished => Session::close(&mut self.server),
                // In memory the "second connection" is the same pair of streams.
                Event::Redirect { .. } => Session::handle_redirected(&mut self.server, self.now),
                _ => {}
            }
            self.server_events.push(event);
        }
        while let Some(event) = Session::poll_event(&mut self.client) {
            moved = true;
            if let Event::Redirect { .. } = event {
                Session::handle_redirected(&mut self.client, self.now);
            }
            self.client_events.push(event);
        }
        if moved {
            return true;
        }
        let next = [
            Session::poll_timeout(&self.client),
            Session::poll_timeout(&self.server),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(t) => {
                self.now = self.now.max(t);
                Session::handle_timeout(&mut self.client, self.now);
                Session::handle_timeout(&mut self.server, self.now);
                true
            }
            None => false,
        }
    }

    fn run_until(&mut self, done: impl Fn(&Wire) -> bool) -> bool {
        while !done(self) {
            if !self.step() {
                return done(self);
            }
        }
        true
    }
}

fn data(events: &[Event]) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn closes(events: &[Event]) -> Vec<CloseReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Closed(r) => Some(*r),
            _ => None,
        })
        .collect()
}

fn connects(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Connected { .. }))
        .count()
}

fn messages(with_empty: bool) -> Vec<Bytes> {
    let mut out: Vec<Bytes> = (1..=12u8)
        .map(|i| Bytes::from(vec![i; usize::from(i) * 211]))
        .collect();
    if with_empty {
        out.insert(3, Bytes::new());
    }
    out
}

/// Builds both sides of `spec` and runs an echo exchange through the Session interface.
fn echo_through(registry: &Registry, spec: &str, chunk: usize, keeps_boundaries: bool) {
    let now = Instant::now();
    let (cctx, sctx) = contexts(9, now);
    let client = registry.build(spec, &cctx).unwrap();
    let server = registry.build(spec, &sctx).unwrap();
    let names = registry.resolve(spec).unwrap();
    assert_eq!(client.layer_names(), names);
    assert_eq!(server.layer_names(), names);
    assert_eq!(Layer::name(&client), spec);

    let mut w = Wire::new(client, server, now, chunk);
    assert!(
        w.run_until(|w| connects(&w.client_events) == 1),
        "{spec}: never connected"
    );
    let expected_user = if names.iter().any(|n| n == "port" || n == "seaside") {
        5
    } else {
        0
    };
    // A seaside stack reports its Redirect first; the first Connected is what counts.
    assert_eq!(
        w.client_events
            .iter()
            .find(|e| matches!(e, Event::Connected { .. })),
        Some(&Event::Connected {
            user_id: expected_user
        }),
        "{spec}"
    );
    let sent = messages(keeps_boundaries);
    let total: usize = sent.iter().map(Bytes::len).sum();
    for m in &sent {
        Session::send(&mut w.client, m.clone()).unwrap();
    }
    assert!(
        w.run_until(|w| data(&w.client_events).iter().map(Bytes::len).sum::<usize>() >= total),
        "{spec}: echo incomplete"
    );
    if keeps_boundaries {
        assert_eq!(data(&w.server_events), sent, "{spec}");
        assert_eq!(data(&w.client_events), sent, "{spec}");
    } else {
        // A bare passthrough is a byte stream: boundaries are not kept, bytes are.
        assert_eq!(data(&w.server_events).concat(), sent.concat(), "{spec}");
        assert_eq!(data(&w.client_events).concat(), sent.concat(), "{spec}");
    }
    Session::close(&mut w.client);
    assert!(
        w.run_until(|w| Session::is_closed(&w.client) && Session::is_closed(&w.server)),
        "{spec}: did not close: {:?} / {:?}",
        w.client_events,
        w.server_events
    );
    // Nothing more moves, nothing arrives twice.
    while w.step() {}
    assert_eq!(closes(&w.client_events), [CloseReason::Local], "{spec}");
    assert_eq!(closes(&w.server_events), [CloseReason::Peer], "{spec}");
    assert_eq!(connects(&w.client_events), 1, "{spec}");
    assert_eq!(connects(&w.server_events), 1, "{spec}");
    assert!(Session::is_peer_finished(&w.client), "{spec}");
    if keeps_boundaries {
        assert_eq!(data(&w.client_events), sent, "{spec}");
    } else {
        assert_eq!(data(&w.client_events).concat(), sent.concat(), "{spec}");
    }
}

#[test]
fn built_stacks_echo_and_close() {
    let r = Registry::with_builtins();
    for chunk in [1, 5, 100_000] {
        echo_through(&r, "passthrough", chunk, false);
        echo_through(&r, "frame+passthrough", chunk, true);
        echo_through(&r, "port+passthrough", chunk, true);
        echo_through(&r, "port", chunk, true);
    }
    echo_through(&r, "secure", 64, true);
    echo_through(&r, "framing+pass", 64, true);
    echo_through(&r, "frame+port+passthrough", 13, true);
}

#[test]
fn seaside_stacks_echo_and_close_across_the_second_connection() {
    let r = Registry::with_builtins();
    for chunk in [1, 7, 100_000] {
        echo_through(&r, "seaside", chunk, true);
        echo_through(&r, "frame+seaside", chunk, true);
        echo_through(&r, "port+seaside", chunk, true);
    }
}

#[test]
fn seaside_must_be_the_bottom_layer_and_needs_its_setup() {
    let r = Registry::with_builtins();
    let now = Instant::now();
    let (cctx, sctx) = contexts(6, now);
    match r.build("seaside+passthrough", &cctx) {
        Err(RegistryError::Invalid { what, why }) => {
            assert!(what.contains("seaside"), "{what}");
            assert!(why.contains("bottom"), "{why}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    let bare = LayerContext::new(Side::Server, now, UNIX, [1; 32]);
    match r.build("seaside", &bare) {
        Err(RegistryError::MissingSetup { layer, side, .. }) => {
            assert_eq!((layer.as_str(), side), ("seaside", Side::Server));
        }
        other => panic!("expected MissingSetup, got {other:?}"),
    }
    let client = r.build("frame+seaside", &cctx).unwrap();
    assert!(Session::needs_redirect(&client));
    let server = r.build("port+passthrough", &sctx).unwrap();
    assert!(!Session::needs_redirect(&server));
}

#[test]
fn the_application_is_connected_only_after_the_port_handshake() {
    let r = Registry::with_builtins();
    let now = Instant::now();
    let (cctx, sctx) = contexts(4, now);
    let mut client = r.build("port+passthrough", &cctx).unwrap();
    let mut server = r.build("port+passthrough", &sctx).unwrap();
    // The passthrough under the port layer is up at once; the application hears nothing yet.
    assert_eq!(Session::poll_event(&mut client), None);
    let init = Session::poll_transmit(&mut client, now).expect("client INIT");
    assert_eq!(Session::poll_event(&mut client), None);
    Session::handle_input(&mut server, now, &init);
    assert!(matches!(
        Session::poll_event(&mut server),
        Some(Event::Authenticate { .. })
    ));
    Session::accept(&mut server, 77).unwrap();
    assert_eq!(
        Session::poll_event(&mut server),
        Some(Event::Connected { user_id: 77 })
    );
    // The server is up, but until its INIT reaches the client, the client is not.
    assert_eq!(Session::poll_event(&mut client), None);
    assert!(Session::send(&mut client, Bytes::from_static(b"early")).is_err());
    let reply = Session::poll_transmit(&mut server, now).expect("server INIT");
    Session::handle_input(&mut client, now, &reply);
    assert_eq!(
        Session::poll_event(&mut client),
        Some(Event::Connected { user_id: 77 })
    );
    Session::send(&mut client, Bytes::from_static(b"now")).unwrap();
}

#[test]
fn a_rejection_and_a_silent_server_reach_the_top_of_built_stacks() {
    let r = Registry::with_builtins();
    let now = Instant::now();
    let (cctx, sctx) = contexts(8, now);

    // Rejected: the client hears why, and never hears "connected".
    let mut client = r.build("frame+secure", &cctx).unwrap();
    let mut server = r.build("frame+secure", &sctx).unwrap();
    let mut client_events = Vec::new();
    let mut server_events = Vec::new();
    for _ in 0..50 {
        while let Some(b) = Session::poll_transmit(&mut client, now) {
            Session::handle_input(&mut server, now, &b);
        }
        while let Some(b) = Session::poll_transmit(&mut server, now) {
            Session::handle_input(&mut client, now, &b);
        }
        while let Some(e) = Session::poll_event(&mut server) {
            if matches!(e, Event::Authenticate { .. }) {
                Session::reject(&mut server, Status::Application(4242)).unwrap();
            }
            server_events.push(e);
        }
        while let Some(e) = Session::poll_event(&mut client) {
            client_events.push(e);
        }
    }
    assert_eq!(connects(&client_events), 0, "{client_events:?}");
    assert_eq!(
        closes(&client_events),
        [CloseReason::Rejected(Status::Application(4242))]
    );
    assert_eq!(
        closes(&server_events),
        [CloseReason::Rejected(Status::Application(4242))]
    );
    assert!(matches!(
        Session::accept(&mut server, 1),
        Err(port_core::Error::NoPendingAuthentication)
    ));

    // Nobody answers: the handshake times out on the virtual clock, at the top.
    let mut client = r.build("frame+secure", &cctx).unwrap();
    while Session::poll_transmit(&mut client, now).is_some() {}
    let deadline = Session::poll_timeout(&client).expect("a handshake deadline");
    assert!(deadline > now);
    Session::handle_timeout(&mut client, deadline);
    let events: Vec<_> = std::iter::from_fn(|| Session::poll_event(&mut client)).collect();
    assert_eq!(closes(&events), [CloseReason::HandshakeTimeout]);
    assert_eq!(connects(&events), 0);
}

/// Builds a connected pair for `spec`, then feeds the client bytes no PORT peer could have
/// sealed.
fn garbage_after_handshake(spec: &str) -> Wire {
    let r = Registry::with_builtins();
    let now = Instant::now();
    let (cctx, sctx) = contexts(6, now);
    let client = r.build(spec, &cctx).unwrap();
    let server = r.build(spec, &sctx).unwrap();
    let mut w = Wire::new(client, server, now, 4096);
    assert!(w.run_until(|w| connects(&w.client_events) == 1));
    Session::handle_input(&mut w.client, w.now, &[0x42; 100]);
    while let Some(event) = Session::poll_event(&mut w.client) {
        w.client_events.push(event);
    }
    assert_eq!(
        closes(&w.client_events),
        [CloseReason::Protocol(ProtocolError::Authentication)],
        "{spec}"
    );
    assert!(Session::send(&mut w.client, Bytes::from_static(b"x")).is_err());
    w
}

#[test]
fn a_protocol_error_goes_down_the_stack_and_reaches_the_top() {
    // PORT alone: the connection is over as soon as it failed.
    let mut w = garbage_after_handshake("port");
    while Session::poll_transmit(&mut w.client, w.now).is_some() {}
    assert!(Session::is_send_finished(&w.client));
    assert!(Session::is_closed(&w.client));

    // PORT over a passthrough: the port layer will never send again, so the passthrough ends
    // its direction (the transport may be shut at once), and the stack is closed when the
    // transport's end is seen, as a driver does after its FIN.
    let mut w = garbage_after_handshake("port+passthrough");
    while Session::poll_transmit(&mut w.client, w.now).is_some() {}
    assert!(Session::is_send_finished(&w.client));
    assert!(!Session::is_closed(&w.client));
    Session::handle_transport_end(&mut w.client, w.now);
    assert!(Session::is_closed(&w.client));
    // The top already reported its reason; nothing more is reported.
    assert_eq!(Session::poll_event(&mut w.client), None);

    // Run on: the server sees the transport end and closes too.
    let mut w = garbage_after_handshake("frame+port+passthrough");
    assert!(w.run_until(|w| Session::is_closed(&w.client) && Session::is_closed(&w.server)));
    assert_eq!(
        closes(&w.client_events),
        [CloseReason::Protocol(ProtocolError::Authentication)]
    );
    assert_eq!(closes(&w.server_events), [CloseReason::TransportClosed]);
}

#[test]
fn port_without_its_setup_is_missing_setup() {
    let r = Registry::with_builtins();
    let now = Instant::now();
    let bare_client = LayerContext::new(Side::Client, now, UNIX, [1; 32]);
    let err = r.build("frame+secure", &bare_client).unwrap_err();
    assert_eq!(
        err,
        RegistryError::MissingSetup {
            layer: "port".into(),
            side: Side::Client,
            needs: stack::registry::NEEDS_CLIENT_CONFIG,
        }
    );
    assert_eq!(
        err.to_string(),
        "layer \"port\" on the client side needs a ClientConfig (key and token) in the \
         LayerContext"
    );
    let bare_server = LayerContext::new(Side::Server, now, UNIX, [1; 32]);
    let err = r.build("port", &bare_server).unwrap_err();
    assert!(matches!(
        err,
        RegistryError::MissingSetup {
            side: Side::Server,
            ..
        }
    ));
    assert!(err.to_string().contains("ServerConfig"), "{err}");
    // A client context that only has a server setup is no better.
    let (_, sctx) = contexts(1, now);
    let mut wrong = sctx.clone();
    wrong.side = Side::Client;
    assert!(matches!(
        r.build("port", &wrong),
        Err(RegistryError::MissingSetup { .. })
    ));
    // Layers needing nothing build without setup; errors of the spec come first.
    assert!(r.build("frame+pass", &bare_client).is_ok());
    assert!(matches!(
        r.build("nope+port", &bare_client),
        Err(RegistryError::UnknownName { .. })
    ));
}

#[test]
fn factories_see_the_side_and_their_index_bottom_first() {
    let seen: Arc<Mutex<Vec<(Side, usize)>>> = Arc::default();
    let (c, s) = (seen.clone(), seen.clone());
    let mut r = Registry::with_builtins();
    r.register_layer(
        "spy",
        factory(move |ctx, index| {
            c.lock().unwrap().push((ctx.side, index));
            Ok(Box::new(Passthrough::new()))
        }),
        factory(move |ctx, index| {
            s.lock().unwrap().push((ctx.side, index));
            Ok(Box::new(Passthrough::new()))
        }),
    )
    .unwrap();
    r.register_symmetric_layer(
        "broken",
        factory(|_, index| {
            Err(RegistryError::Invalid {
                what: "layer \"broken\"".into(),
                why: format!("refuses index {index}"),
            })
        }),
    )
    .unwrap();
    let now = Instant::now();
    let client = LayerContext::new(Side::Client, now, UNIX, [1; 32]);
    let server = LayerContext::new(Side::Server, now, UNIX, [1; 32]);
    let built = r.build("spy+frame+spy+spy", &client).unwrap();
    assert_eq!(
        built.layer_names(),
        ["passthrough", "frame", "passthrough", "passthrough"]
    );
    r.build("spy", &server).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (Side::Client, 0),
            (Side::Client, 1),
            (Side::Client, 3),
            (Side::Server, 0)
        ]
    );
    let err = r.build("frame+broken+pass", &client).unwrap_err();
    assert!(err.to_string().contains("refuses index 1"), "{err}");
}

#[test]
fn the_registry_is_shareable() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Registry>();
    let debug = format!("{:?}", Registry::with_builtins());
    assert!(
        debug.contains("\"port\"") && debug.contains("secure"),
        "{debug}"
    );
}

// ---------------------------------------------------------------------------------------------
// Addresses.

#[test]
fn addresses_round_trip() {
    let cases: [(&str, &str, &str, u16, &str); 7] = [
        (
            "port://127.0.0.1:9000",
            "port",
            "127.0.0.1",
            9000,
            "127.0.0.1:9000",
        ),
        (
            "port+passthrough://[::1]:443",
            "port+passthrough",
            "::1",
            443,
            "[::1]:443",
        ),
        (
            "frame+port+pass://[2001:db8::7]:65535",
            "frame+port+pass",
            "2001:db8::7",
            65535,
            "[2001:db8::7]:65535",
        ),
        (
            "secure://example.com:1",
            "secure",
            "example.com",
            1,
            "example.com:1",
        ),
        (
            "my_stack-2://localhost:8080",
            "my_stack-2",
            "localhost",
            8080,
            "localhost:8080",
        ),
        (
            "p://a-b.c_d.example.:9",
            "p",
            "a-b.c_d.example.",
            9,
            "a-b.c_d.example.:9",
        ),
        (
            "p://[::ffff:1.2.3.4]:9",
            "p",
            "::ffff:1.2.3.4",
            9,
            "[::ffff:1.2.3.4]:9",
        ),
    ];
    for (text, stack, host, port, host_port) in cases {
        let address: Address = text.parse().unwrap();
        assert_eq!(
            address,
            Address {
                stack: stack.into(),
                host: host.into(),
                port
            }
        );
        assert_eq!(address.host_port(), host_port);
        assert_eq!(address.to_string(), text);
        assert_eq!(address.to_string().parse::<Address>().unwrap(), address);
        assert_eq!(address.layers(), stack.split('+').collect::<Vec<_>>());
    }
    // One trailing slash is tolerated and dropped.
    let slash: Address = "port://host:7/".parse().unwrap();
    assert_eq!(slash.to_string(), "port://host:7");
    assert_eq!(
        Address::from_parts("port+passthrough", "[::1]:9000").unwrap(),
        "port+passthrough://[::1]:9000".parse().unwrap()
    );
    // A host_port resolves as a socket address.
    let v6: Address = "port://[::1]:9000".parse().unwrap();
    let socket: std::net::SocketAddr = v6.host_port().parse().unwrap();
    assert_eq!(socket.port(), 9000);
    // Addresses name stacks the registry resolves.
    let r = Registry::with_builtins();
    let framed: Address = "framing+secure://10.0.0.1:5".parse().unwrap();
    assert_eq!(
        r.resolve(&framed.stack).unwrap(),
        ["frame", "port", "passthrough"]
    );
}

fn refused(text: &str) -> (AddressError, String) {
    let err = text.parse::<Address>().unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("invalid address: "), "{message}");
    assert!(message.contains("NAME(+NAME)*://HOST:PORT"), "{message}");
    assert!(!message.contains('\n'));
    (err, message)
}

#[test]
fn addresses_without_a_stack_are_refused() {
    assert_eq!(refused("").0, AddressError::Empty);
    assert_eq!(refused("127.0.0.1:9000").0, AddressError::MissingScheme);
    assert_eq!(
        refused("port:127.0.0.1:9000").0,
        AddressError::MissingScheme
    );
    assert_eq!(refused("port:/host:1").0, AddressError::MissingScheme);
    assert_eq!(refused("://host:1").0, AddressError::EmptyStack);
    for text in ["port++pass://h:1", "+port://h:1", "port+://h:1"] {
        let (err, message) = refused(text);
        assert_eq!(err, AddressError::EmptyName, "{text}");
        assert!(message.contains("empty name"), "{message}");
    }
    for (text, name) in [
        ("Port://h:1", "Port"),
        ("port+pa ss://h:1", "pa ss"),
        ("pört://h:1", "pört"),
        ("port.x://h:1", "port.x"),
    ] {
        let (err, message) = refused(text);
        assert!(
            matches!(&err, AddressError::InvalidName { name: n, .. } if n == name),
            "{text}: {err:?}"
        );
        assert!(message.contains(&format!("{name:?}")), "{message}");
    }
}

#[test]
fn addresses_with_bad_hosts_or_ports_are_refused() {
    assert_eq!(refused("port://:9000").0, AddressError::MissingHost);
    assert_eq!(
        refused("port://[]:9000").0,
        AddressError::InvalidHost {
            host: String::new(),
            why: "not an IPv6 address"
        }
    );
    for (text, host) in [
        ("port://[::1:9000", "[::1:9000"),
        ("port://[::g]:9000", "::g"),
        ("port://[1.2.3.4]:9000", "1.2.3.4"),
        ("port://[::1]x:9000", "[::1]x:9000"),
        ("port://::1:9000", "::1"),
        ("port://256.1.1.1:9000", "256.1.1.1"),
        ("port://1.2.3:9000", "1.2.3"),
        ("port://a..b:9000", "a..b"),
        ("port://-a.b:9000", "-a.b"),
        ("port://ex ample:9000", "ex ample"),
        ("port://exämple.com:9000", "exämple.com"),
    ] {
        let (err, message) = refused(text);
        assert!(
            matches!(&err, AddressError::InvalidHost { host: h, .. } if h == host),
            "{text}: {err:?}"
        );
        assert!(message.contains("bad host"), "{message}");
    }
    let long_label = format!("port://{}.com:1", "a".repeat(64));
    assert!(matches!(
        refused(&long_label).0,
        AddressError::InvalidHost { .. }
    ));

    assert_eq!(refused("port://host").0, AddressError::MissingPort);
    assert_eq!(refused("port://host:").0, AddressError::MissingPort);
    assert_eq!(refused("port://[::1]").0, AddressError::MissingPort);
    assert_eq!(refused("port://[::1]:").0, AddressError::MissingPort);
    let (err, message) = refused("port://host:0");
    assert_eq!(err, AddressError::ZeroPort);
    assert!(message.contains("port 0"), "{message}");
    for port in [
        "65536",
        "99999999999999999999",
        "-1",
        "+80",
        "8o",
        "80 ",
        " 80",
    ] {
        let (err, message) = refused(&format!("port://host:{port}"));
        assert_eq!(
            err,
            AddressError::InvalidPort { port: port.into() },
            "{port}"
        );
        assert!(message.contains("bad port"), "{message}");
    }
}

#[test]
fn addresses_with_paths_are_refused() {
    for text in ["port://host:1/x", "port://host:1//", "port://[::1]:1/a/b"] {
        let (err, message) = refused(text);
        assert_eq!(err, AddressError::Path, "{text}");
        assert!(message.contains("follows HOST:PORT"), "{message}");
    }
    assert_eq!(
        Address::from_parts("port", "host:1/x").unwrap_err(),
        AddressError::Path
    );
}

#[test]
fn addresses_never_carry_keys_or_tokens() {
    let cases = [
        ("port://user@host:1", AddressError::UserInfo),
        ("port://user:secret@host:1", AddressError::UserInfo),
        ("port://host:1?token=hunter2", AddressError::Query),
        ("port://host:1/?key=hunter2", AddressError::Query),
        ("port://host:1#hunter2", AddressError::Fragment),
        ("port+x://[::1]:1#k?t", AddressError::Fragment),
    ];
    for (text, expected) in cases {
        let (err, message) = refused(text);
        assert_eq!(err, expected, "{text}");
        assert!(err.is_secret());
        assert!(
            message.contains("keys and tokens never go in addresses"),
            "{message}"
        );
        // The secret itself is not repeated.
        assert!(
            !message.contains("hunter2") && !message.contains("secret@"),
            "{message}"
        );
    }
    assert_eq!(
        Address::from_parts("port", "host:1?token=x").unwrap_err(),
        AddressError::Query
    );
    assert_eq!(
        Address::from_parts("port", "u@host:1").unwrap_err(),
        AddressError::UserInfo
    );
    assert!(!AddressError::ZeroPort.is_secret());
}

#[test]
fn address_parsing_never_panics_on_odd_input() {
    let pieces = [
        "", "port", "+", "://", ":", "[", "]", "::1", "@", "/", "?", "#", "9000", "0", "é", " ",
        "a.b", "[::1]",
    ];
    for a in pieces {
        for b in pieces {
            for c in pieces {
                let text = format!("{a}{b}{c}");
                if let Ok(address) = text.parse::<Address>() {
                    assert_eq!(address.to_string().parse::<Address>().unwrap(), address);
                }
            }
        }
    }
}
