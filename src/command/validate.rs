//! Checks on an app definition that need no state.

use super::FieldError;
use crate::event::app::AppDefinition;

/// Every problem with `definition`, as Marathon reports them.
pub fn validate_definition(definition: &AppDefinition) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut bad = |path: &str, error: String| {
        errors.push(FieldError {
            path: path.to_owned(),
            errors: vec![error],
        })
    };
    if let Err(error) = check_id(definition.id.as_str()) {
        bad("/id", error);
    }
    if definition.cmd.is_some() && definition.args.is_some() {
        bad(
            "/",
            "AppDefinition must either contain one of 'cmd' or 'args', not both".into(),
        );
    }
    for (path, value, min) in [
        ("/cpus", definition.cpus, 0.001),
        ("/mem", definition.mem, 0.0),
        ("/disk", definition.disk, 0.0),
        ("/backoffSeconds", definition.backoff_seconds, 0.0),
        ("/backoffFactor", definition.backoff_factor, 1.0),
        (
            "/maxLaunchDelaySeconds",
            definition.max_launch_delay_seconds,
            0.0,
        ),
        (
            "/taskKillGracePeriodSeconds",
            definition.task_kill_grace_period_seconds,
            0.0,
        ),
    ] {
        if !value.is_finite() || value < min {
            bad(path, format!("got {value}, expected {min} or more"));
        }
    }
    let strategy = &definition.upgrade_strategy;
    for (path, value) in [
        (
            "/upgradeStrategy/minimumHealthCapacity",
            strategy.minimum_health_capacity,
        ),
        (
            "/upgradeStrategy/maximumOverCapacity",
            strategy.maximum_over_capacity,
        ),
    ] {
        if !(0.0..=1.0).contains(&value) {
            bad(path, format!("got {value}, expected between 0.0 and 1.0"));
        }
    }
    errors
}

/// Marathon's path rules: absolute, `/`-separated segments of lowercase
/// letters, digits, dashes and dots, not starting or ending with a dash.
fn check_id(id: &str) -> Result<(), String> {
    let Some(path) = id.strip_prefix('/') else {
        return Err(format!("'{id}' must be an absolute path starting with /"));
    };
    if path.is_empty() {
        return Err("the root path is not an app id".into());
    }
    for segment in path.split('/') {
        let valid_chars = segment
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        let valid_ends = !segment.starts_with(['-', '.']) && !segment.ends_with(['-', '.']);
        if segment.is_empty() || !valid_chars || !valid_ends || segment == ".." {
            return Err(format!(
                "'{id}': path segments must be lowercase letters, digits, '-' and '.', not starting or ending with '-' or '.'"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_id;

    #[test]
    fn app_ids_follow_marathon_path_rules() {
        for good in ["/web", "/prod/web", "/a/b-c/d1.e"] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        for bad in [
            "web", "/", "/Web", "/a//b", "/-a", "/a-", "/a/../b", "/a b", "/a\0b",
        ] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
