//! Errors as logs and exit messages show them.

use std::error::Error;

/// An error and its sources, outermost first.
pub fn causes<'a>(error: &'a (dyn Error + 'a)) -> impl Iterator<Item = &'a (dyn Error + 'a)> {
    std::iter::successors(Some(error), |&e| e.source().map(|s| s as &dyn Error))
}

/// An error with its causes on one line, `a: b: c`: the top-level message
/// alone often says little ("error sending request").
pub fn chain(error: &dyn Error) -> String {
    causes(error)
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}
