//! How the syncs reach Redis: one server, the master Redis Sentinel names,
//! or a Redis Cluster (sharded: each command goes to the shard that owns
//! its key's slot).
//!
//! [`Conn`] is a `redis::ConnectionLike`, so a single command runs on
//! either. A pipeline whose commands touch keys in different slots must go
//! through [`Pipe`], which a Redis Cluster runs as a cluster pipeline (one
//! pipeline per shard); pipelines over one key may use `redis::pipe()`.

use std::time::Duration;

use redis::{Cmd, ConnectionLike, FromRedisValue, RedisResult, Value};

/// URL forms: `redis://…`, `rediss://…`, `redis+unix:///path`,
/// `redis+sentinel://host:port[,host:port…]/master`,
/// `redis+cluster://host:port[,host:port…]`.
pub(crate) enum Connector {
    Direct(redis::Client),
    Sentinel(redis::sentinel::SentinelClient),
    Cluster(Vec<String>),
}

fn bad(what: &'static str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, what))
}

impl Connector {
    pub(crate) fn open(url: &str) -> RedisResult<Connector> {
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            let (hosts, master) = crate::parse_sentinel(rest)
                .ok_or_else(|| bad("expected redis+sentinel://host:port[,host:port...]/master"))?;
            let urls: Vec<String> = hosts.iter().map(|h| format!("redis://{h}")).collect();
            return Ok(Connector::Sentinel(redis::sentinel::SentinelClient::build(
                urls,
                master,
                None,
                redis::sentinel::SentinelServerType::Master,
            )?));
        }
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let hosts = parse_cluster(rest)
                .ok_or_else(|| bad("expected redis+cluster://host:port[,host:port...]"))?;
            return Ok(Connector::Cluster(
                hosts.iter().map(|h| format!("redis://{h}")).collect(),
            ));
        }
        Ok(Connector::Direct(redis::Client::open(url)?))
    }

    /// A connection with `timeout` on connect, reads and writes.
    pub(crate) fn connect(&mut self, timeout: Duration) -> RedisResult<Conn> {
        let c = match self {
            Connector::Direct(c) => Conn::One(c.get_connection_with_timeout(timeout)?),
            Connector::Sentinel(s) => Conn::One(s.get_connection()?),
            Connector::Cluster(nodes) => Conn::Cluster(
                redis::cluster::ClusterClient::builder(nodes.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(1)
                    .build()?
                    .get_connection()?,
            ),
        };
        match &c {
            Conn::One(x) => {
                x.set_read_timeout(Some(timeout))?;
                x.set_write_timeout(Some(timeout))?;
            }
            Conn::Cluster(x) => {
                x.set_read_timeout(Some(timeout))?;
                x.set_write_timeout(Some(timeout))?;
            }
        }
        Ok(c)
    }
}

/// `host:port[,host:port…]` → the seed nodes of a Redis Cluster.
pub fn parse_cluster(rest: &str) -> Option<Vec<String>> {
    let hosts: Vec<String> = rest.split(',').map(str::to_string).collect();
    let ok_host = |h: &String| {
        h.rsplit_once(':')
            .is_some_and(|(a, p)| !a.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
    };
    (!rest.is_empty() && hosts.iter().all(ok_host)).then_some(hosts)
}

/// A connection to one server or to a Redis Cluster.
#[allow(clippy::large_enum_variant)] // one per sync thread
pub(crate) enum Conn {
    One(redis::Connection),
    Cluster(redis::cluster::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Conn::One(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }
    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Conn::One(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }
    fn get_db(&self) -> i64 {
        match self {
            Conn::One(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
    fn check_connection(&mut self) -> bool {
        match self {
            Conn::One(c) => c.check_connection(),
            Conn::Cluster(c) => c.check_connection(),
        }
    }
    fn is_open(&self) -> bool {
        match self {
            Conn::One(c) => c.is_open(),
            Conn::Cluster(c) => c.is_open(),
        }
    }
}

/// A pipeline whose commands may touch keys in different slots.
#[derive(Default)]
pub(crate) struct Pipe {
    cmds: Vec<(Cmd, bool)>,
}

impl Pipe {
    pub(crate) fn new() -> Pipe {
        Pipe::default()
    }

    /// Add `c`; its reply is part of the result unless `ignore`.
    pub(crate) fn add(&mut self, c: Cmd, ignore: bool) -> &mut Pipe {
        self.cmds.push((c, ignore));
        self
    }

    pub(crate) fn len(&self) -> usize {
        self.cmds.len()
    }

    pub(crate) fn query<T: FromRedisValue>(&self, conn: &mut Conn) -> RedisResult<T> {
        match conn {
            Conn::One(c) => {
                let mut p = redis::pipe();
                for (cmd, ignore) in &self.cmds {
                    p.add_command(cmd.clone());
                    if *ignore {
                        p.ignore();
                    }
                }
                p.query(c)
            }
            Conn::Cluster(c) => {
                let mut p = redis::cluster::cluster_pipe();
                for (cmd, ignore) in &self.cmds {
                    p.add_command(cmd.clone());
                    if *ignore {
                        p.ignore();
                    }
                }
                p.query(c)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_their_seed_nodes() {
        assert_eq!(
            parse_cluster("10.0.0.1:7000,r2:7001"),
            Some(vec!["10.0.0.1:7000".to_string(), "r2:7001".to_string()])
        );
        for bad in ["", "h", "h:0", ":7000", "h:7000,", "h:x"] {
            assert_eq!(parse_cluster(bad), None, "{bad}");
        }
        assert!(matches!(
            Connector::open("redis+cluster://h:1,h:2"),
            Ok(Connector::Cluster(ref n)) if n.len() == 2
        ));
        assert!(Connector::open("redis+cluster://h").is_err());
    }
}
