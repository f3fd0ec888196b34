//! Errors as logs and exit messages show them.

use std::error::Error;

/// An error with its causes on one line, `a: b: c`: the top-level message
/// alone often says little ("error sending request").
pub fn chain(error: &dyn Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
