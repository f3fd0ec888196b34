//! Where scheduler calls go: the endpoint under a configured master URL,
//! and the leader a `307 Temporary Redirect` points at.

use reqwest::Url;

use super::client::SCHEDULER_PATH;

/// `http://m:5050` -> `http://m:5050/api/v1/scheduler` (keeps a path prefix).
pub(crate) fn scheduler_endpoint(master: &Url) -> Url {
    let mut base = master.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(SCHEDULER_PATH).unwrap_or(base)
}

/// Where a 307 points. Mesos sends `//leader:5050/api/v1/scheduler`
/// (scheme-relative); its docs show a bare `leader:5050`.
pub(crate) fn resolve_leader(current: &Url, location: &str) -> Option<Url> {
    let location = location.trim();
    if location.is_empty() {
        return None;
    }
    let joined = if location.starts_with('/') || location.contains("://") {
        current.join(location)
    } else {
        current.join(&format!("//{location}"))
    };
    let mut leader = joined
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())?;
    if leader.path() == "/" {
        leader.set_path(current.path());
    }
    Some(leader)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("test URL")
    }

    #[test]
    fn endpoint_is_under_the_master_url() {
        let endpoint = scheduler_endpoint(&url("http://m1:5050"));
        assert_eq!(endpoint.as_str(), "http://m1:5050/api/v1/scheduler");
        let behind_proxy = scheduler_endpoint(&url("https://proxy/mesos"));
        assert_eq!(
            behind_proxy.as_str(),
            "https://proxy/mesos/api/v1/scheduler"
        );
    }

    #[test]
    fn resolves_every_location_form_mesos_uses() {
        let current = url("https://m1:5050/api/v1/scheduler");
        let cases = [
            (
                "//m2:5050/api/v1/scheduler",
                "https://m2:5050/api/v1/scheduler",
            ),
            (
                "//m2:5050/master/api/v1/scheduler",
                "https://m2:5050/master/api/v1/scheduler",
            ),
            ("m2:5050", "https://m2:5050/api/v1/scheduler"),
            (
                "http://m3:5050/api/v1/scheduler",
                "http://m3:5050/api/v1/scheduler",
            ),
        ];
        for (location, want) in cases {
            let got = resolve_leader(&current, location).map(String::from);
            assert_eq!(got.as_deref(), Some(want), "{location}");
        }
        assert_eq!(resolve_leader(&current, ""), None);
        assert_eq!(resolve_leader(&current, "ftp://m4/x"), None);
    }
}
