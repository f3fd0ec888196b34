//! What the scheduler driver needs to know, and the checks that keep a bad
//! setting from reaching Mesos (a zero failover timeout kills every task
//! on the first disconnect).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use tokio::sync::watch;

use super::types::{FrameworkCapability, FrameworkCapabilityType, FrameworkId, FrameworkInfo};

/// Mesos docs recommend at least a week; Marathon uses one week.
pub const DEFAULT_FAILOVER_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Base URLs of the masters, e.g. `http://10.0.0.1:5050`. Any of them
    /// will do: a non-leader redirects to the leader.
    pub masters: Vec<Url>,
    /// The leading master's base URL as a detector finds it (Mesos's
    /// ZooKeeper group), instead of `masters`: SUBSCRIBE goes there, and
    /// moves when it names another; `None` while it knows of none.
    pub detected: Option<watch::Receiver<Option<Url>>>,
    pub framework_name: String,
    /// Unix user tasks run as (unless a task says otherwise).
    pub user: String,
    pub roles: Vec<String>,
    pub hostname: Option<String>,
    /// How long Mesos keeps our tasks while we are disconnected. Never 0.
    pub failover_timeout: Duration,
    /// Lets tasks survive an agent restart.
    pub checkpoint: bool,
    /// The id from a previous run, to reclaim its framework and tasks.
    pub framework_id: Option<FrameworkId>,
    pub backoff: BackoffConfig,
    /// Timeout for each non-SUBSCRIBE call.
    pub call_timeout: Duration,
    /// How long SUBSCRIBE may take to produce its first event.
    pub subscribe_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_record_len: usize,
    /// Capacity of the event channel; a slow consumer slows reading.
    pub event_buffer: usize,
    /// Framework authentication: HTTP Basic on SUBSCRIBE and every call,
    /// and `framework_info.principal`.
    pub credential: Option<MesosCredential>,
    /// Asked before every call and every SUBSCRIBE: closed, nothing is sent.
    pub gate: Option<CallGate>,
}

/// A framework's principal and secret, as in the master's `--credentials`.
#[derive(Clone)]
pub struct MesosCredential {
    pub principal: String,
    secret: String,
}

impl MesosCredential {
    pub fn new(principal: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            principal: principal.into(),
            secret: secret.into(),
        }
    }

    /// The `Authorization` header every request to the master carries.
    fn header(&self) -> HeaderValue {
        use base64::Engine;
        let pair = format!("{}:{}", self.principal, self.secret);
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
            .expect("base64 is a valid header value");
        value.set_sensitive(true);
        value
    }
}

impl std::fmt::Debug for MesosCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MesosCredential({}:..)", self.principal)
    }
}

/// Whether this scheduler may still act (a high-availability leader's
/// lease): asked before each request, so a deposed leader sends nothing,
/// whichever of its tasks runs first after a pause.
#[derive(Clone)]
pub struct CallGate(Arc<dyn Fn() -> bool + Send + Sync>);

impl CallGate {
    pub fn new(open: impl Fn() -> bool + Send + Sync + 'static) -> CallGate {
        CallGate(Arc::new(open))
    }

    pub fn is_open(&self) -> bool {
        (self.0)()
    }
}

impl std::fmt::Debug for CallGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallGate(open: {})", self.is_open())
    }
}

/// Capped exponential backoff between subscription attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        // The Mesos docs suggest capping resubscription backoff near 15 s.
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("no Mesos master URL configured")]
    NoMasters,
    #[error("master URL {0} is not http or https")]
    UnsupportedScheme(Url),
    #[error("framework name is empty")]
    EmptyName,
    #[error("framework user is empty")]
    EmptyUser,
    #[error(
        "failover_timeout must be positive: 0 makes Mesos kill every task as soon as Stride disconnects"
    )]
    ZeroFailoverTimeout,
    #[error("backoff must have 0 < initial <= max, got {initial:?} and {max:?}")]
    InvalidBackoff { initial: Duration, max: Duration },
    #[error("{0} must be positive")]
    ZeroSetting(&'static str),
    #[error(
        "the Mesos principal {0:?} cannot be sent: it must be non-empty, without ':' (HTTP Basic)"
    )]
    BadPrincipal(String),
    #[error(
        "the Mesos secret is empty or holds ':', which the master's Basic authenticator cannot take"
    )]
    BadSecret,
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
}

impl SchedulerConfig {
    /// Defaults: role `*`, one-week failover timeout, checkpointing on.
    pub fn new(
        masters: Vec<Url>,
        framework_name: impl Into<String>,
        user: impl Into<String>,
    ) -> Self {
        Self {
            masters,
            detected: None,
            framework_name: framework_name.into(),
            user: user.into(),
            roles: vec!["*".to_string()],
            hostname: None,
            failover_timeout: DEFAULT_FAILOVER_TIMEOUT,
            checkpoint: true,
            framework_id: None,
            backoff: BackoffConfig::default(),
            call_timeout: Duration::from_secs(30),
            subscribe_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_record_len: super::recordio::DEFAULT_MAX_RECORD_LEN,
            event_buffer: 1024,
            credential: None,
            gate: None,
        }
    }

    /// A client for the master: sends the credential, if any, on every
    /// request.
    pub(crate) fn http_client(&self) -> reqwest::ClientBuilder {
        let mut headers = HeaderMap::new();
        if let Some(credential) = &self.credential {
            headers.insert(AUTHORIZATION, credential.header());
        }
        reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.masters.is_empty() && self.detected.is_none() {
            return Err(ConfigError::NoMasters);
        }
        if let Some(url) = self
            .masters
            .iter()
            .find(|u| !matches!(u.scheme(), "http" | "https"))
        {
            return Err(ConfigError::UnsupportedScheme(url.clone()));
        }
        if self.framework_name.trim().is_empty() {
            return Err(ConfigError::EmptyName);
        }
        if self.user.trim().is_empty() {
            return Err(ConfigError::EmptyUser);
        }
        if self.failover_timeout.is_zero() {
            return Err(ConfigError::ZeroFailoverTimeout);
        }
        let BackoffConfig { initial, max } = self.backoff;
        if initial.is_zero() || initial > max {
            return Err(ConfigError::InvalidBackoff { initial, max });
        }
        for (name, value) in [
            ("call_timeout", self.call_timeout),
            ("subscribe_timeout", self.subscribe_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroSetting(name));
            }
        }
        if self.max_record_len == 0 {
            return Err(ConfigError::ZeroSetting("max_record_len"));
        }
        if self.event_buffer == 0 {
            return Err(ConfigError::ZeroSetting("event_buffer"));
        }
        if let Some(credential) = &self.credential {
            // The master splits `principal:secret` at every ':' and wants two parts.
            let principal = &credential.principal;
            if principal.trim().is_empty() || principal.contains(':') {
                return Err(ConfigError::BadPrincipal(principal.clone()));
            }
            if credential.secret.is_empty() || credential.secret.contains(':') {
                return Err(ConfigError::BadSecret);
            }
        }
        Ok(())
    }

    /// The FrameworkInfo for SUBSCRIBE; `id` reclaims an existing framework.
    pub fn framework_info(&self, id: Option<FrameworkId>) -> FrameworkInfo {
        let capabilities = [
            FrameworkCapabilityType::MultiRole,
            FrameworkCapabilityType::PartitionAware,
            FrameworkCapabilityType::TaskKillingState,
        ]
        .into_iter()
        .map(|kind| FrameworkCapability { kind })
        .collect();
        FrameworkInfo {
            user: self.user.clone(),
            name: self.framework_name.clone(),
            id,
            failover_timeout: Some(self.failover_timeout.as_secs_f64()),
            checkpoint: Some(self.checkpoint),
            role: None,
            roles: self.roles.clone(),
            hostname: self.hostname.clone(),
            principal: self.credential.as_ref().map(|c| c.principal.clone()),
            webui_url: None,
            capabilities,
            labels: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SchedulerConfig {
        let master = Url::parse("http://127.0.0.1:5050").expect("url");
        SchedulerConfig::new(vec![master], "stride", "root")
    }

    #[test]
    fn defaults_are_valid_and_fail_over_after_a_week() {
        let config = config();
        assert_eq!(config.validate(), Ok(()));
        let info = config.framework_info(None);
        assert_eq!(info.failover_timeout, Some(604_800.0));
        assert_eq!(info.checkpoint, Some(true));
        assert_eq!(info.capabilities.len(), 3);
    }

    #[test]
    fn rejects_settings_that_would_hurt() {
        let mut zero_failover = config();
        zero_failover.failover_timeout = Duration::ZERO;
        assert_eq!(
            zero_failover.validate(),
            Err(ConfigError::ZeroFailoverTimeout)
        );

        let mut no_masters = config();
        no_masters.masters.clear();
        assert_eq!(no_masters.validate(), Err(ConfigError::NoMasters));

        let mut ftp = config();
        ftp.masters = vec![Url::parse("ftp://m:5050").expect("url")];
        assert!(matches!(
            ftp.validate(),
            Err(ConfigError::UnsupportedScheme(_))
        ));

        let mut backwards = config();
        backwards.backoff = BackoffConfig {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(1),
        };
        assert!(matches!(
            backwards.validate(),
            Err(ConfigError::InvalidBackoff { .. })
        ));

        let mut unnamed = config();
        unnamed.framework_name = " ".into();
        assert_eq!(unnamed.validate(), Err(ConfigError::EmptyName));
    }
}
