//! Fault specifications in netem's own vocabulary: `delay 100ms 75ms`, `loss 30%`,
//! `duplicate 30%`, `reorder 30% 50%`, `corrupt 30%`, plus this harness's `tamper 30%`
//! (with `after N` and `limit N`), `blackhole` (optionally `blackhole after 2s`) and
//! `direction to-server` or `direction to-client`, which limits every fault but the blackhole
//! to one direction, as netem on a single interface's egress does.
//!
//! The parser reads one line of space-separated tokens, as `tc qdisc ... netem` does, and
//! names the offending token and the form it expected on error.

use std::fmt;
use std::time::Duration;

use crate::record::Direction;

/// A probability with netem's optional correlation (both as fractions in `0.0..=1.0`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Chance {
    /// How often the fault applies.
    pub probability: f64,
    /// How much each draw leans on the previous one (netem's correlation).
    pub correlation: f64,
}

/// Tampering: flip TCP payload bytes and fix the TCP checksum, so TCP accepts the change.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tamper {
    /// How often an eligible segment is tampered with.
    pub chance: Chance,
    /// Segments carrying payload (both directions, counted from the start) left alone first.
    pub after: u64,
    /// At most this many segments are tampered with (`None`: no limit).
    pub limit: Option<u64>,
}

/// Everything the bridge does to packets. The default does nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Fixed delay added to every packet.
    pub delay: Duration,
    /// Uniform jitter: the delay is drawn from `delay ± jitter`.
    pub jitter: Duration,
    /// Packets dropped.
    pub loss: Chance,
    /// Packets sent twice.
    pub duplicate: Chance,
    /// Packets sent at once, skipping the delay (so they overtake the ones held back).
    pub reorder: Chance,
    /// Packets with one byte after the IP header flipped (TCP's checksum catches it).
    pub corrupt: Chance,
    /// Segments altered with a valid TCP checksum.
    pub tamper: Option<Tamper>,
    /// Every packet dropped from this moment after the bridge started.
    pub blackhole: Option<Duration>,
    /// The one direction the other faults apply to (`None`: both).
    pub direction: Option<Direction>,
}

/// A token that does not fit the vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The token (or `end of input`).
    pub token: String,
    /// What was expected there.
    pub expected: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad fault spec at {:?}: expected {}",
            self.token, self.expected
        )
    }
}

impl std::error::Error for ParseError {}

fn error(token: Option<&str>, expected: &str) -> ParseError {
    ParseError {
        token: token.unwrap_or("end of input").to_owned(),
        expected: expected.to_owned(),
    }
}

/// Parses `100ms`, `1.5s`, `250us` (netem's units).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        return None;
    };
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value * scale))
}

/// Parses `30%` (or `30.5%`) into a fraction.
pub fn parse_percent(text: &str) -> Option<f64> {
    let value: f64 = text.strip_suffix('%')?.parse().ok()?;
    (0.0..=100.0).contains(&value).then_some(value / 100.0)
}

fn is_percent(token: Option<&&str>) -> bool {
    token.is_some_and(|t| parse_percent(t).is_some())
}

fn chance<'a, I: Iterator<Item = &'a str>>(
    tokens: &mut std::iter::Peekable<I>,
    what: &str,
) -> Result<Chance, ParseError> {
    let form = format!("a percentage after `{what}`, e.g. `{what} 30%` or `{what} 30% 25%`");
    let token = tokens.next();
    let probability = token.and_then(parse_percent).ok_or(error(token, &form))?;
    let correlation = if is_percent(tokens.peek()) {
        tokens.next().and_then(parse_percent).unwrap_or(0.0)
    } else {
        0.0
    };
    Ok(Chance {
        probability,
        correlation,
    })
}

fn count<'a, I: Iterator<Item = &'a str>>(tokens: &mut I, form: &str) -> Result<u64, ParseError> {
    let token = tokens.next();
    token.and_then(|t| t.parse().ok()).ok_or(error(token, form))
}

impl Faults {
    /// Parses a spec such as `delay 125ms reorder 30% 50%`. An empty spec is no fault.
    pub fn parse(spec: &str) -> Result<Faults, ParseError> {
        let mut faults = Faults::default();
        let mut tokens = spec.split_whitespace().peekable();
        while let Some(word) = tokens.next() {
            match word {
                "delay" => {
                    let form = "a duration after `delay`, e.g. `delay 100ms` or `delay 100ms 75ms`";
                    let token = tokens.next();
                    faults.delay = token.and_then(parse_duration).ok_or(error(token, form))?;
                    if let Some(jitter) = tokens.peek().and_then(|t| parse_duration(t)) {
                        tokens.next();
                        faults.jitter = jitter.min(faults.delay);
                    }
                    // netem accepts a correlation after the jitter; it is read and ignored.
                    if is_percent(tokens.peek()) {
                        tokens.next();
                    }
                }
                "loss" => faults.loss = chance(&mut tokens, "loss")?,
                "duplicate" => faults.duplicate = chance(&mut tokens, "duplicate")?,
                "reorder" => faults.reorder = chance(&mut tokens, "reorder")?,
                "corrupt" => faults.corrupt = chance(&mut tokens, "corrupt")?,
                "tamper" => {
                    let mut tamper = Tamper {
                        chance: chance(&mut tokens, "tamper")?,
                        ..Tamper::default()
                    };
                    loop {
                        match tokens.peek().copied() {
                            Some("after") => {
                                tokens.next();
                                tamper.after =
                                    count(&mut tokens, "a segment count, e.g. `after 8`")?;
                            }
                            Some("limit") => {
                                tokens.next();
                                tamper.limit =
                                    Some(count(&mut tokens, "a segment count, e.g. `limit 1`")?);
                            }
                            _ => break,
                        }
                    }
                    faults.tamper = Some(tamper);
                }
                "blackhole" => {
                    faults.blackhole = Some(Duration::ZERO);
                    if tokens.peek() == Some(&"after") {
                        tokens.next();
                        let token = tokens.next();
                        let form = "a duration after `blackhole after`, e.g. `blackhole after 2s`";
                        faults.blackhole =
                            Some(token.and_then(parse_duration).ok_or(error(token, form))?);
                    }
                }
                "direction" => {
                    let token = tokens.next();
                    faults.direction = Some(match token {
                        Some("to-server") => Direction::ToServer,
                        Some("to-client") => Direction::ToClient,
                        _ => {
                            return Err(error(
                                token,
                                "`direction to-server` or `direction to-client`",
                            ));
                        }
                    });
                }
                other => {
                    return Err(error(
                        Some(other),
                        "one of delay, loss, duplicate, reorder, corrupt, tamper, blackhole, direction",
                    ));
                }
            }
        }
        if faults.reorder.probability > 0.0 && faults.delay.is_zero() {
            return Err(error(
                Some("reorder"),
                "a `delay` as well (reordered packets skip the delay), e.g. `delay 125ms reorder 30% 50%`",
            ));
        }
        Ok(faults)
    }

    /// True when the spec does nothing to any packet.
    pub fn is_clean(&self) -> bool {
        *self == Faults::default()
    }
}

fn chance_words(parts: &mut Vec<String>, word: &str, c: Chance) {
    if c.probability > 0.0 {
        parts.push(format!("{word} {}%", c.probability * 100.0));
        if c.correlation > 0.0 {
            parts.push(format!("{}%", c.correlation * 100.0));
        }
    }
}

impl fmt::Display for Faults {
    /// The spec in the vocabulary [`Faults::parse`] reads (`none` when clean).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return f.write_str("none");
        }
        let mut parts = Vec::new();
        if !self.delay.is_zero() {
            parts.push(format!("delay {}ms", self.delay.as_millis()));
            if !self.jitter.is_zero() {
                parts.push(format!("{}ms", self.jitter.as_millis()));
            }
        }
        chance_words(&mut parts, "loss", self.loss);
        chance_words(&mut parts, "duplicate", self.duplicate);
        chance_words(&mut parts, "reorder", self.reorder);
        chance_words(&mut parts, "corrupt", self.corrupt);
        if let Some(t) = self.tamper {
            chance_words(&mut parts, "tamper", t.chance);
            if t.after > 0 {
                parts.push(format!("after {}", t.after));
            }
            if let Some(limit) = t.limit {
                parts.push(format!("limit {limit}"));
            }
        }
        match self.blackhole {
            Some(d) if d.is_zero() => parts.push("blackhole".to_owned()),
            Some(d) => parts.push(format!("blackhole after {}ms", d.as_millis())),
            None => {}
        }
        match self.direction {
            Some(Direction::ToServer) => parts.push("direction to-server".to_owned()),
            Some(Direction::ToClient) => parts.push("direction to-client".to_owned()),
            None => {}
        }
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_notebooks_specs_parse() {
        let f = Faults::parse("delay 100ms 75ms").unwrap();
        assert_eq!((f.delay, f.jitter), (ms(100), ms(75)));
        assert_eq!(Faults::parse("loss 30%").unwrap().loss.probability, 0.3);
        assert_eq!(
            Faults::parse("duplicate 30%")
                .unwrap()
                .duplicate
                .probability,
            0.3
        );
        let f = Faults::parse("delay 125ms reorder 30% 50%").unwrap();
        assert_eq!(f.delay, ms(125));
        assert_eq!(
            f.reorder,
            Chance {
                probability: 0.3,
                correlation: 0.5
            }
        );
        assert_eq!(
            Faults::parse("corrupt 30%").unwrap().corrupt.probability,
            0.3
        );
        assert!(Faults::parse("").unwrap().is_clean());
    }

    #[test]
    fn tamper_and_blackhole_parse() {
        let f = Faults::parse("tamper 100% after 8 limit 1 blackhole after 2s").unwrap();
        let t = f.tamper.unwrap();
        assert_eq!((t.chance.probability, t.after, t.limit), (1.0, 8, Some(1)));
        assert_eq!(f.blackhole, Some(Duration::from_secs(2)));
        assert_eq!(
            Faults::parse("blackhole").unwrap().blackhole,
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn errors_name_the_token_and_the_form() {
        let e = Faults::parse("loss thirty").unwrap_err();
        assert_eq!(e.token, "thirty");
        assert!(e.to_string().contains("`loss 30%`"), "{e}");
        let e = Faults::parse("delay").unwrap_err();
        assert_eq!(e.token, "end of input");
        assert!(e.expected.contains("delay 100ms"));
        let e = Faults::parse("jitter 5ms").unwrap_err();
        assert_eq!(e.token, "jitter");
        assert!(Faults::parse("loss 130%").is_err());
        assert!(
            Faults::parse("reorder 30%")
                .unwrap_err()
                .expected
                .contains("delay")
        );
        assert!(Faults::parse("tamper 5% after x").is_err());
        let e = Faults::parse("direction up").unwrap_err();
        assert!(e.expected.contains("to-server"), "{e}");
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            "delay 100ms 75ms",
            "loss 30%",
            "delay 125ms reorder 30% 50%",
            "corrupt 30% tamper 100% after 8 limit 1",
            "blackhole after 1500ms",
            "duplicate 30% blackhole",
            "loss 30% direction to-server",
        ] {
            let f = Faults::parse(spec).unwrap();
            assert_eq!(f.to_string(), spec);
            assert_eq!(Faults::parse(&f.to_string()).unwrap(), f);
        }
        assert_eq!(Faults::default().to_string(), "none");
    }
}
