//! What a passive censor sees, measured the way `echotest flights` and `echotest lengths`
//! measure it: first flights through real sockets judged by the fully-encrypted-traffic rule,
//! and record sizes of keystrokes against bulk.

use port_core::{Lengths, Shape};
use port_echo::flights::{BUILT_IN_STACKS, Census, census};
use port_echo::lengths::measure;
use port_echo::runtime::RuntimeKind;
use port_echo::setup::StackChoice;
use port_stack::Registry;

fn run_census(stack: &str, shape: &str, connections: usize) -> Census {
    let shape = match shape {
        "none" => Shape::none(),
        text => Shape::from_params(text).unwrap(),
    };
    let kind = RuntimeKind::Tokio;
    kind.block_on(async {
        let stack = StackChoice::new(Registry::with_builtins(), stack).unwrap();
        census(&kind.runtime(), stack, &shape, connections).await
    })
    .unwrap()
    .unwrap()
}

#[test]
fn every_built_in_stack_reports_its_flagged_share() {
    for stack in BUILT_IN_STACKS {
        let census = run_census(stack, "none", 100);
        println!("{census}");
        assert_eq!(census.first_flights.len(), 100);
        assert!(census.first_flights.iter().all(|f| !f.is_empty()));
        if stack != "passthrough" && stack != "frame" {
            // Encrypted first flights with no shape look random: nearly all are flagged.
            assert!(census.flagged() >= 95, "{census}");
        }
    }
}

#[test]
fn shaped_first_flights_are_never_flagged() {
    let census = run_census("port", "prefix=@tls&popcount=low&lengths=shaped", 1000);
    println!("{census}");
    assert_eq!(census.first_flights.len(), 1000);
    assert_eq!(census.flagged(), 0, "{census}");
    assert!(
        census
            .first_flights
            .iter()
            .all(|f| f.starts_with(&[0x16, 0x03, 0x01]))
    );
    for shape in [
        "prefix=@http",
        "prefix=@tls",
        "popcount=low",
        "popcount=high",
    ] {
        for stack in ["port", "secure"] {
            let census = run_census(stack, shape, 200);
            println!("{census}");
            assert_eq!(census.flagged(), 0, "{census}");
        }
    }
}

#[test]
fn a_shape_needs_a_stack_with_port() {
    let kind = RuntimeKind::Tokio;
    let err = kind
        .block_on(async {
            let stack = StackChoice::new(Registry::with_builtins(), "frame").unwrap();
            let shape = Shape::from_params("popcount=low").unwrap();
            census(&kind.runtime(), stack, &shape, 1).await
        })
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("stacks with port"), "{err}");
}

#[test]
fn keystrokes_and_bulk_share_one_record_size_distribution() {
    let shaped = measure(Lengths::Shaped, 10_000, 1).unwrap();
    println!("{shaped}");
    assert_eq!(
        (shaped.keystrokes.len(), shaped.bulk.len()),
        (10_000, 10_000)
    );
    assert!(shaped.ks_distance() <= 0.05, "{shaped}");
    assert_ne!(
        shaped.keystrokes, shaped.bulk,
        "two samples, not one sequence twice"
    );
    let all = shaped.keystrokes.iter().chain(&shaped.bulk);
    assert!(
        all.clone()
            .all(|s| (port_core::MIN_RECORD..=port_core::MAX_RECORD).contains(s))
    );

    // The same measure tells the two apart at once under default padding.
    let padded = measure(Lengths::Padded, 10_000, 1).unwrap();
    println!("{padded}");
    assert!(padded.ks_distance() > 0.99, "{padded}");
}
