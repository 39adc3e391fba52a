//! `check-policy` must refuse what `run` and `check-tool` refuse: the tool
//! checker's and the environment filter's errors, found at parse time with
//! their place, and hints that say where a misplaced part goes.

use super::*;

fn messages(text: &str) -> Vec<String> {
    match parse_policy(text, "p.yaml") {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics().iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn shipped_policies_pass_the_checks_of_a_launch() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("policies/") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(&path).expect("read");
        let p = parse_policy(&text, &path.display().to_string())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        crate::tools::ToolChecker::new(&p.tools)
            .unwrap_or_else(|e| panic!("{}: tool policy refused: {e}", path.display()));
    }
    assert!(seen >= 4, "only {seen} policies found in {}", dir.display());
}

#[test]
fn relative_tool_paths_are_refused_with_their_place() {
    let m = messages(
        "version: 1\ntools:\n  allowed_tools:\n    - name: read_file\n      allowed_paths: [/data/, ./, ~/notes]\n",
    );
    assert_eq!(m.len(), 2, "{m:#?}");
    assert!(
        m[0].starts_with("p.yaml:5:31: error: `allowed_paths` entry `./` is not an absolute path"),
        "{}",
        m[0]
    );
    assert!(m[0].contains("hint:"), "{}", m[0]);
    assert!(m[1].starts_with("p.yaml:5:35:"), "{}", m[1]);
    // The absolute form alone is fine.
    assert!(messages("version: 1\ntools:\n  allowed_tools:\n    - name: read_file\n      allowed_paths: [/data/]\n").is_empty());
}

#[test]
fn tool_entries_the_checker_refuses_are_refused_at_parse_time() {
    let m = messages(
        "version: 1\ntools:\n  allowed_tools:\n    - name: q\n      allowed_operations: [SELECT]\n    - name: Q\n    - name: mail\n      allowed_domains: [\"*.*\"]\n    - name: db\n      allowed_operations: [\"DROP TABLE\"]\n    - name: \"\"\n",
    );
    assert_eq!(m.len(), 4, "{m:#?}");
    assert!(
        m[0].starts_with("p.yaml:6:13: error: tool `Q` is listed more than once"),
        "{}",
        m[0]
    );
    assert!(
        m[1].starts_with("p.yaml:7:13: error: tool `mail`: allowed_domains entry `*.*`"),
        "{}",
        m[1]
    );
    assert!(
        m[2].starts_with("p.yaml:9:13: error: tool `db`: allowed_operations entry `DROP TABLE`"),
        "{}",
        m[2]
    );
    assert!(
        m[3].starts_with("p.yaml:11:13: error: tool entry with an empty `name`"),
        "{}",
        m[3]
    );
    // Look-alikes that must pass: distinct names, a real domain, an SQL keyword.
    assert!(messages("version: 1\ntools:\n  allowed_tools:\n    - name: q\n    - name: q2\n      allowed_domains: [\"@example.com\"]\n      allowed_operations: [select, INSERT]\n").is_empty());
}

#[test]
fn bad_env_remove_globs_are_refused_with_their_place() {
    let m = messages("version: 1\nsandbox:\n  env:\n    remove: [AWS_*, \"[bad\", \"*_TOKEN\"]\n");
    assert_eq!(m.len(), 1, "{m:#?}");
    assert!(
        m[0].starts_with("p.yaml:4:21: error: bad glob `[bad` in `env.remove`"),
        "{}",
        m[0]
    );
    assert!(messages("version: 1\nsandbox:\n  env:\n    remove: [AWS_*, GITHUB_TOKEN, \"*_SECRET*\", \"[AB]_KEY\"]\n").is_empty());
}

#[test]
fn a_misplaced_cidr_port_or_scheme_in_host_says_where_it_goes() {
    let m = messages(
        "version: 1\nsandbox:\n  network:\n    connect:\n      - { host: 10.0.0.0/8 }\n      - { host: \"api.openai.com:443\" }\n      - { host: \"https://api.openai.com/v1\" }\n      - { host: \"bad_name!\" }\n",
    );
    assert_eq!(m.len(), 4, "{m:#?}");
    assert!(m[0].contains("goes in `cidr:`"), "{}", m[0]);
    assert!(m[1].contains("put the port in `port:`"), "{}", m[1]);
    assert!(m[2].contains("without the scheme"), "{}", m[2]);
    assert!(m[3].contains("a DNS name like api.openai.com"), "{}", m[3]);
    // An IPv6 address has colons and is a host, not host:port.
    assert!(messages("version: 1\nsandbox:\n  network:\n    connect:\n      - { host: \"::1\", port: 80 }\n      - { host: api.openai.com, port: 443 }\n").is_empty());
}
