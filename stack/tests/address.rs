//! Stack addresses: `NAME(+NAME)*://HOST:PORT`.

use port_stack::{Address, AddressError, Registry};

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
