//! Table-driven tests of the tool-call policy engine.

use super::*;
use crate::policy::{ParamRule, ToolDefault, ToolPolicy, ToolRule};
use serde_json::json;
use std::collections::BTreeMap;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The SPEC example policy plus a generic-params tool and a wildcard domain tool.
fn policy(default_action: ToolDefault) -> ToolPolicy {
    let mut search_params = BTreeMap::new();
    search_params.insert(
        "q".to_string(),
        ParamRule {
            allow: s(&["[a-z ]+"]),
            deny: s(&["(?i)drop"]),
            max_len: Some(20),
        },
    );
    search_params.insert(
        "opts.mode".to_string(),
        ParamRule {
            allow: s(&["fast|slow"]),
            ..Default::default()
        },
    );
    ToolPolicy {
        default_action,
        allowed_tools: vec![
            ToolRule {
                name: "database_query".into(),
                allowed_operations: Some(s(&["SELECT"])),
                blocked_tables: s(&["users_pii", "credentials", "audit_log"]),
                max_rows: Some(100),
                ..Default::default()
            },
            ToolRule {
                name: "send_email".into(),
                requires_approval: true,
                allowed_domains: s(&["@yourcompany.com"]),
                ..Default::default()
            },
            ToolRule {
                name: "read_file".into(),
                allowed_paths: s(&["/data/reports/", "/data/exports/"]),
                ..Default::default()
            },
            ToolRule {
                name: "search".into(),
                params: search_params,
                ..Default::default()
            },
            ToolRule {
                name: "notify".into(),
                allowed_domains: s(&["YourCompany.com", "*.corp.example"]),
                ..Default::default()
            },
            ToolRule {
                name: "db_write".into(),
                allowed_operations: Some(s(&["select", "Insert"])),
                blocked_tables: s(&["users_pii"]),
                ..Default::default()
            },
        ],
    }
}

fn checker() -> ToolChecker {
    match ToolChecker::new(&policy(ToolDefault::Deny)) {
        Ok(c) => c,
        Err(e) => panic!("test policy invalid: {e}"),
    }
}

fn types(v: &Verdict) -> Vec<String> {
    let set: BTreeSet<String> = v.findings.iter().map(|f| f.ty.clone()).collect();
    set.into_iter().collect()
}

fn assert_case(c: &ToolChecker, tool: &str, params: Value, expect: &[&str]) {
    let v = c.check(tool, &params);
    assert_eq!(types(&v), s(expect), "{tool} {params}: {:#?}", v.findings);
    let blocking = !expect.is_empty() && expect != ["requires_approval"];
    assert_eq!(v.blocked, blocking, "{tool} {params}");
    assert_eq!(v.action == Action::Block, blocking, "{tool} {params}");
    for f in &v.findings {
        assert_eq!(f.kind, FindingKind::ToolPolicy);
        assert!(!f.detail.is_empty(), "empty detail for {}", f.ty);
    }
}

#[test]
fn sql_table() {
    let c = checker();
    let cases: &[(&str, &[&str])] = &[
        // Allowed, including look-alikes of blocked names that are not tables.
        ("SELECT * FROM reports LIMIT 10", &[]),
        ("select * from reports limit 100", &[]),
        ("SELECT * FROM credentials_archive LIMIT 5", &[]),
        ("SELECT 'credentials' AS c, users_pii_count FROM reports LIMIT 5", &[]),
        ("SELECT * FROM reports -- credentials\n LIMIT 5", &[]),
        ("SELECT * FROM reports WHERE note = 'x; DROP TABLE users' LIMIT 5", &[]),
        ("SELECT r.id FROM reports r JOIN sales s ON r.id = s.id LIMIT 5", &[]),
        ("SELECT * FROM reports LIMIT 5, 10", &[]),
        ("SELECT * FROM reports LIMIT 10 OFFSET 5", &[]),
        ("(SELECT * FROM reports LIMIT 5)", &[]),
        ("SELECT * FROM reports FETCH FIRST 10 ROWS ONLY", &[]),
        ("WITH x AS (SELECT * FROM reports) SELECT * FROM x LIMIT 5", &[]),
        // A CTE named like a blocked table, whose body is clean.
        ("WITH users_pii AS (SELECT * FROM reports) SELECT * FROM users_pii LIMIT 5", &[]),
        // Several statements.
        ("SELECT * FROM reports LIMIT 10; DROP TABLE users", &["sql_operation"]),
        ("SELECT * FROM reports; DROP TABLE users", &["sql_max_rows", "sql_operation"]),
        ("SELECT * FROM reports LIMIT 5; SELECT * FROM reports", &["sql_max_rows"]),
        // Blocked tables, wherever they hide.
        ("SELECT * FROM reports r JOIN \"Users_PII\" u ON r.id = u.id LIMIT 10", &["sql_blocked_table"]),
        ("SELECT (SELECT count(*) FROM credentials) LIMIT 1", &["sql_blocked_table"]),
        ("SELECT * FROM reports WHERE id IN (SELECT id FROM credentials) LIMIT 5", &["sql_blocked_table"]),
        ("SELECT * FROM reports WHERE EXISTS (SELECT 1 FROM audit_log) LIMIT 5", &["sql_blocked_table"]),
        ("SELECT * FROM (SELECT * FROM audit_log) t LIMIT 5", &["sql_blocked_table"]),
        ("WITH x AS (SELECT * FROM audit_log) SELECT * FROM x LIMIT 5", &["sql_blocked_table"]),
        ("WITH users_pii AS (SELECT * FROM users_pii) SELECT * FROM users_pii LIMIT 5", &["sql_blocked_table"]),
        ("WITH a AS (SELECT * FROM credentials), credentials AS (SELECT 1) SELECT * FROM a LIMIT 5", &["sql_blocked_table"]),
        ("SELECT * FROM (WITH credentials AS (SELECT 1) SELECT * FROM credentials) t, credentials LIMIT 5", &["sql_blocked_table"]),
        ("SELECT * FROM main.users_pii LIMIT 5", &["sql_blocked_table"]),
        ("SELECT * FROM public.\"USERS_PII\" LIMIT 5", &["sql_blocked_table"]),
        ("SELECT * FROM `users_pii` LIMIT 5", &["sql_blocked_table"]),
        ("SELECT * FROM [users_pii] LIMIT 5", &["sql_blocked_table"]),
        ("SELECT id FROM reports UNION SELECT id FROM credentials LIMIT 5", &["sql_blocked_table"]),
        ("SELECT id FROM reports UNION ALL SELECT id FROM reports EXCEPT SELECT id FROM audit_log LIMIT 5", &["sql_blocked_table"]),
        // Row limits.
        ("SELECT * FROM reports LIMIT 1000", &["sql_max_rows"]),
        ("SELECT * FROM reports", &["sql_max_rows"]),
        ("SELECT * FROM reports LIMIT ALL", &["sql_max_rows"]),
        ("SELECT * FROM reports LIMIT (SELECT 5)", &["sql_max_rows"]),
        ("SELECT * FROM reports LIMIT 10 + 0", &["sql_max_rows"]),
        ("SELECT * FROM reports LIMIT -1", &["sql_max_rows"]),
        ("SELECT * FROM reports LIMIT 5, 1000", &["sql_max_rows"]),
        ("SELECT * FROM reports LIMIT 99999999999999999999999", &["sql_max_rows"]),
        ("(SELECT * FROM reports LIMIT 5) UNION (SELECT * FROM reports LIMIT 5)", &["sql_max_rows"]),
        // Operations.
        ("DELETE FROM reports", &["sql_operation"]),
        ("UPDATE reports SET x = 1", &["sql_operation"]),
        ("WITH x AS (DELETE FROM reports RETURNING *) SELECT * FROM x LIMIT 5", &["sql_operation"]),
        ("SELECT * INTO newtab FROM reports LIMIT 5", &["sql_operation"]),
        ("INSERT INTO reports SELECT * FROM credentials", &["sql_blocked_table", "sql_operation"]),
        ("DROP TABLE users_pii", &["sql_blocked_table", "sql_operation"]),
        ("EXPLAIN SELECT * FROM reports LIMIT 5", &["sql_operation"]),
        // Functions that hide what the query does.
        (
            "SELECT query_to_xml('SELECT * FROM users_pii', true, true, '') LIMIT 1",
            &["sql_function"],
        ),
        ("SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int) LIMIT 1", &["sql_function"]),
        ("SELECT pg_read_file('/etc/passwd') LIMIT 1", &["sql_function"]),
        ("SELECT load_extension('/tmp/x.so') LIMIT 1", &["sql_function"]),
        ("SELECT * FROM reports WHERE id = (SELECT SLEEP(10)) LIMIT 1", &["sql_function"]),
        ("SELECT count(*), max(x), lower(name) FROM reports LIMIT 1", &[]),
        ("SELECT * FROM ONLY users_pii LIMIT 1", &["sql_blocked_table"]),
        ("SELECT * FROM reports NATURAL JOIN users_pii LIMIT 1", &["sql_blocked_table"]),
        ("SELECT * FROM reports, LATERAL (SELECT * FROM users_pii) x LIMIT 1", &["sql_blocked_table"]),
        ("SELECT * FROM reports LIMIT 5 OFFSET (SELECT count(*) FROM users_pii)", &["sql_blocked_table"]),
        ("SELECT * FROM reports ORDER BY (SELECT 1 FROM credentials) LIMIT 5", &["sql_blocked_table"]),
        // Unparseable or unjudgeable.
        ("SELEC * FROM reports", &["sql_parse_error"]),
        ("", &["sql_parse_error"]),
        ("   ;  ", &["sql_parse_error"]),
        ("SELECT * FROM reports /*! ; DROP TABLE x */ LIMIT 5", &["sql_parse_error"]),
    ];
    for (q, expect) in cases {
        assert_case(&c, "database_query", json!({ "query": q }), expect);
    }
}

#[test]
fn sql_operations_are_case_insensitive_and_dml_targets_are_base_tables() {
    let c = checker();
    let cases: &[(&str, &[&str])] = &[
        ("INSERT INTO reports VALUES (1)", &[]),
        ("insert into reports select * from sales", &[]),
        ("SELECT * FROM reports", &[]), // no max_rows on this tool
        ("UPDATE reports SET x = 1", &["sql_operation"]),
        // The target of INSERT is the base table even with a CTE of its name.
        (
            "WITH users_pii AS (SELECT 1) INSERT INTO users_pii SELECT * FROM users_pii",
            &["sql_blocked_table"],
        ),
        (
            "INSERT INTO \"USERS_PII\" VALUES (1)",
            &["sql_blocked_table"],
        ),
        (
            "UPDATE reports SET x = (SELECT ssn FROM users_pii)",
            &["sql_blocked_table", "sql_operation"],
        ),
        (
            "DELETE FROM reports USING users_pii WHERE reports.id = users_pii.id",
            &["sql_blocked_table", "sql_operation"],
        ),
        ("DELETE FROM users_pii", &["sql_blocked_table", "sql_operation"]),
        (
            "MERGE INTO users_pii USING reports ON users_pii.id = reports.id WHEN MATCHED THEN DELETE",
            &["sql_blocked_table", "sql_operation"],
        ),
        ("INSERT INTO reports VALUES ((SELECT ssn FROM users_pii LIMIT 1))", &["sql_blocked_table"]),
        ("CREATE TABLE x AS SELECT * FROM users_pii", &["sql_blocked_table", "sql_operation"]),
        ("CREATE TABLE x AS SELECT * FROM reports", &["sql_operation"]),
    ];
    for (q, expect) in cases {
        assert_case(&c, "db_write", json!({ "sql": q }), expect);
    }
}

#[test]
fn sql_parameter_shapes() {
    let c = checker();
    assert_case(
        &c,
        "database_query",
        json!({"sql": "SELECT 1 LIMIT 1"}),
        &[],
    );
    assert_case(&c, "database_query", json!({}), &["bad_params"]);
    assert_case(&c, "database_query", json!({"query": 5}), &["bad_params"]);
    assert_case(
        &c,
        "database_query",
        json!({"q": "SELECT * FROM credentials"}),
        &["bad_params"],
    );
    // Both spellings present: both are checked.
    assert_case(
        &c,
        "database_query",
        json!({"query": "SELECT 1 LIMIT 1", "sql": "SELECT * FROM credentials LIMIT 1"}),
        &["sql_blocked_table"],
    );
}

/// Inputs that drive sqlparser's recursion as deep as the length cap
/// allows. Before the analysis got its own stack, nested JOINs aborted the
/// process with a stack overflow in a 2 MiB test thread.
#[test]
fn sql_adversarial_inputs_are_bounded() {
    let c = checker();
    let max = sql::MAX_SQL_BYTES - 40;
    let fill = |unit: &str| unit.repeat(max / unit.len());
    let fill_pair = |open: &str, close: &str| {
        let n = max / (open.len() + close.len());
        (open.repeat(n), close.repeat(n))
    };
    let (case_open, case_close) = fill_pair("CASE WHEN 1 THEN 1 ELSE ", " END");
    let (arr_open, arr_close) = fill_pair("ARRAY[", "]");
    let (par_open, par_close) = fill_pair("(", ")");
    let (sub_open, sub_close) = fill_pair("(SELECT ", ")");
    let queries = [
        format!("SELECT {}1 FROM reports LIMIT 1", fill("1+")),
        format!("SELECT {}1 FROM reports LIMIT 1", fill("-")),
        format!("SELECT {}1 FROM reports LIMIT 1", fill("~")),
        format!("SELECT {}1 FROM reports LIMIT 1", fill("NOT ")),
        format!("SELECT 1{} FROM reports LIMIT 1", fill("::int")),
        format!("SELECT x{} FROM reports LIMIT 1", fill("[1]")),
        format!("SELECT x{} FROM reports LIMIT 1", fill("->'a'")),
        format!("SELECT x{} FROM reports LIMIT 1", fill(" IS NULL")),
        format!("SELECT x{} FROM reports LIMIT 1", fill(" COLLATE c")),
        format!("SELECT {case_open}1{case_close} LIMIT 1"),
        format!("SELECT {arr_open}1{arr_close} LIMIT 1"),
        format!("SELECT {par_open}1{par_close} LIMIT 1"),
        format!("SELECT {sub_open}1{sub_close} LIMIT 1"),
        format!("SELECT 1{} LIMIT 1", fill(" UNION SELECT 1")),
        format!("SELECT * FROM a{} LIMIT 1", fill(" JOIN a")),
        format!("SELECT * FROM a {} LIMIT 1", " JOIN a".repeat(60)),
        format!("DROP TABLE {}x", fill("x,")),
        format!("SELECT 1 LIMIT 1{}", fill(";")),
    ];
    for q in queries {
        assert!(q.len() <= sql::MAX_SQL_BYTES, "{}", q.len());
        let v = c.check("database_query", &json!({ "query": q }));
        assert!(v.action == Action::Allow || v.blocked, "{:?}", v.findings);
    }
    let long = format!("SELECT 1 LIMIT 1 {}", " ".repeat(sql::MAX_SQL_BYTES));
    assert_case(
        &c,
        "database_query",
        json!({ "query": long }),
        &["sql_parse_error"],
    );
    let joins = format!("SELECT * FROM a {} LIMIT 1", " JOIN a".repeat(65));
    assert_case(
        &c,
        "database_query",
        json!({ "query": joins }),
        &["sql_parse_error"],
    );
}

#[test]
fn paths_table() {
    let c = checker();
    let cases: &[(Value, &[&str])] = &[
        (json!({"path": "/data/reports/q3.csv"}), &[]),
        (json!({"path": "/data/reports"}), &[]),
        (json!({"path": "/data//reports/./q3.csv"}), &[]),
        (json!({"path": "/data/exports/../reports/a.csv"}), &[]),
        (json!({"file": "/data/exports/x.json"}), &[]),
        (
            json!({"path": "/data/reports/a", "encoding": "/etc/passwd"}),
            &[],
        ),
        (json!({"path": "/data/./reports/x"}), &[]),
        (json!({"path": "/data"}), &["path_not_allowed"]),
        (json!({"path": "/"}), &["path_not_allowed"]),
        (
            json!({"path": "/data/reports/../../etc/passwd"}),
            &["path_not_allowed"],
        ),
        (
            json!({"path": "/data/reports_evil/x"}),
            &["path_not_allowed"],
        ),
        (
            json!({"path": "/data/reports/../exports2/x"}),
            &["path_not_allowed"],
        ),
        (
            json!({"path": "/../../data/reports/../../../etc"}),
            &["path_not_allowed"],
        ),
        (
            json!({"path": "data/reports/q3.csv"}),
            &["path_not_allowed"],
        ),
        (
            json!({"path": "./data/reports/q3.csv"}),
            &["path_not_allowed"],
        ),
        (
            json!({"path": "/data/reports/q3.csv\u{0}.txt"}),
            &["path_not_allowed"],
        ),
        (json!({"filename": "/etc/passwd"}), &["path_not_allowed"]),
        (
            json!({"path": "/data/reports/a", "dest_path": "/etc/x"}),
            &["path_not_allowed"],
        ),
        (
            json!({"paths": ["/data/reports/a", "/etc/shadow"]}),
            &["path_not_allowed"],
        ),
        (
            json!({"options": {"path": "/etc/passwd"}}),
            &["path_not_allowed"],
        ),
        (json!({}), &["bad_params"]),
        (json!({"path": 5}), &["bad_params"]),
        (json!({"location": "/etc/passwd"}), &["bad_params"]),
    ];
    for (params, expect) in cases {
        assert_case(&c, "read_file", params.clone(), expect);
    }
}

#[test]
fn email_table() {
    let c = checker();
    let approve: &[&str] = &["requires_approval"];
    let cases: &[(Value, &[&str])] = &[
        (json!({"to": "bob@yourcompany.com"}), approve),
        (json!({"to": "Bob <bob@yourcompany.com>"}), approve),
        (
            json!({"to": "\"Smith, Bob\" <bob@yourcompany.com>"}),
            approve,
        ),
        (json!({"to": "BOB@YourCompany.COM"}), approve),
        (json!({"to": "<bob@yourcompany.com>"}), approve),
        (
            json!({"to": "Bob <\"bob smith\"@yourcompany.com>"}),
            approve,
        ),
        // mailparse reads a bare quoted local part as a display name: refused.
        (
            json!({"to": "\"bob smith\"@yourcompany.com"}),
            &["recipient_domain"],
        ),
        (
            json!({"to": "a@yourcompany.com; b@yourcompany.com"}),
            approve,
        ),
        (json!({"to": "bob@yourcompany.com."}), approve),
        (
            json!({"to": "a@yourcompany.com, b@yourcompany.com", "subject": "hi"}),
            approve,
        ),
        (
            json!({"to": ["a@yourcompany.com", "Carol <c@yourcompany.com>"]}),
            approve,
        ),
        (
            json!({"recipients": ["a@yourcompany.com"], "cc": null}),
            approve,
        ),
        (
            json!({"to": "a@yourcompany.com", "cc": "eve@evil.com"}),
            &["recipient_domain"],
        ),
        (
            json!({"to": "a@yourcompany.com", "bcc": ["eve@evil.com"]}),
            &["recipient_domain"],
        ),
        (
            json!({"to": "a@yourcompany.com, Eve <eve@evil.com>"}),
            &["recipient_domain"],
        ),
        (
            json!({"to": "Bob <bob@yourcompany.com.evil.net>"}),
            &["recipient_domain"],
        ),
        (
            json!({"to": "bob@evilyourcompany.com"}),
            &["recipient_domain"],
        ),
        (
            json!({"to": "bob@sub.yourcompany.com"}),
            &["recipient_domain"],
        ),
        (
            json!({"to": "\"bob@yourcompany.com\" <eve@evil.com>"}),
            &["recipient_domain"],
        ),
        (
            json!({"to": "bob@yourcompany.com@evil.com"}),
            &["recipient_domain"],
        ),
        (
            json!({"to": "bob@yourcompany.com\r\nBcc: eve@evil.com"}),
            &["recipient_domain"],
        ),
        (
            json!({"recipients": "team: a@yourcompany.com, e@evil.com;"}),
            &["recipient_domain"],
        ),
        (json!({"to": "junk"}), &["recipient_domain"]),
        (json!({"to": "bob@[10.0.0.1]"}), &["recipient_domain"]),
        (
            json!({"to": "eve@evil.com a@yourcompany.com"}),
            &["recipient_domain"],
        ),
        (
            json!({"to": "a@yourcompany.com;b@evil.com"}),
            &["recipient_domain"],
        ),
        (json!({"to": ",eve@yourcompany.com"}), &["recipient_domain"]),
        (
            json!({"to": "x: a@yourcompany.com; b@evil.com"}),
            &["recipient_domain"],
        ),
        (json!({"to": "a@(comment)evil.com"}), &["recipient_domain"]),
        (
            json!({"to": "Bob <a@yourcompany.com>, Bob <b@evil.com"}),
            &["recipient_domain"],
        ),
        (json!({}), &["bad_params"]),
        (json!({"to": ""}), &["bad_params"]),
        (json!({"to": 5}), &["bad_params"]),
        (json!({"to": [5]}), &["bad_params"]),
    ];
    for (params, expect) in cases {
        assert_case(&c, "send_email", params.clone(), expect);
    }
}

#[test]
fn email_wildcard_domains() {
    let c = checker();
    let cases: &[(&str, &[&str])] = &[
        ("a@yourcompany.com", &[]),
        ("a@x.corp.example", &[]),
        ("a@y.x.corp.example", &[]),
        ("a@corp.example", &["recipient_domain"]),
        ("a@xcorp.example", &["recipient_domain"]),
        ("a@x.corp.example.evil.net", &["recipient_domain"]),
        ("a@sub.yourcompany.com", &["recipient_domain"]),
    ];
    for (to, expect) in cases {
        assert_case(&c, "notify", json!({ "to": to }), expect);
    }
}

#[test]
fn requires_approval_is_needs_approval_unless_blocked() {
    let c = checker();
    let v = c.check("send_email", &json!({"to": "bob@yourcompany.com"}));
    assert_eq!(v.action, Action::NeedsApproval);
    assert!(!v.blocked);
    let v = c.check("send_email", &json!({"to": "eve@evil.com"}));
    assert_eq!(v.action, Action::Block);
    assert!(v.blocked);
    assert!(!v.findings.iter().any(|f| f.ty == "requires_approval"));
}

#[test]
fn generic_param_rules() {
    let c = checker();
    let cases: &[(Value, &[&str])] = &[
        (json!({"q": "hello world"}), &[]),
        (json!({}), &[]),
        (json!({"q": null}), &[]),
        (json!({"q": "hello world", "opts": {"mode": "fast"}}), &[]),
        (json!({"q": ["abc", "def"]}), &[]),
        // Allow patterns are anchored: a matching prefix is not enough.
        (json!({"q": "hello123"}), &["param_pattern"]),
        (json!({"q": "hello; rm -rf"}), &["param_pattern"]),
        (json!({"q": "drop tables"}), &["param_pattern"]),
        (
            json!({"q": "abcdefghijklmnopqrstuvwxyz"}),
            &["param_too_long"],
        ),
        (json!({"q": ["abc", "DROP"]}), &["param_pattern"]),
        (json!({"q": 12}), &["param_pattern"]),
        (json!({"q": {"a": "b"}}), &["bad_params"]),
        (json!({"q": [["x"]]}), &["bad_params"]),
        (json!({"opts": {"mode": "medium"}}), &["param_pattern"]),
        (json!({"opts": {"mode": "fastest"}}), &["param_pattern"]),
    ];
    for (params, expect) in cases {
        assert_case(&c, "search", params.clone(), expect);
    }
}

#[test]
fn unknown_tools_follow_default_action() {
    let deny = checker();
    assert_case(&deny, "rm_rf", json!({}), &["unknown_tool"]);
    assert_case(&deny, "", json!({}), &["unknown_tool"]);

    let allow = match ToolChecker::new(&policy(ToolDefault::Allow)) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_case(&allow, "weather", json!({"city": "Paris"}), &[]);
    assert_case(&allow, "weather", json!("Paris"), &["bad_params"]);
    // A listed tool called with other case still gets its rule.
    assert_case(
        &allow,
        "Database_Query",
        json!({"query": "SELECT * FROM credentials LIMIT 1"}),
        &["sql_blocked_table"],
    );
    // With an empty policy every tool is denied.
    assert_case(
        &ToolChecker::new(&ToolPolicy::default()).unwrap_or_else(|e| panic!("{e}")),
        "read_file",
        json!({"path": "/data/reports/a"}),
        &["unknown_tool"],
    );
}

#[test]
fn bad_params_shapes() {
    let c = checker();
    for params in [json!(null), json!("x"), json!([1, 2]), json!(3)] {
        assert_case(&c, "read_file", params, &["bad_params"]);
    }
    let mut deep = json!("/data/reports/a");
    for _ in 0..(MAX_PARAM_DEPTH + 5) {
        deep = json!({ "path": deep });
    }
    assert_case(&c, "read_file", deep, &["bad_params"]);
}

#[test]
fn bad_policies_are_clear_errors() {
    let bad_regex = |allow: &[&str], deny: &[&str]| {
        let mut p = policy(ToolDefault::Deny);
        let mut params = BTreeMap::new();
        params.insert(
            "cmd".to_string(),
            ParamRule {
                allow: s(allow),
                deny: s(deny),
                max_len: None,
            },
        );
        p.allowed_tools.push(ToolRule {
            name: "shell".into(),
            params,
            ..Default::default()
        });
        p
    };
    for p in [bad_regex(&["ls", "("], &[]), bad_regex(&[], &["[z-a]"])] {
        match ToolChecker::new(&p) {
            Err(e @ ToolPolicyError::BadRegex { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("`shell`") && msg.contains("`cmd`"), "{msg}");
            }
            other => panic!("expected BadRegex, got {other:?}"),
        }
        let v = check_tool(&p, "read_file", &json!({"path": "/data/reports/a"}));
        assert_eq!(types(&v), s(&["bad_policy"]));
        assert!(v.blocked);
        let (code, line) = cmd_check_tool(&p, "read_file", r#"{"path": "/data/reports/a"}"#);
        assert_eq!(code, 2, "{line}");
    }

    let with = |f: &dyn Fn(&mut ToolPolicy)| {
        let mut p = policy(ToolDefault::Deny);
        f(&mut p);
        ToolChecker::new(&p).err()
    };
    let dup = with(&|p| {
        p.allowed_tools.push(ToolRule {
            name: "READ_FILE".into(),
            ..Default::default()
        })
    });
    assert!(
        matches!(dup, Some(ToolPolicyError::DuplicateTool { .. })),
        "{dup:?}"
    );
    let rel = with(&|p| {
        p.allowed_tools.push(ToolRule {
            name: "ls".into(),
            allowed_paths: s(&["data/"]),
            ..Default::default()
        })
    });
    assert!(
        matches!(rel, Some(ToolPolicyError::BadPath { .. })),
        "{rel:?}"
    );
    let dom = with(&|p| {
        p.allowed_tools.push(ToolRule {
            name: "mail2".into(),
            allowed_domains: s(&["evil com"]),
            ..Default::default()
        })
    });
    assert!(
        matches!(dom, Some(ToolPolicyError::BadDomain { .. })),
        "{dom:?}"
    );
    let op = with(&|p| {
        p.allowed_tools.push(ToolRule {
            name: "db2".into(),
            allowed_operations: Some(s(&["SEL ECT"])),
            ..Default::default()
        })
    });
    assert!(
        matches!(op, Some(ToolPolicyError::BadOperation { .. })),
        "{op:?}"
    );
    let empty = with(&|p| p.allowed_tools.push(ToolRule::default()));
    assert!(
        matches!(empty, Some(ToolPolicyError::EmptyName)),
        "{empty:?}"
    );
}

#[test]
fn cmd_check_tool_exit_codes() {
    let p = policy(ToolDefault::Deny);
    let parse = |line: &str| -> Value {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };

    let (code, line) = cmd_check_tool(&p, "read_file", r#"{"path": "/data/reports/q3.csv"}"#);
    assert_eq!(code, 0);
    assert_eq!(parse(&line)["action"], "allow");

    let (code, line) = cmd_check_tool(&p, "read_file", r#"{"path": "/etc/passwd"}"#);
    assert_eq!(code, 1);
    let v = parse(&line);
    assert_eq!(v["action"], "block");
    assert_eq!(v["blocked"], true);
    assert_eq!(v["findings"][0]["kind"], "tool_policy");
    assert_eq!(v["findings"][0]["type"], "path_not_allowed");

    let (code, line) = cmd_check_tool(&p, "send_email", r#"{"to": "bob@yourcompany.com"}"#);
    assert_eq!(code, 1);
    let v = parse(&line);
    assert_eq!(v["action"], "needs_approval");
    assert_eq!(v["blocked"], false);

    let (code, line) = cmd_check_tool(&p, "read_file", "{not json");
    assert_eq!(code, 2);
    assert_eq!(parse(&line)["error"]["code"], "bad_request");

    // Duplicate keys: parsers disagree on which one wins, so refuse the input.
    for dup in [
        r#"{"path": "/etc/passwd", "path": "/data/reports/a"}"#,
        r#"{"o": {"path": "/etc/passwd", "path": "/data/reports/a"}}"#,
        r#"{"o": [{"a": 1, "a": 1}]}"#,
    ] {
        let (code, line) = cmd_check_tool(&p, "read_file", dup);
        assert_eq!(code, 2, "{dup}: {line}");
        assert!(line.contains("duplicate key"), "{line}");
    }
    match parse_params(
        r#"{"a": [1, -2, 3.5, true, null, "x", {"b": {}}], "c": 18446744073709551615}"#,
    ) {
        Ok(v) => assert_eq!(
            v,
            json!({"a": [1, -2, 3.5, true, null, "x", {"b": {}}], "c": 18446744073709551615u64})
        ),
        Err(e) => panic!("{e}"),
    }
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(
        parse_params(&deep).is_err(),
        "serde_json's depth limit applies"
    );

    // Valid JSON that is not an object is a refused call, not an input error.
    let (code, _) = cmd_check_tool(&p, "read_file", "[1]");
    assert_eq!(code, 1);
}

// --- Secret and PII scanning of parameters -------------------------------
// The real detectors belong to the scan module (stubs at the time of
// writing), so these tests check the wiring: a fake detector proves that
// every string and key is scanned and that findings become blocks; a second
// test checks that the real detectors' findings, whatever they are, block.

fn fake_secret(text: &str, out: &mut Vec<Finding>) {
    if let Some(i) = text.find("SEKRET") {
        out.push(Finding {
            kind: FindingKind::Secret,
            ty: "fake_key".into(),
            start: i,
            end: i + 6,
            score: 0.9,
            detail: String::new(),
        });
    }
}

fn fake_pii(text: &str, out: &mut Vec<Finding>) {
    if text.contains("123-45-6789") || text.contains('@') {
        out.push(Finding {
            kind: FindingKind::Pii,
            ty: "ssn".into(),
            start: 0,
            end: 11,
            score: 1.0,
            detail: String::new(),
        });
    }
}

const FAKE_DETECTORS: &[DetectorEntry] = &[
    (fake_secret, "secret_in_param", "a secret", false),
    (fake_pii, "pii_in_param", "personal data", true),
];

#[test]
fn wiring_secret_and_pii_findings_block() {
    let mut allow_all = match ToolChecker::new(&policy(ToolDefault::Allow)) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    allow_all.detectors = FAKE_DETECTORS;
    let c = &allow_all;
    assert_case(c, "weather", json!({"city": "Paris"}), &[]);
    assert_case(
        c,
        "weather",
        json!({"note": "key is xSEKRET"}),
        &["secret_in_param"],
    );
    assert_case(
        c,
        "weather",
        json!({"a": {"b": ["x", "SEKRET"]}}),
        &["secret_in_param"],
    );
    assert_case(c, "weather", json!({"SEKRET": 1}), &["secret_in_param"]);
    assert_case(
        c,
        "weather",
        json!({"ssn": "123-45-6789"}),
        &["pii_in_param"],
    );
    // Recipients of a rule with allowed_domains are addresses by design: not
    // personal-data findings there, but still everywhere else.
    assert_case(
        c,
        "send_email",
        json!({"to": "bob@yourcompany.com", "cc": ["a@yourcompany.com"]}),
        &["requires_approval"],
    );
    assert_case(
        c,
        "send_email",
        json!({"to": "bob@yourcompany.com", "body": "write to eve@x.com"}),
        &["pii_in_param"],
    );
    assert_case(
        c,
        "weather",
        json!({"to": "bob@yourcompany.com"}),
        &["pii_in_param"],
    );
    assert_case(
        c,
        "send_email",
        json!({"to": "bob@yourcompany.com", "x": {"to": "a@b.c"}}),
        &["pii_in_param"],
    );
    // Secrets are scanned in recipients too.
    assert_case(
        c,
        "send_email",
        json!({"to": "SEKRET <bob@yourcompany.com>"}),
        &["secret_in_param"],
    );
    // Listed tools are scanned too, and a call that needs approval is blocked.
    assert_case(
        c,
        "send_email",
        json!({"to": "bob@yourcompany.com", "body": "ssn 123-45-6789, key SEKRET"}),
        &["pii_in_param", "secret_in_param"],
    );
    let v = c.check("weather", &json!({"a": {"b": ["x", "--SEKRET"]}}));
    let f = v.findings.first().unwrap_or_else(|| panic!("no finding"));
    assert_eq!((f.start, f.end), (2, 8));
    assert!(
        f.detail.contains("`a.b[1]`") && f.detail.contains("fake_key"),
        "{}",
        f.detail
    );
    assert!(
        !f.detail.contains("SEKRET"),
        "detail must not echo the value"
    );
}

/// A long key above a long array: every element's path and finding detail
/// stay short (unbounded paths cost key length x elements: here 1 GB).
#[test]
fn long_keys_keep_paths_and_details_bounded() {
    let mut c = checker();
    c.detectors = FAKE_DETECTORS;
    let key = "k".repeat(100_000);
    let items: Vec<Value> = (0..10_000).map(|_| json!("SEKRET")).collect();
    let nested = json!({ "é".repeat(40): { "ü".repeat(40): { "x".repeat(300): "SEKRET" } } });
    for params in [json!({ key.clone(): items }), nested] {
        let v = c.check("weather_unknown_tool_name_that_is_long", &params);
        assert!(v.blocked);
        let v = c.check(&key, &params);
        assert!(v.blocked);
        assert!(
            v.findings.iter().all(|f| f.detail.len() < 400),
            "{:?}",
            v.findings.first()
        );
    }
    let allow = ToolChecker {
        detectors: FAKE_DETECTORS,
        ..ToolChecker::new(&policy(ToolDefault::Allow)).unwrap_or_else(|e| panic!("{e}"))
    };
    let v = allow.check(
        "weather",
        &json!({ key: (0..10_000).map(|_| json!("SEKRET")).collect::<Vec<_>>() }),
    );
    assert_eq!(v.findings.len(), 10_000);
    assert!(v.findings.iter().all(|f| f.detail.len() < 400));
}

#[test]
fn wiring_real_detectors_block_what_they_find() {
    let allow = match ToolChecker::new(&policy(ToolDefault::Allow)) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    for text in [
        "AKIAIOSFODNN7EXAMPLE",
        "ssn 078-05-1120",
        "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "nothing here",
    ] {
        let mut found = Vec::new();
        crate::scan::secrets::detect(text, &mut found);
        crate::scan::pii::detect(text, &mut found);
        let v = allow.check("weather", &json!({ "text": text }));
        assert_eq!(v.blocked, !found.is_empty(), "{text}: {:?}", v.findings);
    }
}

mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,40}".prop_map(Value::String),
            prop_oneof![
                Just("/data/reports/../x"),
                Just("a@yourcompany.com, b@evil.com"),
                Just("SELECT * FROM credentials"),
                Just("\"x\" <y@z>"),
            ]
            .prop_map(|s| Value::String(s.to_string())),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            let key = prop_oneof![
                Just("path".to_string()),
                Just("to".to_string()),
                Just("cc".to_string()),
                Just("query".to_string()),
                Just("q".to_string()),
                Just("opts".to_string()),
                Just("mode".to_string()),
                "[a-z_]{1,8}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(key, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_sql() -> impl Strategy<Value = String> {
        let word = prop_oneof![
            Just("SELECT"),
            Just("*"),
            Just("FROM"),
            Just("WITH"),
            Just("AS"),
            Just("("),
            Just(")"),
            Just("LIMIT"),
            Just("UNION"),
            Just("credentials"),
            Just("\"users_pii\""),
            Just("main."),
            Just(";"),
            Just("1"),
            Just("-"),
            Just("JOIN"),
            Just("ON"),
            Just("x"),
            Just("DELETE"),
            Just("RETURNING"),
            Just("'"),
            Just("--"),
            Just("/*"),
            Just(","),
            Just("[a]"),
            Just("`b`"),
            Just("OFFSET"),
            Just("FETCH"),
            Just("INTO"),
        ];
        prop_oneof![
            proptest::collection::vec(word, 0..30).prop_map(|w| w.join(" ")),
            ".{0,80}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn check_never_panics_on_any_params(params in arb_json(), tool in prop_oneof![
            Just("database_query"), Just("send_email"), Just("read_file"), Just("search"),
            Just("notify"), Just("unknown"),
        ]) {
            for c in [checker(), ToolChecker::new(&policy(ToolDefault::Allow)).unwrap_or_else(|e| panic!("{e}"))] {
                let v = c.check(tool, &params);
                prop_assert_eq!(v.blocked, v.action == Action::Block);
                prop_assert!(v.action != Action::Block || !v.findings.is_empty());
            }
        }

        /// The component comparison agrees with std's `Path::starts_with`
        /// on the policy module's lexical normalisation.
        #[test]
        fn path_check_agrees_with_std_paths(
            absolute in any::<bool>(),
            segs in proptest::collection::vec(prop_oneof![
                Just("data"), Just("reports"), Just("exports"), Just("reports_evil"),
                Just(".."), Just("."), Just(""), Just("etc"), Just("passwd"), Just("q3.csv"),
            ], 0..8),
        ) {
            let p = format!("{}{}", if absolute { "/" } else { "" }, segs.join("/"));
            let v = checker().check("read_file", &json!({ "path": p }));
            let norm = crate::policy::normalize_lexically(std::path::Path::new(&p));
            // A leading empty segment makes a relative-looking pick absolute.
            let expect = p.starts_with('/')
                && (norm.starts_with("/data/reports") || norm.starts_with("/data/exports"));
            prop_assert_eq!(!v.blocked, expect, "{} -> {:?}: {:?}", p, norm, v.findings);
        }

        #[test]
        fn check_never_panics_on_any_sql(q in arb_sql()) {
            let c = checker();
            for key in ["query", "sql"] {
                let v = c.check("database_query", &json!({ key: q.clone() }));
                prop_assert_eq!(v.blocked, v.action == Action::Block);
                prop_assert!(v.action == Action::Allow || v.blocked);
            }
            // Whatever precedes it, a DROP on its own line is either seen
            // (sql_operation) or makes the batch unparseable: never allowed.
            let v = c.check("database_query", &json!({ "query": format!("{q}\n;DROP TABLE t") }));
            prop_assert!(v.blocked, "{:?}", v.findings);
        }
    }
}

/// The daemon shares one checker between connection threads.
#[test]
fn checker_is_send_and_sync_and_matches_check_tool() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ToolChecker>();
    let p = policy(ToolDefault::Deny);
    let c = checker();
    for (tool, params) in [
        ("read_file", json!({"path": "/etc/passwd"})),
        ("send_email", json!({"to": "a@yourcompany.com"})),
        ("database_query", json!({"query": "SELECT 1 LIMIT 1"})),
    ] {
        let a = c.check(tool, &params);
        let b = check_tool(&p, tool, &params);
        assert_eq!((a.action, a.findings), (b.action, b.findings));
    }
}
