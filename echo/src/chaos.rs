//! `echotest chaos`: runs the network-in-chaos scenarios (see [`crate::scenario`]) and plots
//! each run's packets.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::error::Error;
use crate::scenario::{self, Files, Outcome, SCENARIOS, Scenario};

/// Arguments of `echotest chaos`.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// The scenario to run (repeatable): ideal, jitter, loss, duplicate, reorder, corrupt,
    /// stale, tamper.
    #[arg(long = "scenario", value_name = "NAME", required_unless_present_any = ["all", "list"])]
    pub scenarios: Vec<String>,
    /// Run every scenario.
    #[arg(long, conflicts_with = "scenarios")]
    pub all: bool,
    /// Print the scenarios and their faults, and exit.
    #[arg(long)]
    pub list: bool,
    /// Write the packet plot (SVG) of the one scenario run here.
    #[arg(long, value_name = "FILE", conflicts_with = "plot_dir")]
    pub plot: Option<PathBuf>,
    /// Write one packet plot per scenario, DIR/NAME.svg.
    #[arg(long, value_name = "DIR")]
    pub plot_dir: Option<PathBuf>,
    /// Seed of the fault injector's generator.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Replace the scenario's faults with these, in netem's vocabulary (`loss 10% delay 20ms`).
    #[arg(long, value_name = "SPEC")]
    pub netem: Option<String>,
    /// Keep the working directory (keys, message records) and print where it is.
    #[arg(long)]
    pub keep: bool,
    /// Exit with failure when any scenario's assertions fail (without it, failures are
    /// reported and the exit status says only whether the runs could be made).
    #[arg(long)]
    pub check: bool,
}

fn say(text: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

fn list() {
    for s in SCENARIOS {
        let netem = if s.netem.is_empty() { "none" } else { s.netem };
        say(format_args!(
            "{:<10} {:<32} {} messages; {}",
            s.name, netem, s.messages, s.about
        ));
    }
}

/// Runs `echotest chaos`.
pub fn run(args: ChaosArgs) -> Result<(), Error> {
    if args.list {
        list();
        return Ok(());
    }
    let chosen: Vec<Scenario> = if args.all {
        SCENARIOS.to_vec()
    } else {
        args.scenarios
            .iter()
            .map(|n| scenario::find(n))
            .collect::<Result<_, _>>()?
    };
    if args.plot.is_some() && chosen.len() != 1 {
        return Err(Error::msg(
            "--plot FILE takes one scenario; use --plot-dir DIR for several",
        ));
    }
    let override_faults = args
        .netem
        .as_deref()
        .map(port_chaos::Faults::parse)
        .transpose()
        .map_err(|e| Error::msg(e.to_string()))?;
    port_chaos::preflight::check().map_err(|e| Error::msg(e.to_string()))?;
    // The run itself happens in a user namespace with a network of its own: no root needed,
    // and nothing of the machine's own network touched.
    if let Some(status) =
        port_chaos::netns::enter_own_network().map_err(|e| Error::msg(e.to_string()))?
    {
        std::process::exit(status.code().unwrap_or(1));
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::msg(format!("cannot find the echotest binary: {e}")))?;
    let dir = std::env::temp_dir().join(format!("echotest-chaos-{}", std::process::id()));
    let files = keys(&dir)?;
    let mut outcomes = Vec::new();
    let result = (|| {
        for s in &chosen {
            let faults = match &override_faults {
                Some(f) => f.clone(),
                None => {
                    port_chaos::Faults::parse(s.netem).map_err(|e| Error::msg(e.to_string()))?
                }
            };
            say(format_args!("== {} ({faults})", s.name));
            let outcome = scenario::run(&exe, *s, faults, args.seed, &files)?;
            report(&outcome);
            plot(&args, &outcome)?;
            outcomes.push(outcome);
        }
        Ok::<_, Error>(())
    })();
    if args.keep {
        say(format_args!("kept {}", dir.display()));
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result?;
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.passed())
        .map(|o| o.scenario.name)
        .collect();
    say(format_args!(
        "chaos: {} passed, {} failed",
        outcomes.len() - failed.len(),
        failed.len()
    ));
    if args.check && !failed.is_empty() {
        return Err(Error::msg(format!("chaos: failed: {}", failed.join(", "))));
    }
    Ok(())
}

/// Fresh keys for the run, in `dir`.
fn keys(dir: &std::path::Path) -> Result<Files, Error> {
    let server = crate::keygen::generate()?;
    let (server_key, client_key) =
        crate::keygen::write_texts(dir, &server.to_text(), &server.client_key().to_text(), true)?;
    Ok(Files {
        server_key,
        client_key,
        dir: dir.to_path_buf(),
    })
}

fn report(o: &Outcome) {
    let verdict = if o.passed() { "PASS" } else { "FAIL" };
    say(format_args!(
        "{verdict} {} in {:.1} s: {}",
        o.scenario.name,
        o.duration.as_secs_f64(),
        o.tally
    ));
    for note in &o.notes {
        say(format_args!("  {note}"));
    }
    for failure in &o.failures {
        say(format_args!("  FAILED: {failure}"));
    }
}

fn plot(args: &ChaosArgs, o: &Outcome) -> Result<(), Error> {
    let path = match (&args.plot, &args.plot_dir) {
        (Some(file), _) => file.clone(),
        (None, Some(dir)) => dir.join(format!("{}.svg", o.scenario.name)),
        (None, None) => return Ok(()),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::msg(format!("cannot create {}: {e}", parent.display())))?;
    }
    let title = format!(
        "{}: {} ({} messages, {:.1} s)",
        o.scenario.name,
        o.faults,
        o.scenario.messages,
        o.duration.as_secs_f64()
    );
    let svg = port_chaos::plot::render(&title, &o.records, &o.kinds);
    std::fs::write(&path, svg)
        .map_err(|e| Error::msg(format!("cannot write {}: {e}", path.display())))?;
    say(format_args!("  plot: {}", path.display()));
    Ok(())
}
