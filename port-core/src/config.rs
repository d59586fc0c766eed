//! Protocol configuration: every tunable knob of PORT, validated.
//!
//! A [`Config`] can only be obtained in a validated state: through
//! [`Config::default`], [`ConfigBuilder::build`] or [`Config::from_vars`]. Each
//! knob can be set from a `PORT_*` variable; the table of variables, defaults
//! and accepted ranges is given on the getters of [`Config`]. This crate never
//! reads the process environment: a program passes it in
//! (`Config::from_vars(std::env::vars_os())`), a library passes whatever it
//! holds.
//!
//! Durations given as text are numbers of seconds: decimal digits with an
//! optional fractional part (`32`, `0.5`, `1.25`). Integers are decimal digits
//! only. Surrounding whitespace is ignored.

use std::error::Error;
use std::ffi::OsStr;
use std::fmt;
use std::time::Duration;

/// The protocol's hard cap on the padding of one message, in bytes.
///
/// [`Padding`] configurations whose maximum exceeds this are rejected.
pub const MAX_PADDING: usize = 8192;

/// Smallest accepted value of [`Config::max_frame_payload`], in bytes.
pub const MIN_FRAME_PAYLOAD: usize = 256;

/// Largest accepted value of [`Config::max_frame_payload`], in bytes.
pub const MAX_FRAME_PAYLOAD: usize = 65535;

/// Upper limit of the handshake timeout, of `max_timeout` and of `drain_max`.
const HOUR: Duration = Duration::from_secs(3600);
/// Upper limit of `max_next_in` and `replay_window`.
const DAY: Duration = Duration::from_secs(86_400);
/// The longest a message may wait for company in a shaped record.
const MAX_RECORD_LINGER: Duration = Duration::from_secs(1);
/// Lower limit of `replay_window`.
const MIN_REPLAY_WINDOW: Duration = Duration::from_secs(1);
/// Upper limit of `max_retries`.
const MAX_RETRIES_LIMIT: u32 = 1000;
/// Upper limit of `replay_capacity`.
const MAX_REPLAY_CAPACITY: usize = 16_777_216;

/// How the padding length of each message is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Padding {
    /// Each message's padding length is drawn uniformly from `0..=max` bytes.
    Uniform {
        /// Largest padding length, in bytes (at most [`MAX_PADDING`] in a
        /// valid [`Config`]).
        max: u16,
    },
}

impl Padding {
    /// No padding at all: `Uniform { max: 0 }`.
    pub const NONE: Padding = Padding::Uniform { max: 0 };

    /// Largest padding length this configuration can produce, in bytes.
    pub fn max(&self) -> usize {
        match *self {
            Padding::Uniform { max } => usize::from(max),
        }
    }

    /// Maps a uniformly random `u32` to a padding length in `0..=max`.
    ///
    /// Uses Lemire's multiply-shift reduction,
    /// `(r * (max + 1)) >> 32`: the 2^32 possible values of `r` are split
    /// into `max + 1` contiguous runs whose lengths differ by at most one, so
    /// each length has probability within 2^-32 of `1 / (max + 1)`, a bias
    /// far below anything observable for `max` at most [`MAX_PADDING`]. Unlike
    /// `r % (max + 1)` it needs no division, and unlike rejection sampling it
    /// consumes exactly one random word and takes the same time for every
    /// input. `r` should come from a cryptographically secure generator.
    pub fn draw(&self, r: u32) -> usize {
        match *self {
            Padding::Uniform { max } => crate::machinery::uniform_int(r, 0, max.into()) as usize,
        }
    }
}

/// Why a configuration was rejected.
///
/// Every variant names the setting as `PORT_VARIABLE (builder_field)`, the
/// offending value, and what would have been accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A single value is malformed or out of range.
    Invalid {
        /// The setting, as `PORT_VARIABLE (builder_field)`.
        name: String,
        /// The offending value: the text as given for a variable, or the
        /// formatted value (durations in seconds, e.g. `0.5s`) for a builder
        /// setting.
        value: String,
        /// A description of the accepted form and range.
        expected: String,
    },
    /// Two values that must be ordered are not.
    Order {
        /// The setting that must be the smaller one, as
        /// `PORT_VARIABLE (builder_field)`.
        lower: String,
        /// Its value (durations in seconds, e.g. `40s`).
        lower_value: String,
        /// The setting that must be the larger one, as
        /// `PORT_VARIABLE (builder_field)`.
        upper: String,
        /// Its value (durations in seconds, e.g. `8s`).
        upper_value: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid {
                name,
                value,
                expected,
            } => write!(f, "{name} = {value:?} is invalid: expected {expected}"),
            ConfigError::Order {
                lower,
                lower_value,
                upper,
                upper_value,
            } => write!(
                f,
                "{lower} = {lower_value} must not exceed {upper} = {upper_value}"
            ),
        }
    }
}

impl Error for ConfigError {}

/// One configurable knob, tying its variable name to its builder field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setting {
    HandshakeTimeout,
    MinTimeout,
    DefaultTimeout,
    MaxTimeout,
    MinNextIn,
    MaxNextIn,
    MaxRetries,
    Padding,
    DrainMin,
    DrainMax,
    ReplayWindow,
    ReplayCapacity,
    MaxFramePayload,
    MaxMessage,
    RecordLinger,
}

impl Setting {
    /// Every setting, in the order variables are applied and checked.
    /// `MaxFramePayload` precedes `MaxMessage`, whose range depends on it.
    const ALL: [Setting; 15] = [
        Setting::HandshakeTimeout,
        Setting::MinTimeout,
        Setting::DefaultTimeout,
        Setting::MaxTimeout,
        Setting::MinNextIn,
        Setting::MaxNextIn,
        Setting::MaxRetries,
        Setting::Padding,
        Setting::DrainMin,
        Setting::DrainMax,
        Setting::ReplayWindow,
        Setting::ReplayCapacity,
        Setting::MaxFramePayload,
        Setting::MaxMessage,
        Setting::RecordLinger,
    ];

    /// The environment variable.
    fn var(self) -> &'static str {
        match self {
            Setting::HandshakeTimeout => "PORT_TIMEOUT",
            Setting::MinTimeout => "PORT_MIN_TIMEOUT",
            Setting::DefaultTimeout => "PORT_DEFAULT_TIMEOUT",
            Setting::MaxTimeout => "PORT_MAX_TIMEOUT",
            Setting::MinNextIn => "PORT_MIN_NEXT_IN",
            Setting::MaxNextIn => "PORT_MAX_NEXT_IN",
            Setting::MaxRetries => "PORT_MAX_RETRIES",
            Setting::Padding => "PORT_TAIL_LENGTH",
            Setting::DrainMin => "PORT_DRAIN_MIN",
            Setting::DrainMax => "PORT_DRAIN_MAX",
            Setting::ReplayWindow => "PORT_REPLAY_WINDOW",
            Setting::ReplayCapacity => "PORT_REPLAY_CAPACITY",
            Setting::MaxFramePayload => "PORT_MAX_FRAME_PAYLOAD",
            Setting::MaxMessage => "PORT_MAX_MESSAGE",
            Setting::RecordLinger => "PORT_RECORD_LINGER",
        }
    }

    /// The builder field (and getter) name.
    fn field(self) -> &'static str {
        match self {
            Setting::HandshakeTimeout => "handshake_timeout",
            Setting::MinTimeout => "min_timeout",
            Setting::DefaultTimeout => "default_timeout",
            Setting::MaxTimeout => "max_timeout",
            Setting::MinNextIn => "min_next_in",
            Setting::MaxNextIn => "max_next_in",
            Setting::MaxRetries => "max_retries",
            Setting::Padding => "padding",
            Setting::DrainMin => "drain_min",
            Setting::DrainMax => "drain_max",
            Setting::ReplayWindow => "replay_window",
            Setting::ReplayCapacity => "replay_capacity",
            Setting::MaxFramePayload => "max_frame_payload",
            Setting::MaxMessage => "max_message",
            Setting::RecordLinger => "record_linger",
        }
    }

    /// The name used in error messages: `PORT_VARIABLE (builder_field)`.
    fn label(self) -> String {
        format!("{} ({})", self.var(), self.field())
    }

    /// The setting read from the variable `name`, if it is one.
    fn from_var(name: &str) -> Option<Setting> {
        Setting::ALL.into_iter().find(|s| s.var() == name)
    }

    /// The accepted form and range, for error messages.
    fn expected(self, max_frame_payload: usize) -> String {
        let text = match self {
            Setting::HandshakeTimeout => {
                "a number of seconds greater than 0 and at most 3600 (e.g. 32 or 0.5)"
            }
            Setting::MinTimeout => "a number of seconds greater than 0 (e.g. 4 or 0.5)",
            Setting::DefaultTimeout => "a number of seconds (e.g. 8 or 0.5)",
            Setting::MaxTimeout => "a number of seconds at most 3600 (e.g. 32 or 0.5)",
            Setting::MinNextIn => "a number of seconds greater than 0 (e.g. 32 or 0.5)",
            Setting::MaxNextIn => "a number of seconds at most 86400 (e.g. 64 or 0.5)",
            Setting::MaxRetries => "an integer in 1..=1000",
            Setting::Padding => "an integer number of bytes in 0..=8192",
            Setting::DrainMin => "a number of seconds greater than 0 (e.g. 30 or 0.5)",
            Setting::DrainMax => "a number of seconds at most 3600 (e.g. 90 or 0.5)",
            Setting::ReplayWindow => "a number of seconds in 1..=86400 (e.g. 60 or 1.5)",
            Setting::ReplayCapacity => "an integer in 1..=16777216",
            Setting::MaxFramePayload => "an integer in 256..=65535",
            Setting::RecordLinger => "a number of seconds at most 1 (e.g. 0 or 0.005)",
            Setting::MaxMessage => {
                return format!(
                    "an integer in {max_frame_payload}..=4294967295 (at least max_frame_payload)"
                );
            }
        };
        text.to_owned()
    }
}

/// Formats a duration as seconds, e.g. `40s`, `0.5s`, `1.25s`.
fn fmt_secs(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        format!("{secs}s")
    } else {
        let frac = format!("{nanos:09}");
        format!("{secs}.{}s", frac.trim_end_matches('0'))
    }
}

/// Whether `s` is a non-empty run of ASCII decimal digits.
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses `[0-9]+(\.[0-9]+)?` as a number of seconds.
fn parse_secs(s: &str) -> Option<Duration> {
    let well_formed = match s.split_once('.') {
        Some((int, frac)) => is_digits(int) && is_digits(frac),
        None => is_digits(s),
    };
    if !well_formed {
        return None;
    }
    let secs: f64 = s.parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

/// Parses `[0-9]+` as an unsigned integer.
fn parse_uint(s: &str) -> Option<u64> {
    if is_digits(s) { s.parse().ok() } else { None }
}

/// All protocol knobs, validated.
///
/// Obtain one with [`Config::default`], [`Config::builder`],
/// [`Config::from_vars`]; every constructor checks
/// the ranges and orderings documented on the getters, so a `Config` is
/// always valid.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    handshake_timeout: Duration,
    min_timeout: Duration,
    default_timeout: Duration,
    max_timeout: Duration,
    min_next_in: Duration,
    max_next_in: Duration,
    max_retries: u32,
    padding: Padding,
    drain_min: Duration,
    drain_max: Duration,
    replay_window: Duration,
    replay_capacity: usize,
    max_frame_payload: usize,
    max_message: usize,
    record_linger: Duration,
}

/// The default configuration; it satisfies every rule.
const DEFAULTS: Config = Config {
    handshake_timeout: Duration::from_secs(32),
    min_timeout: Duration::from_secs(4),
    default_timeout: Duration::from_secs(8),
    max_timeout: Duration::from_secs(32),
    min_next_in: Duration::from_secs(32),
    max_next_in: Duration::from_secs(64),
    max_retries: 5,
    padding: Padding::Uniform { max: 512 },
    drain_min: Duration::from_secs(30),
    drain_max: Duration::from_secs(90),
    replay_window: Duration::from_secs(60),
    replay_capacity: 65_536,
    max_frame_payload: 16_384,
    max_message: 16_777_216,
    record_linger: Duration::ZERO,
};

impl Default for Config {
    /// The default value of every knob (see the getters).
    fn default() -> Self {
        DEFAULTS
    }
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// A builder starting from a copy of this configuration.
    pub fn to_builder(&self) -> ConfigBuilder {
        ConfigBuilder { cfg: self.clone() }
    }

    /// Builds a configuration from `(name, value)` pairs such as environment
    /// variables.
    ///
    /// Starts from the defaults and applies every recognised `PORT_*`
    /// variable of `vars` (see the getters for names and accepted values),
    /// then validates the result. Names that are not recognised are ignored,
    /// even those starting with `PORT_`, since other programs may use the
    /// prefix; so are names that are not valid UTF-8. Values are trimmed of
    /// surrounding whitespace. If a name occurs more than once, the last
    /// occurrence wins.
    ///
    /// This function only looks at `vars`; it does not read the environment.
    /// A program hands it the environment with
    /// `Config::from_vars(std::env::vars_os())`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] if a value is malformed, out of range or not
    /// valid UTF-8 (naming the variable and showing the value as given), or
    /// [`ConfigError::Order`] if two settings are in the wrong order.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut raw: [Option<String>; Setting::ALL.len()] = Default::default();
        for (name, value) in vars {
            let Some(setting) = name.as_ref().to_str().and_then(Setting::from_var) else {
                continue;
            };
            let value = value.as_ref();
            let Some(text) = value.to_str() else {
                return Err(ConfigError::Invalid {
                    name: setting.label(),
                    value: value.to_string_lossy().into_owned(),
                    expected: "valid UTF-8 text".to_owned(),
                });
            };
            if let Some(slot) = raw.get_mut(setting as usize) {
                *slot = Some(text.to_owned());
            }
        }
        let mut builder = ConfigBuilder::default();
        for (setting, value) in Setting::ALL.into_iter().zip(raw.iter()) {
            if let Some(value) = value {
                builder = builder.apply(setting, value)?;
            }
        }
        validate(builder.cfg, &raw)
    }

    /// The name of every `PORT_*` variable [`Config::from_vars`] recognises, in the order
    /// they are applied; an application reading settings from elsewhere (a file, say) can
    /// tell a misspelt name from a real one.
    pub fn variables() -> impl Iterator<Item = &'static str> {
        Setting::ALL.into_iter().map(Setting::var)
    }

    /// Timeout of the whole handshake. Variable `PORT_TIMEOUT`, default 32 s;
    /// must be greater than 0 and at most 3600 s.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Smallest per-attempt timeout. Variable `PORT_MIN_TIMEOUT`, default
    /// 4 s; must be greater than 0 and at most `default_timeout`.
    pub fn min_timeout(&self) -> Duration {
        self.min_timeout
    }

    /// Initial per-attempt timeout. Variable `PORT_DEFAULT_TIMEOUT`, default
    /// 8 s; must lie in `min_timeout..=max_timeout`.
    pub fn default_timeout(&self) -> Duration {
        self.default_timeout
    }

    /// Largest per-attempt timeout. Variable `PORT_MAX_TIMEOUT`, default
    /// 32 s; must be at least `default_timeout` and at most 3600 s.
    pub fn max_timeout(&self) -> Duration {
        self.max_timeout
    }

    /// Smallest delay before the next sign of life is due. Variable
    /// `PORT_MIN_NEXT_IN`, default 32 s; must be greater than 0 and at most
    /// `max_next_in`.
    pub fn min_next_in(&self) -> Duration {
        self.min_next_in
    }

    /// Largest delay before the next sign of life is due. Variable
    /// `PORT_MAX_NEXT_IN`, default 64 s; must be at least `min_next_in` and
    /// at most 86400 s, so it always fits in a `u32` number of milliseconds.
    pub fn max_next_in(&self) -> Duration {
        self.max_next_in
    }

    /// Number of retries before a silent peer is given up on. Variable
    /// `PORT_MAX_RETRIES`, default 5; must lie in `1..=1000`.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// Padding added to each message. Variable `PORT_TAIL_LENGTH` (an integer
    /// number of bytes, giving [`Padding::Uniform`] with that maximum),
    /// default `Uniform { max: 512 }`; the maximum must be at most
    /// [`MAX_PADDING`].
    pub fn padding(&self) -> Padding {
        self.padding
    }

    /// Lower end of the range of the random deadline at which a server closes
    /// a connection whose first bytes were not a valid INIT. Variable
    /// `PORT_DRAIN_MIN`, default 30 s; must be greater than 0 and at most
    /// `drain_max`.
    pub fn drain_min(&self) -> Duration {
        self.drain_min
    }

    /// Upper end of the range of the random deadline at which a server closes
    /// a connection whose first bytes were not a valid INIT. Variable
    /// `PORT_DRAIN_MAX`, default 90 s; must be at least `drain_min` and at
    /// most 3600 s.
    pub fn drain_max(&self) -> Duration {
        self.drain_max
    }

    /// INIT timestamps further than this from the server's clock are
    /// rejected. Variable `PORT_REPLAY_WINDOW`, default 60 s; must lie in
    /// 1 s ..= 86400 s.
    pub fn replay_window(&self) -> Duration {
        self.replay_window
    }

    /// Number of recently seen INITs remembered to detect replays. Variable
    /// `PORT_REPLAY_CAPACITY`, default 65536; must lie in `1..=16777216`.
    pub fn replay_capacity(&self) -> usize {
        self.replay_capacity
    }

    /// Largest payload of one frame, in bytes. Variable
    /// `PORT_MAX_FRAME_PAYLOAD`, default 16384; must lie in
    /// [`MIN_FRAME_PAYLOAD`]`..=`[`MAX_FRAME_PAYLOAD`].
    pub fn max_frame_payload(&self) -> usize {
        self.max_frame_payload
    }

    /// Largest message, in bytes. Variable `PORT_MAX_MESSAGE`, default
    /// 16 MiB (16777216); must lie in `max_frame_payload..=u32::MAX`.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// How long a message may wait, on a connection with shaped lengths
    /// ([`Lengths::Shaped`](crate::Lengths::Shaped)), for more to share its record before the
    /// record goes out part padding. Variable `PORT_RECORD_LINGER`, default 0 (a record goes
    /// out as soon as it is asked for); must be at most 1 s. Other connections ignore it.
    pub fn record_linger(&self) -> Duration {
        self.record_linger
    }

    /// Upper bound on how long after the last sign of life a silent peer is
    /// detected: `max_next_in + max_retries × max_timeout`.
    ///
    /// Saturates at [`Duration::MAX`], which no valid configuration reaches.
    pub fn max_keepalive_detection(&self) -> Duration {
        self.max_timeout
            .saturating_mul(self.max_retries)
            .saturating_add(self.max_next_in)
    }
}

/// Checks every rule, preferring the text in `raw` (indexed by [`Setting`])
/// over the formatted value when reporting a value that came from a variable.
fn validate(cfg: Config, raw: &[Option<String>]) -> Result<Config, ConfigError> {
    let invalid = |setting: Setting, formatted: String| ConfigError::Invalid {
        name: setting.label(),
        value: raw
            .get(setting as usize)
            .cloned()
            .flatten()
            .unwrap_or(formatted),
        expected: setting.expected(cfg.max_frame_payload),
    };
    let duration = |setting: Setting, d: Duration, positive: bool, limit: Option<Duration>| {
        let too_small = positive && d.is_zero();
        let too_large = limit.is_some_and(|limit| d > limit);
        if too_small || too_large {
            Err(invalid(setting, fmt_secs(d)))
        } else {
            Ok(())
        }
    };

    duration(
        Setting::HandshakeTimeout,
        cfg.handshake_timeout,
        true,
        Some(HOUR),
    )?;
    duration(Setting::MinTimeout, cfg.min_timeout, true, None)?;
    duration(Setting::MaxTimeout, cfg.max_timeout, false, Some(HOUR))?;
    duration(Setting::MinNextIn, cfg.min_next_in, true, None)?;
    duration(Setting::MaxNextIn, cfg.max_next_in, false, Some(DAY))?;
    if !(1..=MAX_RETRIES_LIMIT).contains(&cfg.max_retries) {
        return Err(invalid(Setting::MaxRetries, cfg.max_retries.to_string()));
    }
    if cfg.padding.max() > MAX_PADDING {
        return Err(invalid(Setting::Padding, cfg.padding.max().to_string()));
    }
    duration(Setting::DrainMin, cfg.drain_min, true, None)?;
    duration(Setting::DrainMax, cfg.drain_max, false, Some(HOUR))?;
    if cfg.replay_window < MIN_REPLAY_WINDOW || cfg.replay_window > DAY {
        return Err(invalid(Setting::ReplayWindow, fmt_secs(cfg.replay_window)));
    }
    if !(1..=MAX_REPLAY_CAPACITY).contains(&cfg.replay_capacity) {
        return Err(invalid(
            Setting::ReplayCapacity,
            cfg.replay_capacity.to_string(),
        ));
    }
    if !(MIN_FRAME_PAYLOAD..=MAX_FRAME_PAYLOAD).contains(&cfg.max_frame_payload) {
        return Err(invalid(
            Setting::MaxFramePayload,
            cfg.max_frame_payload.to_string(),
        ));
    }
    if u32::try_from(cfg.max_message).is_err() {
        return Err(invalid(Setting::MaxMessage, cfg.max_message.to_string()));
    }
    duration(
        Setting::RecordLinger,
        cfg.record_linger,
        false,
        Some(MAX_RECORD_LINGER),
    )?;

    order(
        Setting::MinTimeout,
        cfg.min_timeout,
        Setting::DefaultTimeout,
        cfg.default_timeout,
        fmt_secs,
    )?;
    order(
        Setting::DefaultTimeout,
        cfg.default_timeout,
        Setting::MaxTimeout,
        cfg.max_timeout,
        fmt_secs,
    )?;
    order(
        Setting::MinNextIn,
        cfg.min_next_in,
        Setting::MaxNextIn,
        cfg.max_next_in,
        fmt_secs,
    )?;
    order(
        Setting::DrainMin,
        cfg.drain_min,
        Setting::DrainMax,
        cfg.drain_max,
        fmt_secs,
    )?;
    order(
        Setting::MaxFramePayload,
        cfg.max_frame_payload,
        Setting::MaxMessage,
        cfg.max_message,
        |n| n.to_string(),
    )?;
    Ok(cfg)
}

/// Checks `lower_value <= upper_value`.
fn order<T: PartialOrd + Copy>(
    lower: Setting,
    lower_value: T,
    upper: Setting,
    upper_value: T,
    format: impl Fn(T) -> String,
) -> Result<(), ConfigError> {
    if lower_value <= upper_value {
        Ok(())
    } else {
        Err(ConfigError::Order {
            lower: lower.label(),
            lower_value: format(lower_value),
            upper: upper.label(),
            upper_value: format(upper_value),
        })
    }
}

/// Builder for [`Config`]; nothing is checked until [`ConfigBuilder::build`].
///
/// Obtained with [`Config::builder`] (defaults) or [`Config::to_builder`].
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigBuilder {
    cfg: Config,
}

impl Default for ConfigBuilder {
    /// A builder holding the default configuration.
    fn default() -> Self {
        ConfigBuilder { cfg: DEFAULTS }
    }
}

impl ConfigBuilder {
    /// Sets [`Config::handshake_timeout`].
    pub fn handshake_timeout(mut self, value: Duration) -> Self {
        self.cfg.handshake_timeout = value;
        self
    }

    /// Sets [`Config::min_timeout`].
    pub fn min_timeout(mut self, value: Duration) -> Self {
        self.cfg.min_timeout = value;
        self
    }

    /// Sets [`Config::default_timeout`].
    pub fn default_timeout(mut self, value: Duration) -> Self {
        self.cfg.default_timeout = value;
        self
    }

    /// Sets [`Config::max_timeout`].
    pub fn max_timeout(mut self, value: Duration) -> Self {
        self.cfg.max_timeout = value;
        self
    }

    /// Sets [`Config::min_next_in`].
    pub fn min_next_in(mut self, value: Duration) -> Self {
        self.cfg.min_next_in = value;
        self
    }

    /// Sets [`Config::max_next_in`].
    pub fn max_next_in(mut self, value: Duration) -> Self {
        self.cfg.max_next_in = value;
        self
    }

    /// Sets [`Config::max_retries`].
    pub fn max_retries(mut self, value: u32) -> Self {
        self.cfg.max_retries = value;
        self
    }

    /// Sets [`Config::padding`].
    pub fn padding(mut self, value: Padding) -> Self {
        self.cfg.padding = value;
        self
    }

    /// Sets [`Config::padding`] to `Padding::Uniform { max }`.
    pub fn tail_length(self, max: u16) -> Self {
        self.padding(Padding::Uniform { max })
    }

    /// Sets [`Config::drain_min`].
    pub fn drain_min(mut self, value: Duration) -> Self {
        self.cfg.drain_min = value;
        self
    }

    /// Sets [`Config::drain_max`].
    pub fn drain_max(mut self, value: Duration) -> Self {
        self.cfg.drain_max = value;
        self
    }

    /// Sets [`Config::replay_window`].
    pub fn replay_window(mut self, value: Duration) -> Self {
        self.cfg.replay_window = value;
        self
    }

    /// Sets [`Config::replay_capacity`].
    pub fn replay_capacity(mut self, value: usize) -> Self {
        self.cfg.replay_capacity = value;
        self
    }

    /// Sets [`Config::max_frame_payload`].
    pub fn max_frame_payload(mut self, value: usize) -> Self {
        self.cfg.max_frame_payload = value;
        self
    }

    /// Sets [`Config::max_message`].
    pub fn max_message(mut self, value: usize) -> Self {
        self.cfg.max_message = value;
        self
    }

    /// Sets [`Config::record_linger`].
    pub fn record_linger(mut self, value: Duration) -> Self {
        self.cfg.record_linger = value;
        self
    }

    /// Validates every setting and returns the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] if a value is out of range, or
    /// [`ConfigError::Order`] if two settings are in the wrong order (see the
    /// getters of [`Config`] for the rules).
    pub fn build(self) -> Result<Config, ConfigError> {
        validate(self.cfg, &[])
    }

    /// Parses `raw` as the value of `setting` and stores it, unchecked
    /// except for what the field's type can hold.
    fn apply(self, setting: Setting, raw: &str) -> Result<Self, ConfigError> {
        let max_frame_payload = self.cfg.max_frame_payload;
        let bad = || ConfigError::Invalid {
            name: setting.label(),
            value: raw.to_owned(),
            expected: setting.expected(max_frame_payload),
        };
        let text = raw.trim();
        let secs = || parse_secs(text).ok_or_else(bad);
        let uint = || parse_uint(text).ok_or_else(bad);
        let size = || uint().and_then(|n| usize::try_from(n).map_err(|_| bad()));
        Ok(match setting {
            Setting::HandshakeTimeout => self.handshake_timeout(secs()?),
            Setting::MinTimeout => self.min_timeout(secs()?),
            Setting::DefaultTimeout => self.default_timeout(secs()?),
            Setting::MaxTimeout => self.max_timeout(secs()?),
            Setting::MinNextIn => self.min_next_in(secs()?),
            Setting::MaxNextIn => self.max_next_in(secs()?),
            Setting::MaxRetries => {
                let n = u32::try_from(uint()?).map_err(|_| bad())?;
                self.max_retries(n)
            }
            Setting::Padding => {
                let n = u16::try_from(uint()?).map_err(|_| bad())?;
                self.tail_length(n)
            }
            Setting::DrainMin => self.drain_min(secs()?),
            Setting::DrainMax => self.drain_max(secs()?),
            Setting::ReplayWindow => self.replay_window(secs()?),
            Setting::ReplayCapacity => self.replay_capacity(size()?),
            Setting::MaxFramePayload => self.max_frame_payload(size()?),
            Setting::MaxMessage => self.max_message(size()?),
            Setting::RecordLinger => self.record_linger(secs()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn ms(m: u64) -> Duration {
        Duration::from_millis(m)
    }

    /// Asserts `err` is `Invalid` and its message contains every fragment.
    fn assert_invalid(err: &ConfigError, fragments: &[&str]) {
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
        assert_message(err, fragments);
    }

    /// Asserts `err` is `Order` and its message contains every fragment.
    fn assert_order(err: &ConfigError, fragments: &[&str]) {
        assert!(matches!(err, ConfigError::Order { .. }), "{err:?}");
        assert_message(err, fragments);
    }

    fn assert_message(err: &ConfigError, fragments: &[&str]) {
        let text = err.to_string();
        for fragment in fragments {
            assert!(text.contains(fragment), "{text:?} lacks {fragment:?}");
        }
        assert!(!text.contains('\n'), "{text:?}");
        assert!(!text.ends_with('.'), "{text:?}");
    }

    fn from_one(name: &str, value: &str) -> Result<Config, ConfigError> {
        Config::from_vars([(name, value)])
    }

    #[test]
    fn every_listed_variable_is_recognised() {
        let names: Vec<_> = Config::variables().collect();
        assert_eq!(names.len(), Setting::ALL.len());
        assert!(names.contains(&"PORT_TAIL_LENGTH") && names.contains(&"PORT_TIMEOUT"));
        for name in names {
            // A recognised name with a malformed value is an error; an unknown one is ignored.
            assert!(
                Config::from_vars([(name, "not a value")]).is_err(),
                "{name}"
            );
        }
    }

    #[test]
    fn config_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Config>();
        check::<ConfigBuilder>();
        check::<ConfigError>();
    }

    #[test]
    fn defaults_match_table_and_are_valid() {
        let c = Config::default();
        assert_eq!(c.handshake_timeout(), secs(32));
        assert_eq!(c.min_timeout(), secs(4));
        assert_eq!(c.default_timeout(), secs(8));
        assert_eq!(c.max_timeout(), secs(32));
        assert_eq!(c.min_next_in(), secs(32));
        assert_eq!(c.max_next_in(), secs(64));
        assert_eq!(c.max_retries(), 5);
        assert_eq!(c.padding(), Padding::Uniform { max: 512 });
        assert_eq!(c.drain_min(), secs(30));
        assert_eq!(c.drain_max(), secs(90));
        assert_eq!(c.replay_window(), secs(60));
        assert_eq!(c.replay_capacity(), 65_536);
        assert_eq!(c.max_frame_payload(), 16_384);
        assert_eq!(c.max_message(), 16 * 1024 * 1024);
        assert_eq!(Config::builder().build(), Ok(c.clone()));
        assert_eq!(c.to_builder().build(), Ok(c.clone()));
        assert_eq!(Config::from_vars(Vec::<(String, String)>::new()), Ok(c));
    }

    #[test]
    fn builder_happy_path() {
        let c = Config::builder()
            .handshake_timeout(secs(10))
            .min_timeout(ms(500))
            .default_timeout(secs(2))
            .max_timeout(secs(3600))
            .min_next_in(secs(1))
            .max_next_in(secs(86_400))
            .max_retries(1000)
            .tail_length(8192)
            .drain_min(secs(1))
            .drain_max(secs(1))
            .replay_window(secs(1))
            .replay_capacity(1)
            .max_frame_payload(MAX_FRAME_PAYLOAD)
            .max_message(MAX_FRAME_PAYLOAD)
            .build()
            .expect("valid");
        assert_eq!(c.handshake_timeout(), secs(10));
        assert_eq!(c.min_timeout(), ms(500));
        assert_eq!(c.default_timeout(), secs(2));
        assert_eq!(c.max_timeout(), secs(3600));
        assert_eq!(c.min_next_in(), secs(1));
        assert_eq!(c.max_next_in(), secs(86_400));
        assert_eq!(c.max_retries(), 1000);
        assert_eq!(c.padding(), Padding::Uniform { max: 8192 });
        assert_eq!(c.padding().max(), MAX_PADDING);
        assert_eq!(c.drain_min(), secs(1));
        assert_eq!(c.drain_max(), secs(1));
        assert_eq!(c.replay_window(), secs(1));
        assert_eq!(c.replay_capacity(), 1);
        assert_eq!(c.max_frame_payload(), MAX_FRAME_PAYLOAD);
        assert_eq!(c.max_message(), MAX_FRAME_PAYLOAD);

        let tweaked = c
            .to_builder()
            .padding(Padding::NONE)
            .build()
            .expect("valid");
        assert_eq!(tweaked.padding(), Padding::NONE);
        assert_eq!(tweaked.max_retries(), 1000);

        let edges = Config::builder()
            .max_frame_payload(MIN_FRAME_PAYLOAD)
            .max_message(u32::MAX as usize)
            .replay_capacity(16_777_216)
            .replay_window(secs(86_400))
            .max_retries(1)
            .build()
            .expect("valid");
        assert_eq!(edges.max_message(), u32::MAX as usize);
        assert!(u32::try_from(edges.max_next_in().as_millis()).is_ok());
    }

    #[test]
    fn max_retries_bounds() {
        let err = Config::builder().max_retries(0).build().unwrap_err();
        assert_invalid(
            &err,
            &["PORT_MAX_RETRIES", "max_retries", "\"0\"", "1..=1000"],
        );
        assert_eq!(
            err.to_string(),
            "PORT_MAX_RETRIES (max_retries) = \"0\" is invalid: expected an integer in 1..=1000"
        );
        let err = Config::builder().max_retries(1001).build().unwrap_err();
        assert_invalid(&err, &["PORT_MAX_RETRIES", "\"1001\"", "1..=1000"]);
        let err = from_one("PORT_MAX_RETRIES", "0").unwrap_err();
        assert_invalid(&err, &["PORT_MAX_RETRIES", "\"0\"", "1..=1000"]);
        let err = from_one("PORT_MAX_RETRIES", "5000000000").unwrap_err();
        assert_invalid(&err, &["PORT_MAX_RETRIES", "\"5000000000\"", "1..=1000"]);
    }

    #[test]
    fn padding_bounds() {
        let err = Config::builder().tail_length(9000).build().unwrap_err();
        assert_invalid(
            &err,
            &["PORT_TAIL_LENGTH", "padding", "\"9000\"", "0..=8192"],
        );
        let err = from_one("PORT_TAIL_LENGTH", "9000").unwrap_err();
        assert_invalid(&err, &["PORT_TAIL_LENGTH", "\"9000\"", "0..=8192"]);
        let err = from_one("PORT_TAIL_LENGTH", "70000").unwrap_err();
        assert_invalid(&err, &["PORT_TAIL_LENGTH", "\"70000\"", "0..=8192"]);
        let c = from_one("PORT_TAIL_LENGTH", "0").expect("valid");
        assert_eq!(c.padding(), Padding::NONE);
        let c = from_one("PORT_TAIL_LENGTH", "8192").expect("valid");
        assert_eq!(c.padding().max(), 8192);
    }

    #[test]
    fn frame_payload_bounds() {
        for bad in [100, 255, 65_536, 70_000] {
            let err = Config::builder()
                .max_frame_payload(bad)
                .build()
                .unwrap_err();
            let value = format!("\"{bad}\"");
            assert_invalid(
                &err,
                &[
                    "PORT_MAX_FRAME_PAYLOAD",
                    "max_frame_payload",
                    &value,
                    "256..=65535",
                ],
            );
        }
        let err = from_one("PORT_MAX_FRAME_PAYLOAD", "100").unwrap_err();
        assert_invalid(&err, &["PORT_MAX_FRAME_PAYLOAD", "\"100\"", "256..=65535"]);
        let err = from_one("PORT_MAX_FRAME_PAYLOAD", "70000").unwrap_err();
        assert_invalid(
            &err,
            &["PORT_MAX_FRAME_PAYLOAD", "\"70000\"", "256..=65535"],
        );
    }

    #[test]
    fn max_message_bounds() {
        let err = Config::builder().max_message(1000).build().unwrap_err();
        assert_order(
            &err,
            &[
                "PORT_MAX_FRAME_PAYLOAD (max_frame_payload) = 16384",
                "PORT_MAX_MESSAGE (max_message) = 1000",
                "must not exceed",
            ],
        );
        let err = Config::from_vars([
            ("PORT_MAX_MESSAGE", "2000"),
            ("PORT_MAX_FRAME_PAYLOAD", "4096"),
        ])
        .unwrap_err();
        assert_order(&err, &["PORT_MAX_MESSAGE (max_message) = 2000", "4096"]);
        let ok = Config::from_vars([
            ("PORT_MAX_MESSAGE", "2000"),
            ("PORT_MAX_FRAME_PAYLOAD", "1000"),
        ])
        .expect("valid");
        assert_eq!(ok.max_message(), 2000);
        assert_eq!(ok.max_frame_payload(), 1000);

        let err = from_one("PORT_MAX_MESSAGE", "4294967296").unwrap_err();
        assert_invalid(
            &err,
            &["PORT_MAX_MESSAGE", "\"4294967296\"", "16384..=4294967295"],
        );
        let err = from_one("PORT_MAX_MESSAGE", "x").unwrap_err();
        assert_invalid(&err, &["PORT_MAX_MESSAGE", "\"x\"", "..=4294967295"]);
    }

    #[test]
    fn timeout_order() {
        let err = Config::builder().min_timeout(secs(40)).build().unwrap_err();
        assert_order(&err, &["PORT_MIN_TIMEOUT (min_timeout) = 40s", "8s"]);
        assert_eq!(
            err.to_string(),
            "PORT_MIN_TIMEOUT (min_timeout) = 40s must not exceed \
             PORT_DEFAULT_TIMEOUT (default_timeout) = 8s"
        );
        let err = Config::builder()
            .default_timeout(ms(32_500))
            .build()
            .unwrap_err();
        assert_order(
            &err,
            &[
                "PORT_DEFAULT_TIMEOUT (default_timeout) = 32.5s",
                "PORT_MAX_TIMEOUT (max_timeout) = 32s",
            ],
        );
        let err = from_one("PORT_DEFAULT_TIMEOUT", "2").unwrap_err();
        assert_order(
            &err,
            &["PORT_MIN_TIMEOUT", "4s", "PORT_DEFAULT_TIMEOUT", "2s"],
        );
        let err = Config::builder()
            .max_timeout(secs(3601))
            .build()
            .unwrap_err();
        assert_invalid(&err, &["PORT_MAX_TIMEOUT", "\"3601s\"", "at most 3600"]);
    }

    #[test]
    fn zero_and_huge_timeouts() {
        let err = Config::builder()
            .handshake_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_invalid(
            &err,
            &[
                "PORT_TIMEOUT",
                "handshake_timeout",
                "\"0s\"",
                "greater than 0",
                "3600",
            ],
        );
        let err = from_one("PORT_TIMEOUT", "0").unwrap_err();
        assert_invalid(&err, &["PORT_TIMEOUT", "\"0\"", "greater than 0"]);
        let err = from_one("PORT_TIMEOUT", "3600.5").unwrap_err();
        assert_invalid(&err, &["PORT_TIMEOUT", "\"3600.5\"", "at most 3600"]);
        let err = Config::builder()
            .min_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_invalid(&err, &["PORT_MIN_TIMEOUT", "\"0s\"", "greater than 0"]);
        let err = Config::builder()
            .min_next_in(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_invalid(&err, &["PORT_MIN_NEXT_IN", "\"0s\"", "greater than 0"]);
        let err = Config::builder()
            .drain_min(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_invalid(&err, &["PORT_DRAIN_MIN", "\"0s\"", "greater than 0"]);
        let err = Config::builder()
            .handshake_timeout(Duration::MAX)
            .build()
            .unwrap_err();
        assert_invalid(&err, &["PORT_TIMEOUT", "at most 3600"]);
    }

    #[test]
    fn next_in_bounds_and_order() {
        let err = Config::builder().min_next_in(secs(65)).build().unwrap_err();
        assert_order(
            &err,
            &[
                "PORT_MIN_NEXT_IN (min_next_in) = 65s",
                "PORT_MAX_NEXT_IN (max_next_in) = 64s",
            ],
        );
        let err = from_one("PORT_MAX_NEXT_IN", "86401").unwrap_err();
        assert_invalid(&err, &["PORT_MAX_NEXT_IN", "\"86401\"", "at most 86400"]);
    }

    #[test]
    fn drain_bounds_and_order() {
        let err = Config::builder().drain_min(secs(100)).build().unwrap_err();
        assert_order(
            &err,
            &[
                "PORT_DRAIN_MIN (drain_min) = 100s",
                "PORT_DRAIN_MAX (drain_max) = 90s",
            ],
        );
        let err = from_one("PORT_DRAIN_MAX", "4000").unwrap_err();
        assert_invalid(&err, &["PORT_DRAIN_MAX", "\"4000\"", "at most 3600"]);
    }

    #[test]
    fn replay_bounds() {
        let err = Config::builder()
            .replay_window(ms(999))
            .build()
            .unwrap_err();
        assert_invalid(&err, &["PORT_REPLAY_WINDOW", "\"0.999s\"", "1..=86400"]);
        let err = from_one("PORT_REPLAY_WINDOW", "86401").unwrap_err();
        assert_invalid(&err, &["PORT_REPLAY_WINDOW", "\"86401\"", "1..=86400"]);
        let err = Config::builder().replay_capacity(0).build().unwrap_err();
        assert_invalid(&err, &["PORT_REPLAY_CAPACITY", "\"0\"", "1..=16777216"]);
        let err = from_one("PORT_REPLAY_CAPACITY", "16777217").unwrap_err();
        assert_invalid(
            &err,
            &["PORT_REPLAY_CAPACITY", "\"16777217\"", "1..=16777216"],
        );
    }

    #[test]
    fn from_vars_fractional_seconds() {
        let c = Config::from_vars([
            ("PORT_MIN_TIMEOUT", "0.5"),
            ("PORT_DEFAULT_TIMEOUT", "1.25"),
            ("PORT_MAX_TIMEOUT", "2"),
            ("PORT_TIMEOUT", "0.1"),
            ("PORT_MIN_NEXT_IN", "0.3"),
            ("PORT_MAX_NEXT_IN", "10.000000001"),
        ])
        .expect("valid");
        assert_eq!(c.min_timeout(), ms(500));
        assert_eq!(c.default_timeout(), ms(1250));
        assert_eq!(c.max_timeout(), secs(2));
        assert_eq!(c.handshake_timeout(), ms(100));
        assert_eq!(c.min_next_in(), ms(300));
        assert_eq!(c.max_next_in(), Duration::new(10, 1));
    }

    #[test]
    fn from_vars_all_recognised() {
        let c = Config::from_vars([
            ("PORT_TIMEOUT", "20"),
            ("PORT_MIN_TIMEOUT", "1"),
            ("PORT_DEFAULT_TIMEOUT", "2"),
            ("PORT_MAX_TIMEOUT", "3"),
            ("PORT_MIN_NEXT_IN", "4"),
            ("PORT_MAX_NEXT_IN", "5"),
            ("PORT_MAX_RETRIES", "6"),
            ("PORT_TAIL_LENGTH", "7"),
            ("PORT_DRAIN_MIN", "8"),
            ("PORT_DRAIN_MAX", "9"),
            ("PORT_REPLAY_WINDOW", "10"),
            ("PORT_REPLAY_CAPACITY", "11"),
            ("PORT_MAX_FRAME_PAYLOAD", "1200"),
            ("PORT_MAX_MESSAGE", "1300"),
            ("PORT_RECORD_LINGER", "0.005"),
        ])
        .expect("valid");
        let expected = Config::builder()
            .handshake_timeout(secs(20))
            .min_timeout(secs(1))
            .default_timeout(secs(2))
            .max_timeout(secs(3))
            .min_next_in(secs(4))
            .max_next_in(secs(5))
            .max_retries(6)
            .tail_length(7)
            .drain_min(secs(8))
            .drain_max(secs(9))
            .replay_window(secs(10))
            .replay_capacity(11)
            .max_frame_payload(1200)
            .max_message(1300)
            .record_linger(ms(5))
            .build()
            .expect("valid");
        assert_eq!(c, expected);
    }

    #[test]
    fn record_linger_is_bounded_by_a_second() {
        assert_eq!(Config::default().record_linger(), Duration::ZERO);
        assert_eq!(
            from_one("PORT_RECORD_LINGER", "1").unwrap().record_linger(),
            secs(1)
        );
        let err = from_one("PORT_RECORD_LINGER", "1.5").unwrap_err();
        assert_invalid(
            &err,
            &["PORT_RECORD_LINGER (record_linger)", "\"1.5\"", "at most 1"],
        );
    }

    #[test]
    fn from_vars_bad_forms() {
        let bad = [
            "abc",
            "-1",
            "1e3",
            "",
            "   ",
            "10s",
            "NaN",
            "inf",
            "+5",
            "1.",
            ".5",
            "1.2.3",
            "0x10",
            "1_000",
            "99999999999999999999999",
        ];
        let vars = [
            "PORT_TIMEOUT",
            "PORT_MIN_TIMEOUT",
            "PORT_DEFAULT_TIMEOUT",
            "PORT_MAX_TIMEOUT",
            "PORT_MIN_NEXT_IN",
            "PORT_MAX_NEXT_IN",
            "PORT_MAX_RETRIES",
            "PORT_TAIL_LENGTH",
            "PORT_DRAIN_MIN",
            "PORT_DRAIN_MAX",
            "PORT_REPLAY_WINDOW",
            "PORT_REPLAY_CAPACITY",
            "PORT_MAX_FRAME_PAYLOAD",
            "PORT_MAX_MESSAGE",
        ];
        for var in vars {
            for value in bad {
                let err = from_one(var, value).unwrap_err();
                let shown = format!("{value:?}");
                assert_invalid(&err, &[var, &shown, "expected "]);
            }
        }
        // Integers reject decimals.
        for var in ["PORT_MAX_RETRIES", "PORT_TAIL_LENGTH", "PORT_MAX_MESSAGE"] {
            let err = from_one(var, "5.0").unwrap_err();
            assert_invalid(&err, &[var, "\"5.0\""]);
        }
        // Huge digit strings neither panic nor succeed.
        let huge = "9".repeat(400);
        assert!(from_one("PORT_TIMEOUT", &huge).is_err());
        assert!(from_one("PORT_MAX_MESSAGE", &huge).is_err());
        let err = from_one("PORT_MAX_TIMEOUT", "18446744073709551616").unwrap_err();
        assert_invalid(&err, &["PORT_MAX_TIMEOUT", "18446744073709551616"]);
    }

    #[test]
    fn from_vars_ignores_unrelated() {
        let c = Config::from_vars([
            ("PATH", "/usr/bin"),
            ("HOME", "garbage"),
            ("PORT", "80"),
            ("PORT_UNKNOWN", "not a number"),
            ("PORT_TIMEOUTS", "x"),
            ("port_timeout", "x"),
            ("PORT_MAX_RETRIES", "7"),
        ])
        .expect("valid");
        assert_eq!(c.max_retries(), 7);
        assert_eq!(c, Config::builder().max_retries(7).build().expect("valid"));
    }

    #[test]
    fn from_vars_trims_and_last_wins() {
        let c = Config::from_vars([
            ("PORT_MAX_RETRIES", " 9\t"),
            ("PORT_TIMEOUT", "\n0.5 "),
            ("PORT_TAIL_LENGTH", "1"),
            ("PORT_TAIL_LENGTH", "  2  "),
        ])
        .expect("valid");
        assert_eq!(c.max_retries(), 9);
        assert_eq!(c.handshake_timeout(), ms(500));
        assert_eq!(c.padding(), Padding::Uniform { max: 2 });

        let c = Config::from_vars(vec![
            (String::from("PORT_MAX_RETRIES"), String::from("1")),
            (String::from("PORT_MAX_RETRIES"), String::from("3")),
        ])
        .expect("valid");
        assert_eq!(c.max_retries(), 3);
    }

    #[test]
    fn from_vars_takes_the_environment_as_it_is() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;

        let bad = OsString::from_vec(vec![b'1', 0xff]);
        let vars = vec![
            (OsString::from_vec(vec![0xfe]), OsString::from("ignored")),
            (OsString::from("PORT_MAX_RETRIES"), OsString::from("4")),
        ];
        assert_eq!(Config::from_vars(vars).unwrap().max_retries(), 4);
        let err = Config::from_vars([("PORT_MAX_RETRIES", bad)]).unwrap_err();
        assert!(err.to_string().contains("PORT_MAX_RETRIES"), "{err}");
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }

    #[test]
    fn padding_draw_in_range() {
        let samples = [
            0,
            1,
            2,
            0x7fff_ffff,
            0x8000_0000,
            0xdead_beef,
            u32::MAX - 1,
            u32::MAX,
        ];
        for max in [0u16, 1, 2, 3, 100, 512, 8192, u16::MAX] {
            let p = Padding::Uniform { max };
            assert_eq!(p.max(), usize::from(max));
            for r in samples {
                assert!(p.draw(r) <= usize::from(max), "max {max} r {r}");
            }
            assert_eq!(p.draw(0), 0);
            assert_eq!(p.draw(u32::MAX), usize::from(max));
        }
        for r in samples {
            assert_eq!(Padding::NONE.draw(r), 0);
        }
        assert_eq!(Padding::NONE.max(), 0);
        // Half way through the u32 range lands half way through 0..=max.
        assert_eq!(Padding::Uniform { max: 1 }.draw(0x8000_0000), 1);
        assert_eq!(Padding::Uniform { max: 1 }.draw(0x7fff_ffff), 0);
        assert_eq!(Padding::Uniform { max: 511 }.draw(0x8000_0000), 256);
    }

    #[test]
    fn padding_draw_is_balanced() {
        // Sweep r evenly over the u32 range: each length gets (nearly) the
        // same number of hits.
        let p = Padding::Uniform { max: 6 };
        let mut counts = [0u32; 7];
        let step = 4099u32;
        let mut r = 0u32;
        loop {
            counts[p.draw(r)] += 1;
            match r.checked_add(step) {
                Some(next) => r = next,
                None => break,
            }
        }
        let lo = counts.iter().min().copied().unwrap_or(0);
        let hi = counts.iter().max().copied().unwrap_or(0);
        assert!(hi - lo <= 1, "{counts:?}");
    }

    #[test]
    fn keepalive_detection_formula() {
        let c = Config::default();
        assert_eq!(c.max_keepalive_detection(), secs(64 + 5 * 32));
        let c = Config::builder()
            .min_next_in(secs(1))
            .max_next_in(ms(1500))
            .max_retries(3)
            .min_timeout(ms(250))
            .default_timeout(ms(250))
            .max_timeout(ms(250))
            .build()
            .expect("valid");
        assert_eq!(c.max_keepalive_detection(), ms(1500 + 3 * 250));
        let c = Config::builder()
            .max_next_in(secs(86_400))
            .max_retries(1000)
            .max_timeout(secs(3600))
            .build()
            .expect("valid");
        assert_eq!(c.max_keepalive_detection(), secs(86_400 + 1000 * 3600));
    }

    #[test]
    fn fmt_secs_forms() {
        assert_eq!(fmt_secs(secs(40)), "40s");
        assert_eq!(fmt_secs(ms(500)), "0.5s");
        assert_eq!(fmt_secs(ms(1250)), "1.25s");
        assert_eq!(fmt_secs(Duration::new(3, 1)), "3.000000001s");
        assert_eq!(fmt_secs(Duration::ZERO), "0s");
    }

    #[test]
    fn error_is_std_error() {
        let err: Box<dyn Error> = Box::new(Config::builder().max_retries(0).build().unwrap_err());
        assert!(
            err.to_string()
                .starts_with("PORT_MAX_RETRIES (max_retries)")
        );
    }
}
