//! Ratios measured in one process, interleaved: each round runs every contestant once for about
//! the same time, one after the other, and a contestant's ratio is the median over the rounds
//! of (baseline time / its time) within the round. A burst of load from another process then
//! slows both sides of a ratio alike instead of skewing it, which back-to-back criterion runs
//! cannot promise on a shared machine.

use std::time::{Duration, Instant};

/// One contestant: a name and one iteration of work.
pub struct Entry<'a> {
    /// Printed name.
    pub name: String,
    /// One iteration.
    pub run: Box<dyn FnMut() + 'a>,
}

impl<'a> Entry<'a> {
    /// An entry named `name` running `run` once per iteration.
    pub fn new(name: impl Into<String>, run: impl FnMut() + 'a) -> Self {
        Entry {
            name: name.into(),
            run: Box::new(run),
        }
    }
}

/// What one contestant achieved.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Its name.
    pub name: String,
    /// Median time of one iteration over the rounds, in seconds.
    pub secs: f64,
    /// Median over the rounds of baseline time / its time: its speed relative to the baseline
    /// (the first entry), above 1 when faster.
    pub speed: f64,
    /// Its time per iteration in each round, in round order.
    pub rounds: Vec<f64>,
}

impl Outcome {
    /// Median over the rounds of `other`'s time / this one's: this one's speed relative to
    /// `other`, above 1 when faster.
    pub fn speed_vs(&self, other: &Outcome) -> f64 {
        let mut v: Vec<f64> = other
            .rounds
            .iter()
            .zip(&self.rounds)
            .map(|(o, s)| o / s)
            .collect();
        median(&mut v)
    }
}

/// How long an interleaved comparison runs.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Rounds (each runs every entry once).
    pub rounds: usize,
    /// Target time of one entry within one round.
    pub slice: Duration,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            rounds: 15,
            slice: Duration::from_millis(40),
        }
    }
}

fn time_iters(run: &mut dyn FnMut(), iters: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        run();
    }
    start.elapsed().as_secs_f64()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the entries interleaved per `plan`; the first entry is the baseline.
pub fn interleaved(plan: Plan, entries: &mut [Entry<'_>]) -> Vec<Outcome> {
    // Calibrate: iterations that fill one slice, from one warm-up iteration and a short run.
    let iters: Vec<u64> = entries
        .iter_mut()
        .map(|e| {
            let once = time_iters(&mut e.run, 1).max(1e-9);
            let probe = ((plan.slice.as_secs_f64() / 10.0 / once) as u64).max(1);
            let each = time_iters(&mut e.run, probe) / probe as f64;
            ((plan.slice.as_secs_f64() / each.max(1e-9)) as u64).max(1)
        })
        .collect();
    let mut per_iter = vec![Vec::with_capacity(plan.rounds); entries.len()];
    for _round in 0..plan.rounds {
        for (i, e) in entries.iter_mut().enumerate() {
            per_iter[i].push(time_iters(&mut e.run, iters[i]) / iters[i] as f64);
        }
    }
    let baseline = per_iter[0].clone();
    entries
        .iter()
        .zip(per_iter)
        .map(|(e, times)| {
            let mut speeds: Vec<f64> = baseline.iter().zip(&times).map(|(b, t)| b / t).collect();
            Outcome {
                name: e.name.clone(),
                secs: median(&mut times.clone()),
                speed: median(&mut speeds),
                rounds: times,
            }
        })
        .collect()
}

/// A duration in seconds, printed with a unit that suits it.
pub fn pretty(secs: f64) -> String {
    if secs >= 1.0 {
        format!("{secs:.3} s")
    } else if secs >= 1e-3 {
        format!("{:.3} ms", secs * 1e3)
    } else if secs >= 1e-6 {
        format!("{:.3} µs", secs * 1e6)
    } else {
        format!("{:.1} ns", secs * 1e9)
    }
}

/// Whether a speed meets a goal, as printed: `met` or `MISSED by N%`.
pub fn verdict(speed: f64, goal: f64) -> String {
    if speed >= goal {
        format!("goal >= {goal:.2}x: met")
    } else {
        format!(
            "goal >= {goal:.2}x: MISSED by {:.1}%",
            (1.0 - speed / goal) * 100.0
        )
    }
}

/// Prints the outcomes as a table: time per iteration, the rate when `bytes` (per iteration)
/// is given, and the speed relative to the first entry.
pub fn print(title: &str, outcomes: &[Outcome], bytes: Option<u64>) {
    println!("\n{title}");
    let base = outcomes.first().map_or("", |o| o.name.as_str());
    for o in outcomes {
        let rate = match bytes {
            Some(b) => format!("{:>10.1} MiB/s", b as f64 / o.secs / (1024.0 * 1024.0)),
            None => format!("{:>10.0} /s   ", 1.0 / o.secs),
        };
        println!(
            "  {:<34} {:>12}  {rate}  {:>6.3}x {base}",
            o.name,
            pretty(o.secs),
            o.speed
        );
    }
}

/// The outcome named `name`.
///
/// # Panics
/// If there is none.
pub fn find<'a>(outcomes: &'a [Outcome], name: &str) -> &'a Outcome {
    outcomes
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("no outcome named {name}"))
}

/// True when `PORT_BENCH_COMPARE_ONLY` is set (to anything but `0`): the bench skips its
/// criterion groups and runs only the interleaved comparisons, for quick runs such as the
/// `RUSTFLAGS` matrix in `benches/rustflags.sh`.
pub fn compare_only() -> bool {
    std::env::var("PORT_BENCH_COMPARE_ONLY").is_ok_and(|v| v != "0")
}

/// True when the bench binary was started to be listed, smoke-tested or profiled (`--list`,
/// `--test`, `--profile-time`) rather than to measure: the closing comparisons are skipped then.
pub fn skip_comparisons() -> bool {
    std::env::args().any(|a| a == "--list" || a == "--test" || a == "--profile-time")
}
