//! The registry: names, aliases, named stacks, stack files, building stacks by name, and
//! configuring the layers that need keys.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use common::{Wire, built, closes, connects, data, linked, messages, registries, start};
use port_core::{CloseReason, Event, ProtocolError, Redirect, Session};
use port_stack::layers::{self, Passthrough};
use port_stack::registry::{Definition, MAX_DEPTH, MAX_LAYERS, factory, is_valid_name};
use port_stack::{Registry, RegistryError};

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
    r.register_layer("a", factory(|_, _| Ok(Box::new(Passthrough::new()))))
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
    );
    assert!(matches!(twice, Err(RegistryError::Duplicate { .. })));
    // A layer may not take a stack's or an alias's name either.
    let symmetric = factory(|_, _| Ok(Box::new(Passthrough::new())));
    assert!(matches!(
        r.register_layer("secure", symmetric.clone()),
        Err(RegistryError::Duplicate { .. })
    ));
    assert!(matches!(
        r.register_layer("pass", symmetric.clone()),
        Err(RegistryError::Duplicate { .. })
    ));
    r.register_layer("new", symmetric).unwrap();
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

/// Stack files that are refused: the text, how the message starts (the place), and what it
/// says.
#[rustfmt::skip] // one case a line
const REFUSED_FILES: [(&str, &str, &str); 22] = [
    // Form.
    ("[stack.a]\nlayers = [\"port\"]\n\n[stack.b\nlayers = []\n", "line 4, column 9: ", "unclosed table"),
    ("[alias]\np = \"port\"\np = \"frame\"\n", "line 3", "duplicate key"),
    ("layers = [\"port\"\n", "line 1, column ", ""),
    // Keys.
    ("[stack.a]\nlayers = [\"port\"]\n\n[stacks.b]\nlayers = []\n", "line 4, column 2 (stacks): ", "unknown field `stacks`, expected `stack` or `alias`"),
    ("[stack.a]\nlayers = [\"port\"]\nlayer = [\"frame\"]\n", "line 3, column 1 (stack.a.layer): ", "unknown field `layer`, expected `layers`"),
    ("version = 1\n", "line 1", "unknown field `version`"),
    ("[stack.x]\n", "line 1", "missing field `layers`"),
    // Types.
    ("[stack.x]\nlayers = \"port\"\n", "line 2, column 10 (stack.x.layers): ", "invalid type: string \"port\", expected a sequence"),
    ("[stack.x]\nlayers = [\"port\", 3]\n", "line 2, column ", "expected a string"),
    ("[stack.x]\nlayers = [[\"port\"]]\n", "line 2, column ", "expected a string"),
    ("stack = 3\n", "line 1", "invalid type: integer `3`, expected a map"),
    ("[stack]\nx = 3\n", "line 2", "expected struct StackTable"),
    ("alias = [\"p\"]\n", "line 1", "expected a map"),
    ("[alias]\np = 3\n", "line 2", "expected a string"),
    // Definitions.
    ("[stack.x]\nlayers = []\n", "line 2: ", "[stack.x] layers must name at least one layer"),
    ("[stack.Bad]\nlayers = [\"port\"]\n", "line 1", "bad stack name \"Bad\""),
    ("[stack.x]\nlayers = [\n  \"port\",\n  \"a+b\",\n]\n", "line 4", "bad layer name \"a+b\""),
    ("[alias]\n\"P Q\" = \"port\"\n", "line 2", "bad alias name \"P Q\""),
    ("[alias]\np = \"port+frame\"\n", "line 2", "alias \"p\": bad target \"port+frame\""),
    ("[alias]\nx = \"port\"\n[stack.x]\nlayers = [\"frame\"]\n", "line 3", "\"x\" is defined both as a stack and as an alias"),
    // Shadowing a layer.
    ("[stack.port]\nlayers = [\"frame\"]\n", "line 1: ", "\"port\" is a layer"),
    ("[alias]\n\nframe = \"port\"\n", "line 3: ", "\"frame\" is a layer"),
];

#[test]
fn refused_files_name_the_file_the_line_and_what_is_wrong() {
    for (text, place, what) in REFUSED_FILES {
        let (message, display) = load_err(text);
        assert!(message.starts_with(place), "{text:?}: {message}");
        assert!(message.contains(what), "{text:?}: {message}");
        assert_eq!(display, format!("conf/stacks.toml: {message}"));
    }
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
    assert!(
        message.starts_with("line 3, column 1 (stack.f.extra): "),
        "{message}"
    );
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

/// Builds both sides of `spec` and runs an echo exchange through the Session interface.
fn echo_through(spec: &str, chunk: usize, keeps_boundaries: bool) {
    let now = Instant::now();
    let (client, server) = built(spec, 9, now);
    let names = Registry::with_builtins().resolve(spec).unwrap();
    assert_eq!(client.layer_names(), names);
    assert_eq!(server.layer_names(), names);
    assert_eq!(client.name(), spec);

    let mut w = Wire::new(client, server, now, chunk);
    assert!(w.run_until(|w| w.connected()), "{spec}: never connected");
    let expected_user = if names.iter().any(|n| n == "port" || n == "seaside") {
        5
    } else {
        0
    };
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
        w.client.send(m.clone()).unwrap();
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
    w.client.close();
    assert!(
        w.run_until(|w| w.client.is_closed() && w.server.is_closed()),
        "{spec}: did not close: {:?} / {:?}",
        w.client_events,
        w.server_events
    );
    // Nothing more moves, nothing arrives twice.
    w.run_out();
    assert_eq!(closes(&w.client_events), [CloseReason::Local], "{spec}");
    assert_eq!(closes(&w.server_events), [CloseReason::Peer], "{spec}");
    assert_eq!(connects(&w.client_events), 1, "{spec}");
    assert_eq!(connects(&w.server_events), 1, "{spec}");
    assert!(w.client.is_peer_finished(), "{spec}");
    if keeps_boundaries {
        assert_eq!(data(&w.client_events), sent, "{spec}");
    } else {
        assert_eq!(data(&w.client_events).concat(), sent.concat(), "{spec}");
    }
}

#[test]
fn built_stacks_echo_and_close() {
    for chunk in [1, 5, 100_000] {
        echo_through("passthrough", chunk, false);
        echo_through("frame+passthrough", chunk, true);
        echo_through("port+passthrough", chunk, true);
        echo_through("port", chunk, true);
    }
    echo_through("secure", 64, true);
    echo_through("framing+pass", 64, true);
    echo_through("frame+port+passthrough", 13, true);
}

#[test]
fn seaside_stacks_echo_and_close_across_the_second_connection() {
    for chunk in [1, 7, 100_000] {
        echo_through("seaside", chunk, true);
        echo_through("frame+seaside", chunk, true);
        echo_through("port+seaside", chunk, true);
    }
}

#[test]
fn seaside_must_be_the_bottom_layer_and_asks_for_its_second_connection() {
    let (client_registry, server_registry) = registries(6);
    let now = Instant::now();
    for registry in [
        &client_registry,
        &server_registry,
        &Registry::with_builtins(),
    ] {
        match registry.build("seaside+passthrough", &start(1, now)) {
            Err(RegistryError::Invalid { what, why }) => {
                assert!(what.contains("seaside"), "{what}");
                assert!(why.contains("bottom"), "{why}");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
    // Only the bottom layer's request reaches the driver, and only once it is due.
    let (mut client, mut server) = linked("frame+seaside", 2, now);
    assert_eq!(client.redirect(), None);
    server.handle_input(now, &client.poll_transmit(now).unwrap());
    assert!(matches!(
        server.poll_event(),
        Some(Event::Authenticate { .. })
    ));
    assert_eq!(server.redirect(), Some(Redirect::Listen));
    server.accept(40_000).unwrap();
    assert_eq!(server.redirect(), Some(Redirect::Move { port: 40_000 }));
    client.handle_input(now, &server.poll_transmit(now).unwrap());
    assert_eq!(client.redirect(), Some(Redirect::Move { port: 40_000 }));
    let (_, plain) = built("port+passthrough", 4, now);
    assert_eq!(plain.redirect(), None);
}

#[test]
fn the_application_is_connected_only_after_the_port_handshake() {
    let now = Instant::now();
    let (mut client, mut server) = linked("port+passthrough", 4, now);
    // The passthrough under the port layer is up at once; the application hears nothing yet.
    assert_eq!(client.poll_event(), None);
    let init = client.poll_transmit(now).expect("client INIT");
    assert_eq!(client.poll_event(), None);
    server.handle_input(now, &init);
    assert!(matches!(
        server.poll_event(),
        Some(Event::Authenticate { .. })
    ));
    server.accept(77).unwrap();
    assert_eq!(server.poll_event(), Some(Event::Connected { user_id: 77 }));
    // The server is up, but until its INIT reaches the client, the client is not.
    assert_eq!(client.poll_event(), None);
    assert!(client.send(Bytes::from_static(b"early")).is_err());
    let reply = server.poll_transmit(now).expect("server INIT");
    client.handle_input(now, &reply);
    assert_eq!(client.poll_event(), Some(Event::Connected { user_id: 77 }));
    client.send(Bytes::from_static(b"now")).unwrap();
}

#[test]
fn a_silent_server_times_the_handshake_out_at_the_top() {
    let now = Instant::now();
    let (mut client, _) = linked("frame+secure", 8, now);
    while client.poll_transmit(now).is_some() {}
    let deadline = client.poll_timeout().expect("a handshake deadline");
    assert!(deadline > now);
    client.handle_timeout(deadline);
    let events: Vec<_> = std::iter::from_fn(|| client.poll_event()).collect();
    assert_eq!(closes(&events), [CloseReason::HandshakeTimeout]);
    assert_eq!(connects(&events), 0);
}

/// Builds a connected pair for `spec`, then feeds the client bytes no PORT peer could have
/// sealed.
fn garbage_after_handshake(spec: &str) -> Wire<port_stack::Stack, port_stack::Stack> {
    let now = Instant::now();
    let (client, server) = built(spec, 6, now);
    let mut w = Wire::new(client, server, now, 4096);
    assert!(w.run_until(|w| connects(&w.client_events) == 1));
    w.client.handle_input(w.now, &[0x42; 100]);
    while let Some(event) = w.client.poll_event() {
        w.client_events.push(event);
    }
    assert_eq!(
        closes(&w.client_events),
        [CloseReason::Protocol(ProtocolError::Authentication)],
        "{spec}"
    );
    assert!(w.client.send(Bytes::from_static(b"x")).is_err());
    w
}

#[test]
fn a_protocol_error_goes_down_the_stack_and_reaches_the_top() {
    // PORT alone: the connection is over as soon as it failed.
    let mut w = garbage_after_handshake("port");
    while w.client.poll_transmit(w.now).is_some() {}
    assert!(w.client.is_send_finished());
    assert!(w.client.is_closed());

    // PORT over a passthrough: the port layer will never send again, so the passthrough ends
    // its direction (the transport may be shut at once), and the stack is closed when the
    // transport's end is seen, as a driver does after its FIN.
    let mut w = garbage_after_handshake("port+passthrough");
    while w.client.poll_transmit(w.now).is_some() {}
    assert!(w.client.is_send_finished());
    assert!(!w.client.is_closed());
    w.client.handle_link_end(w.now, None);
    assert!(w.client.is_closed());
    // The top already reported its reason; nothing more is reported.
    assert_eq!(w.client.poll_event(), None);

    // Run on: the server sees the transport end and closes too.
    let mut w = garbage_after_handshake("frame+port+passthrough");
    assert!(w.run_until(|w| w.client.is_closed() && w.server.is_closed()));
    assert_eq!(
        closes(&w.client_events),
        [CloseReason::Protocol(ProtocolError::Authentication)]
    );
    assert_eq!(closes(&w.server_events), [CloseReason::TransportClosed]);
}

#[test]
fn layers_that_need_keys_resolve_but_do_not_build_until_configured() {
    let mut r = Registry::with_builtins();
    let now = Instant::now();
    assert_eq!(
        r.resolve("frame+secure").unwrap(),
        ["frame", "port", "passthrough"]
    );
    let err = r.build("frame+secure", &start(1, now)).unwrap_err();
    assert_eq!(
        err,
        RegistryError::MissingSetup {
            layer: "port".into(),
            needs: layers::port::NEEDS,
        }
    );
    let text = err.to_string();
    assert!(
        text.starts_with("layer \"port\" is not configured: it needs its keys"),
        "{text}"
    );
    assert!(
        text.contains("layers::port::client(ClientConfig)"),
        "{text}"
    );
    assert!(matches!(
        r.build("seaside", &start(1, now)),
        Err(RegistryError::MissingSetup { layer, .. }) if layer == "seaside"
    ));
    // Layers needing nothing build without set-up; errors of the spec come first.
    assert!(r.build("frame+pass", &start(1, now)).is_ok());
    assert!(matches!(
        r.build("nope+port", &start(1, now)),
        Err(RegistryError::UnknownName { .. })
    ));
    // Only layers are configured: not aliases, stacks or unknown names.
    let (client_setup, _) = common::setups(1);
    for name in ["secure", "pass", "nope"] {
        let err = r
            .configure(name, layers::port::client(client_setup.clone()))
            .unwrap_err();
        assert!(
            matches!(err, RegistryError::UnknownName { .. }),
            "{name}: {err}"
        );
    }
    r.configure("port", layers::port::client(client_setup))
        .unwrap();
    assert_eq!(
        r.build("frame+secure", &start(1, now))
            .unwrap()
            .layer_names(),
        ["frame", "port", "passthrough"]
    );
}

#[test]
fn factories_see_their_index_bottom_first_and_their_own_seed() {
    let seen: Arc<Mutex<Vec<(usize, port_core::Seed)>>> = Arc::default();
    let spy = seen.clone();
    let mut r = Registry::with_builtins();
    r.register_layer(
        "spy",
        factory(move |start, index| {
            spy.lock().unwrap().push((index, start.seed));
            Ok(Box::new(Passthrough::new()))
        }),
    )
    .unwrap();
    r.register_layer(
        "broken",
        factory(|_, index| {
            Err(RegistryError::Invalid {
                what: "layer \"broken\"".into(),
                why: format!("refuses index {index}"),
            })
        }),
    )
    .unwrap();
    assert!(matches!(
        r.register_layer("spy", factory(|_, _| Ok(Box::new(Passthrough::new())))),
        Err(RegistryError::Duplicate { .. })
    ));
    let now = Instant::now();
    let built = r.build("spy+frame+spy+spy", &start(1, now)).unwrap();
    assert_eq!(built.layer_names(), ["spy", "frame", "spy", "spy"]);
    let seen = seen.lock().unwrap().clone();
    let indexes: Vec<usize> = seen.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, [0, 1, 3]);
    // Every layer draws from a seed of its own, derived from the connection's.
    assert_eq!(seen[0].1, start(1, now).derive(0).seed);
    assert_ne!(seen[0].1, seen[1].1);
    assert_ne!(seen[0].1, start(1, now).seed);
    let err = r.build("frame+broken+pass", &start(1, now)).unwrap_err();
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
