use crate::ZkError;
use std::str::FromStr;

/// `zk://host:port[,host:port...]/path`, as Marathon's `--zk` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkUrl {
    /// The connect string: `host:port,host:port`.
    pub servers: String,
    /// Where Stride's tree lives, without a trailing slash: `/stride`.
    pub root: String,
}

impl FromStr for ZkUrl {
    type Err = ZkError;

    fn from_str(url: &str) -> Result<ZkUrl, ZkError> {
        let invalid = |reason| ZkError::Url {
            url: url.to_owned(),
            reason,
        };
        let rest = url
            .strip_prefix("zk://")
            .ok_or_else(|| invalid("it does not start with zk://"))?;
        let (servers, path) = rest.split_once('/').unwrap_or((rest, ""));
        if servers.is_empty() {
            return Err(invalid("it names no server"));
        }
        if servers.contains('@') {
            return Err(invalid("credentials in the URL are not supported"));
        }
        for server in servers.split(',') {
            let (host, port) = server
                .rsplit_once(':')
                .ok_or_else(|| invalid("a server lacks its :port"))?;
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(invalid("a server is not host:port"));
            }
        }
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return Err(invalid("it names no path"));
        }
        if path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(invalid("its path has an empty, . or .. part"));
        }
        Ok(ZkUrl {
            servers: servers.to_owned(),
            root: format!("/{path}"),
        })
    }
}

impl std::fmt::Display for ZkUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "zk://{}{}", self.servers, self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marathons_form_parses() {
        let url: ZkUrl = "zk://h1:2181,h2:2182/stride/prod/".parse().expect("valid");
        assert_eq!(url.servers, "h1:2181,h2:2182");
        assert_eq!(url.root, "/stride/prod");
        assert_eq!(url.to_string(), "zk://h1:2181,h2:2182/stride/prod");
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, reason) in [
            ("http://h:1/x", "zk://"),
            ("zk://", "no server"),
            ("zk:///mesos", "no server"),
            ("zk://h:99999/x", "host:port"),
            ("zk://h:1", "no path"),
            ("zk://h/x", ":port"),
            ("zk://h:0/x", "host:port"),
            ("zk://:1/x", "host:port"),
            ("zk://u:p@h:1/x", "credentials"),
            ("zk://h:1/a//b", "empty"),
        ] {
            let error = url.parse::<ZkUrl>().expect_err(url).to_string();
            assert!(error.contains(reason), "{url}: {error}");
        }
    }
}
