//! The `marathon` Python client from PyPI (0.13.0) against a real Stride on
//! a local Mesos cluster (`tests/marathon_client/drive.py`): every public
//! client method in this scope, every answer parsed with the client's own
//! models, and every event on `/v2/events` and on a callback endpoint
//! checked against Marathon's field sets. `scripts/marathon-client-up.sh`
//! makes the venv (idempotent).

use crate::support::ports::ports;
use crate::support::{LocalMesos, Server, marathon_python};
use std::process::Command;

const DRIVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/marathon_client/drive.py"
);

#[test]
fn the_marathon_client_drives_stride_through_every_method() {
    let Some(python) = marathon_python() else {
        return;
    };
    let ports = ports(100);
    let mesos = LocalMesos::start(&["--ports", &ports.arg()]);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_mesos(dir.path(), &["--master", &mesos.url]);
    let output = Command::new(python)
        .arg(DRIVER)
        .arg(&server.url)
        .output()
        .expect("run drive.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    assert!(
        output.status.success(),
        "drive.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("marathon client: ok"), "{stdout}");
}
