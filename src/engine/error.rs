//! The engine's failures: what went wrong, as a kind a caller can match on,
//! a message, and hints as data. The command line maps kinds to exit codes
//! and prints message and hints in one place (`cli::CliError`); `watch`
//! keeps the rendered text in its status file.

use crate::state::StateError;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The config set is invalid. Its findings are reported on their own
    /// (they are the diagnostics of the check), so the error adds nothing.
    InvalidConfig,
    /// A plan made against a state that has moved on, or against another
    /// database.
    Stale,
    /// The config set renames a user onto another user the state holds.
    RenameConflict,
    /// The mass-delete guard held part of a plan back.
    MassDelete,
    /// Another process held the state for longer than the wait allows.
    Locked,
    /// The state the plan leads to breaks a rule, or the plan was changed
    /// after it was saved: refused before anything was written.
    Refused,
    /// The state cannot be read or written (damaged, read-only, too new…).
    State,
    /// An input other than the config set is wrong: an environment variable,
    /// a saved plan's file, git for `--base`.
    Input,
    /// Reading or writing a file failed.
    Io,
}

/// A failure of the engine: a kind, a message, and hints.
#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub hints: Vec<String>,
    /// Output cut short by a closed pipe: not a failure for a command.
    pub broken_pipe: bool,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hints: Vec::new(),
            broken_pipe: false,
        }
    }

    /// An input error: the common case for a wrong argument or file.
    pub fn input(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Input, message)
    }

    /// The config set is invalid; its findings were reported on their own.
    pub fn invalid_config() -> Self {
        Error::new(ErrorKind::InvalidConfig, "the configuration is invalid")
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// The message with its hints, one `  hint:` line each: what the status
    /// file and the log keep of a failure.
    pub fn text(&self) -> String {
        let mut text = self.message.clone();
        for hint in &self.hints {
            text.push_str("\n  hint: ");
            text.push_str(hint);
        }
        text
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        let mut error = Error::new(ErrorKind::Io, e.to_string());
        error.broken_pipe = e.kind() == std::io::ErrorKind::BrokenPipe;
        error
    }
}

impl From<StateError> for Error {
    fn from(e: StateError) -> Self {
        let kind = match &e {
            StateError::Stale { .. } | StateError::Fenced { .. } => ErrorKind::Stale,
            StateError::Busy { .. } => ErrorKind::Locked,
            StateError::Refused(_) => ErrorKind::Refused,
            _ => ErrorKind::State,
        };
        Error {
            kind,
            message: e.message(),
            hints: e.hints(),
            broken_pipe: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_follow_the_message_one_line_each() {
        let e = Error::input("it broke")
            .with_hint("mend it")
            .with_hint("or not");
        assert_eq!(e.text(), "it broke\n  hint: mend it\n  hint: or not");
        assert_eq!(e.to_string(), e.text());
    }

    #[test]
    fn a_state_error_keeps_its_kind_and_its_hints_apart() {
        let e = Error::from(StateError::ReadOnly {
            path: "s.db".into(),
        });
        assert_eq!(e.kind, ErrorKind::State);
        assert!(!e.message.contains("hint"), "{}", e.message);
        assert_eq!(e.hints.len(), 1);
        let busy = Error::from(StateError::Busy {
            path: "s.db".into(),
        });
        assert_eq!(busy.kind, ErrorKind::Locked);
    }
}
