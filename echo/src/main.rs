//! `echotest`: placeholder until the echo milestone; `cargo run -p port-core --example demo` runs the exchange in memory.
#![forbid(unsafe_code)]

fn main() {
    eprintln!("echotest: not built yet; run `cargo run -p port-core --example demo`");
    std::process::exit(2);
}
