//! Stride's use of ZooKeeper (issue 15): the `zk://` URL, one session, the
//! leader election whose epoch fences every write, and the replicated log's
//! batches; and, read only, the Mesos masters' group (`masters`). Stride's
//! bytes are opaque here: this crate knows paths, versions and ZooKeeper's
//! limits, not events.
//!
//! The tree under the URL's path (`/stride` by default):
//!
//! | node | what |
//! |---|---|
//! | `election/c-<seq>` | ephemeral sequential: one per instance contending; the lowest leads |
//! | `epoch` | the leader's identity; its data version is the epoch, bumped by each winner |
//! | `log/b-<first seq>` | one committed batch, written only together with a check of the epoch |
//! | `members/<id>` | ephemeral: an instance's URL, while its session lives |
//! | `applied/<id>` | how far an instance's local log has applied the replicated one |

mod election;
mod error;
mod log;
mod masters;
mod session;
mod url;

pub mod ensemble;

pub use election::{Candidate, Leader, Leadership};
pub use error::ZkError;
pub use log::{BatchId, NODE_LIMIT, Watch};
pub use masters::{GroupView, MASTER_LABEL, MastersSession, Member, leading_member, update_view};
pub use session::{SessionState, SessionWatch, Zk};
pub use url::ZkUrl;
