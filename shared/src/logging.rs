//! Logging for the Lambda functions (every step function and the HTTP API): one tracing
//! subscriber, configured the way Lambda's advanced logging controls ask; and for the
//! command-line tool, [`init_cli_logging`]. The format follows
//! `AWS_LAMBDA_LOG_FORMAT` (`JSON`: one JSON object a line, with the timestamp and level Lambda
//! needs to filter application logs, the event's fields at the top level and every enclosing
//! span's fields, so each line carries the runtime's `requestId` and the handler's `run_id`;
//! anything else: plain text without timestamps, which CloudWatch adds). The level follows
//! `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG` (full filter directives), then `info`. Only
//! `tracing-subscriber` is used, so the library stays free of the Lambda runtime.

use std::ffi::OsStr;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// How the subscriber is set up, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub json: bool,
    /// A filter directive string for [`EnvFilter`], e.g. `info` or `shared=debug,info`.
    pub filter: String,
}

impl LogSettings {
    /// Reads `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL` and `RUST_LOG` through `var` (so
    /// tests need not touch the process environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let json =
            var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.trim().eq_ignore_ascii_case("json"));
        let lambda_level = var("AWS_LAMBDA_LOG_LEVEL")
            .map(|level| level.trim().to_ascii_lowercase())
            .filter(|level| !level.is_empty())
            .map(|level| match level.as_str() {
                // Lambda's levels include FATAL, which tracing does not have.
                "fatal" => "error".to_string(),
                other => other.to_string(),
            });
        let filter = lambda_level
            .or_else(|| var("RUST_LOG").filter(|v| !v.trim().is_empty()))
            .unwrap_or_else(|| "info".to_string());
        LogSettings { json, filter }
    }

    fn env_filter(&self) -> EnvFilter {
        EnvFilter::builder()
            .with_default_directive(LevelFilter::INFO.into())
            .parse_lossy(&self.filter)
    }
}

/// Installs the global subscriber for a Lambda function, from the environment (see the module
/// documentation). Call it first thing in `main`; a second call does nothing.
pub fn init_lambda_logging() {
    let settings = LogSettings::from_vars(|name| std::env::var(name).ok());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(settings.env_filter())
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .with_target(false);
    // `try_init` fails only when a subscriber is already installed (tests, a second call).
    let _ = if settings.json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
    } else {
        builder.without_time().try_init()
    };
}

/// Installs the global subscriber for the command-line tool: compact lines on stderr, filtered
/// by `RUST_LOG` or else `default_filter`. Coloured only when stderr is a terminal and
/// `NO_COLOR` is unset or empty (<https://no-color.org>), so logs piped to a file or another
/// program are plain text.
pub fn init_cli_logging(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let colour = cli_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .compact()
        .init();
}

/// Whether the command-line tool colours its logs: only on a terminal, and not when `NO_COLOR`
/// holds anything.
pub fn cli_colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_cli_colours_only_a_terminal_without_no_color() {
        assert!(cli_colour(true, None));
        assert!(cli_colour(true, Some(OsStr::new(""))));
        assert!(!cli_colour(true, Some(OsStr::new("1"))));
        assert!(!cli_colour(false, None));
        assert!(!cli_colour(false, Some(OsStr::new(""))));
    }

    fn settings(vars: &[(&str, &str)]) -> LogSettings {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LogSettings::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn lambda_controls_win_over_rust_log() {
        assert_eq!(
            settings(&[]),
            LogSettings {
                json: false,
                filter: "info".into()
            }
        );
        assert_eq!(
            settings(&[
                ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
                ("RUST_LOG", "shared=debug")
            ]),
            LogSettings {
                json: true,
                filter: "shared=debug".into()
            }
        );
        assert_eq!(
            settings(&[
                ("AWS_LAMBDA_LOG_FORMAT", "Text"),
                ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
                ("RUST_LOG", "trace")
            ]),
            LogSettings {
                json: false,
                filter: "debug".into()
            }
        );
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).filter,
            "error"
        );
    }
}
