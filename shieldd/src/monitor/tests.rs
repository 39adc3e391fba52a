//! Real-kernel tests (root only).
use super::*;

#[test]
fn loads() {
    let m = Monitor::load(&MonitorConfig::default());
    if let Err(e) = &m {
        eprintln!("{e}");
    }
    assert!(m.is_ok());
}
