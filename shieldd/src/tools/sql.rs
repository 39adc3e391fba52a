//! SQL checks of a tool rule: statement kinds, blocked tables, row limit.
//!
//! The query is parsed, never substring-matched. Because the policy does not
//! say which database runs the query, it is parsed with several dialects
//! (SQLite, PostgreSQL, MySQL, generic): it is refused when none parses it,
//! and every dialect that does parse it must pass. A construct that one
//! database reads differently from another is thus judged by the strictest
//! reading.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FromTable, LimitClause, ObjectName, ObjectNamePart, Query, Select, SetExpr, Statement,
    TableFactor, TableObject, Value, Visit, Visitor,
};
use sqlparser::dialect::{Dialect, GenericDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

/// Longest query analysed; longer ones are refused. Bounds parse time and the
/// depth of left-deep ASTs (`1+1+1+...`), which are walked recursively.
pub(crate) const MAX_SQL_BYTES: usize = 16 * 1024;

/// Nesting depth allowed to the parser (sqlparser's default is 50).
const PARSER_RECURSION_LIMIT: usize = 50;

/// Most `JOIN`s accepted. sqlparser parses nested joins (`a JOIN b JOIN c
/// ON .. ON ..`) by recursion its depth limit does not count, ~4 KiB of stack
/// a level.
const MAX_JOINS: usize = 64;

/// Stack the analysis runs on. sqlparser's parser, visitor, printer and
/// destructors recurse as deep as the AST (`1+1+...` is thousands of levels
/// within [`MAX_SQL_BYTES`]) and its own stack growth does not cover every
/// path; an overflow would abort the daemon, so the analysis gets a stack
/// sized for the worst input of [`MAX_SQL_BYTES`] (the adversarial test
/// `sql_adversarial_inputs_are_bounded` passes with 4 MiB in a debug build:
/// 8x margin), allocated only when the caller's remaining stack is smaller.
const ANALYSIS_STACK_BYTES: usize = 32 * 1024 * 1024;

/// Functions that run SQL given as text, read or write files, run programs,
/// reach other servers or stall the database. A query calling one can do
/// what its own text does not show (`query_to_xml('SELECT * FROM users_pii',
/// ...)` names no table), so any call refuses the query.
const RISKY_FUNCTIONS: &[&str] = &[
    // PostgreSQL
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "query_to_xmlschema",
    "cursor_to_xml",
    "table_to_xml",
    "table_to_xml_and_xmlschema",
    "table_to_xmlschema",
    "schema_to_xml",
    "database_to_xml",
    "dblink",
    "dblink_exec",
    "dblink_open",
    "dblink_send_query",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "lo_import",
    "lo_export",
    "pg_sleep",
    "pg_sleep_for",
    "pg_sleep_until",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "set_config",
    // SQLite (and its shell)
    "load_extension",
    "readfile",
    "writefile",
    "edit",
    "fts3_tokenizer",
    // MySQL
    "load_file",
    "sleep",
    "benchmark",
    "sys_exec",
    "sys_eval",
    // SQL Server
    "xp_cmdshell",
    "openrowset",
    "opendatasource",
    "openquery",
];

/// The compiled SQL part of a tool rule.
#[derive(Debug, Clone)]
pub(crate) struct SqlRules {
    /// Upper-case statement kinds allowed; `None` = any.
    pub allowed_ops: Option<BTreeSet<String>>,
    /// Lower-case table names that may not be referenced.
    pub blocked_tables: BTreeSet<String>,
    /// Largest LIMIT allowed.
    pub max_rows: Option<u64>,
}

/// One refusal found in a query: finding type and detail.
pub(crate) type SqlIssue = (&'static str, String);

/// Check `sql` against `rules`; every refusal is returned (deduplicated).
pub(crate) fn check_sql(rules: &SqlRules, sql: &str) -> Vec<SqlIssue> {
    stacker::maybe_grow(ANALYSIS_STACK_BYTES, ANALYSIS_STACK_BYTES, || {
        check_sql_on_big_stack(rules, sql)
    })
}

fn check_sql_on_big_stack(rules: &SqlRules, sql: &str) -> Vec<SqlIssue> {
    if sql.len() > MAX_SQL_BYTES {
        return vec![(
            "sql_parse_error",
            format!(
                "query is {} bytes, longer than the {MAX_SQL_BYTES} analysed",
                sql.len()
            ),
        )];
    }
    // MySQL executes the body of `/*! ... */` comments, which every parser
    // here skips as a comment: the text the policy would judge is not the
    // text MySQL runs.
    if sql.contains("/*!") {
        return vec![(
            "sql_parse_error",
            "query contains a MySQL executable comment (/*! ... */)".to_string(),
        )];
    }

    // Counted on the raw text (strings and comments included): a bound on
    // work, not a policy, so over-counting only refuses absurd queries.
    let joins = sql.to_ascii_lowercase().matches("join").count();
    if joins > MAX_JOINS {
        return vec![(
            "sql_parse_error",
            format!("query has {joins} JOINs, more than the {MAX_JOINS} analysed"),
        )];
    }

    let dialects: [&dyn Dialect; 4] = [
        &SQLiteDialect {},
        &PostgreSqlDialect {},
        &MySqlDialect {},
        &GenericDialect {},
    ];
    let mut issues: BTreeSet<SqlIssue> = BTreeSet::new();
    let mut first_error: Option<String> = None;
    let mut parsed_any = false;
    for dialect in dialects {
        let parsed = Parser::new(dialect)
            .with_recursion_limit(PARSER_RECURSION_LIMIT)
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_statements());
        match parsed {
            Ok(statements) => {
                parsed_any = true;
                check_statements(rules, dialect, sql, &statements, &mut issues);
            }
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e.to_string());
                }
            }
        }
    }
    if !parsed_any {
        let why = first_error.unwrap_or_else(|| "no dialect parses it".to_string());
        return vec![("sql_parse_error", format!("query does not parse: {why}"))];
    }
    issues.into_iter().collect()
}

fn check_statements(
    rules: &SqlRules,
    dialect: &dyn Dialect,
    sql: &str,
    statements: &[Statement],
    issues: &mut BTreeSet<SqlIssue>,
) {
    if statements.is_empty() {
        issues.insert(("sql_parse_error", "query has no statement".to_string()));
        return;
    }
    let mut token_fallback = false;
    for (i, stmt) in statements.iter().enumerate() {
        let n = i + 1;
        let mut a = Analyzer {
            frames: Vec::new(),
            ops: BTreeSet::new(),
            tables: BTreeSet::new(),
            unsupported: None,
            functions: BTreeSet::new(),
        };
        // The analyzer never breaks; the result carries nothing.
        let _ = stmt.visit(&mut a);

        for f in &a.functions {
            issues.insert((
                "sql_function",
                format!("statement {n} calls `{f}`, which can run hidden SQL or reach outside the database"),
            ));
        }
        if let Some(why) = a.unsupported {
            issues.insert(("sql_parse_error", format!("statement {n}: {why}")));
        }
        if let Some(allowed) = &rules.allowed_ops {
            for op in &a.ops {
                if !allowed.contains(op) {
                    let list: Vec<&str> = allowed.iter().map(String::as_str).collect();
                    issues.insert((
                        "sql_operation",
                        format!(
                            "statement {n} performs {op}; allowed operations: {}",
                            list.join(", ")
                        ),
                    ));
                }
            }
        }
        for t in &a.tables {
            if rules.blocked_tables.contains(t) {
                issues.insert((
                    "sql_blocked_table",
                    format!("statement {n} references blocked table `{t}`"),
                ));
            }
        }
        if !is_query_or_dml(stmt) {
            token_fallback = true;
        }
        if let (Some(max), Statement::Query(q)) = (rules.max_rows, stmt) {
            if let Err(why) = check_limit(q, max) {
                issues.insert(("sql_max_rows", format!("statement {n}: {why}")));
            }
        }
    }
    // The AST walk sees table names in queries and DML; other statements
    // (DDL, PRAGMA, COPY, ...) name tables in fields it does not know, so for
    // them any word equal to a blocked table refuses the query.
    if token_fallback && !rules.blocked_tables.is_empty() {
        if let Ok(tokens) = Tokenizer::new(dialect, sql).tokenize() {
            for tok in tokens {
                if let Token::Word(w) = tok {
                    let v = w.value.to_lowercase();
                    if rules.blocked_tables.contains(&v) {
                        issues.insert((
                            "sql_blocked_table",
                            format!("a statement that is not a query names blocked table `{v}`"),
                        ));
                    }
                }
            }
        }
    }
}

fn is_query_or_dml(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::Query(_)
            | Statement::Insert(_)
            | Statement::Update { .. }
            | Statement::Delete(_)
            | Statement::Merge { .. }
    )
}

/// The statement kind as an upper-case keyword (`SELECT`, `INSERT`, ...).
fn op_name(stmt: &Statement) -> String {
    match stmt {
        Statement::Query(_) => "SELECT".to_string(),
        Statement::Insert(_) => "INSERT".to_string(),
        Statement::Update { .. } => "UPDATE".to_string(),
        Statement::Delete(_) => "DELETE".to_string(),
        Statement::Merge { .. } => "MERGE".to_string(),
        // Every other statement prints starting with its keyword (`DROP`,
        // `CREATE`, `PRAGMA`, `ATTACH`, ...): enough to compare against the
        // policy's list without enumerating sqlparser's hundreds of variants.
        other => {
            let text = other.to_string();
            let word: String = text
                .chars()
                .skip_while(|c| !c.is_ascii_alphabetic())
                .take_while(|c| c.is_ascii_alphabetic() || *c == '_')
                .collect();
            if word.is_empty() {
                "UNKNOWN".to_string()
            } else {
                word.to_ascii_uppercase()
            }
        }
    }
}

/// Check the LIMIT of a top-level query against `max`.
fn check_limit(q: &Query, max: u64) -> Result<(), String> {
    // `(SELECT ... LIMIT n)` without an outer limit is bounded by the inner
    // one; follow such parentheses a bounded number of times.
    let mut q = q;
    for _ in 0..PARSER_RECURSION_LIMIT {
        if let Some(n) = query_limit(q)? {
            return if n > max {
                Err(format!("LIMIT {n} exceeds max_rows {max}"))
            } else {
                Ok(())
            };
        }
        match q.body.as_ref() {
            SetExpr::Query(inner) => q = inner,
            _ => break,
        }
    }
    Err(format!("query has no LIMIT; max_rows is {max}"))
}

/// The literal row limit of one query level, `Ok(None)` when it has none.
fn query_limit(q: &Query) -> Result<Option<u64>, String> {
    if !q.pipe_operators.is_empty() {
        return Err("pipe operators (|>) are not supported with max_rows".to_string());
    }
    let limit_expr = match &q.limit_clause {
        Some(LimitClause::LimitOffset { limit: Some(e), .. }) => Some(e),
        Some(LimitClause::LimitOffset { limit: None, .. }) => None,
        Some(LimitClause::OffsetCommaLimit { limit, .. }) => Some(limit),
        None => None,
    };
    if let Some(e) = limit_expr {
        return literal_u64(e)
            .map(Some)
            .ok_or_else(|| "LIMIT is not a literal non-negative integer".to_string());
    }
    if let Some(fetch) = &q.fetch {
        if fetch.percent || fetch.with_ties {
            return Err("FETCH with PERCENT or WITH TIES is not bounded".to_string());
        }
        return match &fetch.quantity {
            // `FETCH FIRST ROW ONLY` means one row.
            None => Ok(Some(1)),
            Some(e) => literal_u64(e)
                .map(Some)
                .ok_or_else(|| "FETCH count is not a literal non-negative integer".to_string()),
        };
    }
    Ok(None)
}

fn literal_u64(e: &Expr) -> Option<u64> {
    let mut e = e;
    for _ in 0..PARSER_RECURSION_LIMIT {
        match e {
            Expr::Nested(inner) => e = inner,
            Expr::Value(v) => {
                return match &v.value {
                    Value::Number(s, _) => s.parse::<u64>().ok(),
                    _ => None,
                }
            }
            _ => return None,
        }
    }
    None
}

/// One query being walked and the CTE names it declares.
struct Frame {
    /// Address of the `Query` node, used only as an identity.
    query: usize,
    /// (address of the CTE body, lower-case CTE name), in declaration order.
    ctes: Vec<(usize, String)>,
    /// How many of `ctes` a table reference here may mean. All of them in
    /// the query body; inside the body of CTE i only those before i (a CTE
    /// naming itself, even under RECURSIVE, is taken to be the base table:
    /// the strict reading).
    visible: usize,
}

/// Collects the kinds and tables of one statement.
struct Analyzer {
    frames: Vec<Frame>,
    /// Upper-case operation kinds performed, including data-modifying CTEs.
    ops: BTreeSet<String>,
    /// Lower-case last identifiers of every base table referenced.
    tables: BTreeSet<String>,
    /// Set when the statement uses a construct the checks cannot judge.
    unsupported: Option<String>,
    /// Lower-case names of risky functions called.
    functions: BTreeSet<String>,
}

fn addr<T>(r: &T) -> usize {
    r as *const T as usize
}

fn last_ident(name: &ObjectName) -> String {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(id)) => id.value.to_lowercase(),
        Some(other) => other.to_string().to_lowercase(),
        None => String::new(),
    }
}

impl Analyzer {
    fn is_cte_name(&self, name: &str) -> bool {
        self.frames.iter().any(|f| {
            f.ctes
                .iter()
                .take(f.visible)
                .any(|(_, cte)| cte.as_str() == name)
        })
    }

    fn check_function(&mut self, name: &ObjectName) {
        let n = last_ident(name);
        if RISKY_FUNCTIONS.contains(&n.as_str()) {
            self.functions.insert(n);
        }
    }

    fn record_target(&mut self, t: &TableFactor) {
        if let TableFactor::Table { name, .. } = t {
            self.tables.insert(last_ident(name));
        }
    }

    /// `TABLE name` (PostgreSQL) names a table outside any ObjectName.
    fn scan_set_expr_tables(&mut self, body: &SetExpr) {
        let mut stack: Vec<&SetExpr> = vec![body];
        while let Some(e) = stack.pop() {
            match e {
                SetExpr::SetOperation { left, right, .. } => {
                    stack.push(left);
                    stack.push(right);
                }
                SetExpr::Table(t) => {
                    if let Some(name) = &t.table_name {
                        let n = name.value.to_lowercase();
                        if t.schema_name.is_some() || !self.is_cte_name(&n) {
                            self.tables.insert(n);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

impl Visitor for Analyzer {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        let a = addr(query);
        if let Some(top) = self.frames.last_mut() {
            if let Some(i) = top.ctes.iter().position(|(q, _)| *q == a) {
                top.visible = i;
            }
        }
        let ctes: Vec<(usize, String)> = query
            .with
            .as_ref()
            .map(|w| {
                w.cte_tables
                    .iter()
                    .map(|c| (addr(c.query.as_ref()), c.alias.name.value.to_lowercase()))
                    .collect()
            })
            .unwrap_or_default();
        let visible = ctes.len();
        self.frames.push(Frame {
            query: a,
            ctes,
            visible,
        });
        self.scan_set_expr_tables(&query.body);
        if !query.pipe_operators.is_empty() && self.unsupported.is_none() {
            self.unsupported = Some("pipe operators (|>) are not supported".to_string());
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        let a = addr(query);
        if self.frames.last().is_some_and(|f| f.query == a) {
            self.frames.pop();
        }
        if let Some(top) = self.frames.last_mut() {
            if top.ctes.iter().any(|(q, _)| *q == a) {
                top.visible = top.ctes.len();
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        let name = last_ident(relation);
        // A qualified name (`main.x`) is never a CTE.
        if relation.0.len() > 1 || !self.is_cte_name(&name) {
            self.tables.insert(name);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            self.check_function(&f.name);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Function { name, .. } => self.check_function(name),
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => self.check_function(name),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        // SELECT ... INTO creates a table (PostgreSQL, SQL Server).
        if let Some(into) = &select.into {
            self.ops.insert("CREATE".to_string());
            for t in &into.targets {
                match t {
                    Expr::Identifier(id) => {
                        self.tables.insert(id.value.to_lowercase());
                    }
                    Expr::CompoundIdentifier(ids) => {
                        if let Some(id) = ids.last() {
                            self.tables.insert(id.value.to_lowercase());
                        }
                    }
                    _ => {}
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        self.ops.insert(op_name(statement));
        // The target of a DML statement is always a base table, even when a
        // CTE of the same name is in scope, so it is recorded here without
        // the CTE lookup of `pre_visit_relation`.
        match statement {
            Statement::Insert(ins) => {
                if let TableObject::TableName(n) = &ins.table {
                    self.tables.insert(last_ident(n));
                }
            }
            Statement::Update(upd) => self.record_target(&upd.table.relation),
            Statement::Delete(d) => {
                // Multi-table DELETE names its targets outside the relation fields.
                for t in &d.tables {
                    self.tables.insert(last_ident(t));
                }
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
                for twj in from {
                    self.record_target(&twj.relation);
                }
            }
            Statement::Merge(m) => self.record_target(&m.table),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}
