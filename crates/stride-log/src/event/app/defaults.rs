//! Marathon's defaults, as serde default functions.

pub fn instances() -> u32 {
    1
}
pub fn cpus() -> f64 {
    1.0
}
pub fn mem() -> f64 {
    128.0
}
pub fn backoff_seconds() -> f64 {
    1.0
}
pub fn backoff_factor() -> f64 {
    1.15
}
pub fn max_launch_delay_seconds() -> f64 {
    300.0
}
pub fn task_kill_grace_period_seconds() -> f64 {
    3.0
}
pub fn protocol() -> String {
    "tcp".to_owned()
}
pub fn capacity() -> f64 {
    1.0
}
pub fn yes() -> bool {
    true
}
pub fn health_grace_period_seconds() -> u32 {
    300
}
pub fn health_interval_seconds() -> u32 {
    60
}
pub fn health_timeout_seconds() -> u32 {
    20
}
pub fn health_max_consecutive_failures() -> u32 {
    3
}
pub fn health_delay_seconds() -> u32 {
    15
}
pub fn health_path() -> String {
    "/".to_owned()
}
pub fn readiness_name() -> String {
    "readinessCheck".to_owned()
}
pub fn readiness_port_name() -> String {
    "http-api".to_owned()
}
pub fn readiness_interval_seconds() -> u32 {
    30
}
pub fn readiness_timeout_seconds() -> u32 {
    10
}
pub fn readiness_status_codes() -> Vec<u16> {
    vec![200]
}
pub fn role() -> String {
    "*".to_owned()
}
