//! Guards shared by the unit tests that need privileges or kernel features.
//! A privileged test that cannot run fails under `CI=true`; elsewhere it is
//! reported as skipped, by name, and never passes silently.

/// Fails the calling test under `CI=true`, else prints `SKIPPED name: why`.
/// Returns false so that callers can write `if !cannot_run(..) { return; }`
/// in one place.
pub(crate) fn cannot_run(name: &str, why: &str) -> bool {
    assert!(
        std::env::var_os("CI").is_none_or(|v| v != "true"),
        "{name} cannot run and CI=true is set: {why}"
    );
    eprintln!("SKIPPED {name}: {why}");
    false
}

/// Whether the test may go on: true as root, else [`cannot_run`].
pub(crate) fn root_or_skip(name: &str) -> bool {
    nix::unistd::Uid::effective().is_root() || cannot_run(name, "needs root")
}
