//! Policy -> Landlock ruleset.
//!
//! Landlock only grants, so a `deny` path inside an allowed tree is carved
//! out: instead of the tree's root, each sibling on the way down to the denied
//! path is granted, and the directories on that way get `ReadDir` only (their
//! entries can be listed, nothing beneath the denied path can be opened).
//! The ruleset is built in the parent; the child only calls
//! `landlock_restrict_self` on the returned fd (no allocation after fork).

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use landlock::{
    make_bitflags, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort,
    Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, ABI,
};

/// Errors building the ruleset.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    /// The kernel's Landlock is older than the policy needs.
    #[error("{0}")]
    Unsupported(String),
    /// The crate or kernel refused the ruleset.
    #[error("Landlock ruleset: {0}")]
    Ruleset(#[from] landlock::RulesetError),
    /// A path could not be opened for a rule, or its rule was refused.
    #[error("Landlock rule for {path}: {source}")]
    Path {
        /// The path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// The Landlock ABI version of the running kernel (0 = none).
pub fn kernel_abi() -> i32 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    // only returns the ABI version; no memory is passed.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    if v < 0 {
        0
    } else {
        v as i32
    }
}

/// What the policy asks of Landlock, with every path absolute and resolved.
#[derive(Debug, Clone, Default)]
pub struct FsSpec {
    /// Read (+ execute when `exec` is `None`).
    pub read: Vec<PathBuf>,
    /// Read + write + create.
    pub write: Vec<PathBuf>,
    /// Carved out of both.
    pub deny: Vec<PathBuf>,
    /// Files that may be executed; `None` = anything under `read`.
    pub exec: Option<Vec<PathBuf>>,
    /// TCP ports for connect; `None` = connect not restricted by Landlock.
    pub connect_ports: Option<Vec<u16>>,
    /// TCP ports for bind.
    pub bind_ports: Vec<u16>,
    /// Restrict TCP at all (needs ABI 4).
    pub restrict_net: bool,
}

/// One computed rule (also used to show what a policy grants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsRule {
    /// Path the rule is attached to.
    pub path: PathBuf,
    /// Rights beneath it.
    pub access: BitFlags<AccessFs>,
}

fn read_access(exec_everywhere: bool) -> BitFlags<AccessFs> {
    let base = make_bitflags!(AccessFs::{ReadFile | ReadDir});
    if exec_everywhere {
        base | AccessFs::Execute
    } else {
        base
    }
}

fn write_access() -> BitFlags<AccessFs> {
    AccessFs::from_all(ABI::V5) & !AccessFs::Execute
}

/// Canonical form when the path exists, the lexical one otherwise.
fn canon(p: &Path) -> PathBuf {
    resolve(p)
        .map(|(r, _)| r)
        .unwrap_or_else(|| crate::policy::normalize_lexically(p))
}

/// The roots of `spec` with the rights each grants, in rule order.
fn roots(spec: &FsSpec) -> Vec<(&Path, BitFlags<AccessFs>)> {
    let exec_everywhere = spec.exec.is_none();
    let mut r: Vec<(&Path, BitFlags<AccessFs>)> = Vec::new();
    r.extend(
        spec.read
            .iter()
            .map(|p| (p.as_path(), read_access(exec_everywhere))),
    );
    r.extend(spec.write.iter().map(|p| (p.as_path(), write_access())));
    if let Some(exec) = &spec.exec {
        let rights = make_bitflags!(AccessFs::{Execute | ReadFile});
        r.extend(exec.iter().map(|p| (p.as_path(), rights)));
    }
    r
}

/// Compute the rules for the file-system part of `spec`.
pub fn fs_rules(spec: &FsSpec) -> Vec<FsRule> {
    let denies: Vec<PathBuf> = spec.deny.iter().map(|d| canon(d)).collect();
    let mut out = Vec::new();
    for (p, access) in roots(spec) {
        grant(
            p,
            access,
            &denies,
            &mut out,
            &mut HashSet::new(),
            0,
            &mut None,
        );
    }
    out
}

/// What a carved root's rules were worked out from, to tell whether they
/// still hold.
#[derive(Debug, Default)]
struct Inputs {
    /// Every path resolved (the root, symlinks met on the way), with what
    /// it resolved to and whether that was a directory.
    resolved: Vec<(PathBuf, Option<(PathBuf, bool)>)>,
    /// Every directory listed, with its stamp taken before the listing.
    listed: Vec<(PathBuf, Option<DirStamp>)>,
}

/// Identity and last change of a listed directory: an entry created,
/// removed or renamed in it moves its mtime; a directory replaced (or
/// mounted over) changes device or inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirStamp {
    dev: u64,
    ino: u64,
    mode: u32,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn dir_stamp(p: &Path) -> Option<DirStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(p).ok()?;
    Some(DirStamp {
        dev: m.dev(),
        ino: m.ino(),
        mode: m.mode(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// A directory changed less than this before it was listed is not cached:
/// a second change within the file system's timestamp granularity could
/// leave its mtime as it was (git's "racy" entries, same remedy).
const RACY: std::time::Duration = std::time::Duration::from_secs(2);

fn racy(s: &DirStamp) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(i64::MAX);
    // mtime alone: a change to the listing moves it; a ctime moved by
    // chmod or utimes alone changes no listing (and is still compared).
    now.saturating_sub(s.mtime.0) < RACY.as_secs() as i64 + 1
}

impl Inputs {
    /// Whether working the rules out again would give the same list. The
    /// rules are a function of exactly these inputs (plus the denies and
    /// rights, which are the key), so equal inputs mean equal rules.
    fn still_hold(&self) -> bool {
        self.listed.iter().all(|(p, s)| dir_stamp(p) == *s)
            && self
                .resolved
                .iter()
                .all(|(p, r)| resolve(p).as_ref() == r.as_ref())
    }

    fn cacheable(&self) -> bool {
        !self.listed.is_empty()
            && self
                .listed
                .iter()
                .all(|(_, s)| s.as_ref().is_some_and(|s| !racy(s)))
    }
}

/// The real path of `p` and whether it is a directory; `None` when it does
/// not exist. One open(O_PATH), fstat and readlink of its /proc/self/fd
/// entry: realpath(3) reads the link of every prefix of the path (each a
/// walk from the root), and the daemon resolves every root and every
/// symlink met again for each session. realpath remains the fallback.
fn resolve(p: &Path) -> Option<(PathBuf, bool)> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    let slow = || {
        let real = fs::canonicalize(p).ok()?;
        let is_dir = real.is_dir();
        Some((real, is_dir))
    };
    if !p.is_absolute() {
        return slow();
    }
    let f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(p)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(_) => return slow(),
    };
    let Ok(meta) = f.metadata() else {
        return slow();
    };
    match fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())) {
        // A path the kernel could not express from our root (" (deleted)",
        // another mount namespace's view) is left to realpath.
        Ok(c) if c.is_absolute() && !c.as_os_str().as_bytes().ends_with(b" (deleted)") => {
            Some((c, meta.is_dir()))
        }
        _ => slow(),
    }
}

/// A root as given, its rights and the resolved denies.
type CacheKey = (PathBuf, u64, Vec<PathBuf>);
type CarveCache = std::collections::HashMap<CacheKey, (Vec<FsRule>, Inputs)>;

/// Carved roots' rules, kept by the daemon across sessions. Revalidated on
/// every use, never trusted by age: a stamp check is a few statx and
/// realpath calls, a fraction of listing and resolving /etc again, and a
/// time-to-live would let a session run under rules one change stale.
static CARVE_CACHE: std::sync::Mutex<Option<CarveCache>> = std::sync::Mutex::new(None);

/// Times [`fs_rules_cached`] reused a carved root's rules (for tests).
static CACHE_HITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many times a carved root's rules were reused since start.
pub fn carve_cache_hits() -> u64 {
    CACHE_HITS.load(std::sync::atomic::Ordering::Relaxed)
}

/// [`fs_rules`], reusing the rules of a root whose carving (the listing of
/// the directories above a denied path) was worked out before and whose
/// inputs are unchanged. Roots with nothing carved are computed directly
/// (one realpath each; nothing to save).
pub fn fs_rules_cached(spec: &FsSpec) -> Vec<FsRule> {
    const MAX_ENTRIES: usize = 64;
    let denies: Vec<PathBuf> = spec.deny.iter().map(|d| canon(d)).collect();
    let mut out = Vec::new();
    let mut guard = CARVE_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = guard.get_or_insert_with(Default::default);
    for (p, access) in roots(spec) {
        let key: CacheKey = (p.to_path_buf(), access.bits(), denies.clone());
        if let Some((rules, inputs)) = cache.get(&key) {
            if inputs.still_hold() {
                CACHE_HITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                out.extend(rules.iter().cloned());
                continue;
            }
            cache.remove(&key);
        }
        let mut rules = Vec::new();
        let mut inputs = Some(Inputs::default());
        grant(
            p,
            access,
            &denies,
            &mut rules,
            &mut HashSet::new(),
            0,
            &mut inputs,
        );
        out.extend(rules.iter().cloned());
        if let Some(inputs) = inputs.filter(Inputs::cacheable) {
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
            cache.insert(key, (rules, inputs));
        }
    }
    out
}

fn grant(
    path: &Path,
    access: BitFlags<AccessFs>,
    denies: &[PathBuf],
    out: &mut Vec<FsRule>,
    seen: &mut HashSet<PathBuf>,
    depth: usize,
    inputs: &mut Option<Inputs>,
) {
    // Rules attach to inodes, so compare real paths: a symlink into a denied
    // tree must not smuggle it back in.
    let r = resolve(path);
    if let Some(i) = inputs {
        i.resolved.push((path.to_path_buf(), r.clone()));
    }
    let Some((real, is_dir)) = r else {
        tracing::debug!(path = %path.display(), "policy path does not exist; no rule");
        return;
    };
    grant_real(real, is_dir, access, denies, out, seen, depth, inputs);
}

/// Whether `p` is `d` or lies under it, for paths that are absolute and
/// clean (canonical, or lexically normalised: no `.`, `..`, `//` or
/// trailing `/` but the root's), as both sides are here. The same answer as
/// `Path::starts_with`, by bytes: carving /etc compares each of its ~150
/// entries with every deny twice, and the component walk was a quarter of
/// the ruleset's CPU.
fn within(p: &Path, d: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (p, d) = (p.as_os_str().as_bytes(), d.as_os_str().as_bytes());
    match p.strip_prefix(d) {
        Some(rest) => rest.is_empty() || rest.first() == Some(&b'/') || d.last() == Some(&b'/'),
        None => false,
    }
}

/// `real` is canonical; entries of a canonical directory that are not
/// symlinks are canonical too, which saves a realpath per entry when
/// carving a large directory like /etc.
#[allow(clippy::too_many_arguments)]
fn grant_real(
    real: PathBuf,
    is_dir: bool,
    access: BitFlags<AccessFs>,
    denies: &[PathBuf],
    out: &mut Vec<FsRule>,
    seen: &mut HashSet<PathBuf>,
    depth: usize,
    inputs: &mut Option<Inputs>,
) {
    if depth > 32 || !seen.insert(real.clone()) {
        return;
    }
    if denies.iter().any(|d| within(&real, d)) {
        return;
    }
    let inner = denies.iter().any(|d| within(d, &real) && *d != real);
    if !inner || !is_dir {
        let access = if is_dir {
            access
        } else {
            access & AccessFs::from_file(ABI::V5)
        };
        out.push(FsRule { path: real, access });
        return;
    }
    out.push(FsRule {
        path: real.clone(),
        access: access & AccessFs::ReadDir,
    });
    if let Some(i) = inputs {
        // Stamped before listing, so a change during the listing shows.
        i.listed.push((real.clone(), dir_stamp(&real)));
    }
    let Ok(entries) = fs::read_dir(&real) else {
        return;
    };
    for e in entries.flatten() {
        match e.file_type() {
            Ok(t) if !t.is_symlink() => grant_real(
                e.path(),
                t.is_dir(),
                access,
                denies,
                out,
                seen,
                depth + 1,
                inputs,
            ),
            _ => grant(&e.path(), access, denies, out, seen, depth + 1, inputs),
        }
    }
}

/// Expand `exec.allow` globs to what Landlock can grant: files and
/// directories, plus the ELF interpreters (PT_INTERP) of the files, which
/// the kernel opens for execution too. The glob expansion is the monitor's,
/// so the kernel-side allowlist and Landlock agree.
pub fn expand_exec_allow(globs: &[String]) -> Result<Vec<PathBuf>, String> {
    use crate::monitor::PathRule;
    let pats: Vec<&str> = globs.iter().map(String::as_str).collect();
    let rules = crate::monitor::expand_globs(&pats, 4096).map_err(|e| e.to_string())?;
    let mut found: Vec<PathBuf> = Vec::new();
    for r in rules {
        match r {
            PathRule::Exact(p) | PathRule::Dir(p) => {
                if p.exists() {
                    found.push(p)
                }
            }
            // `/usr/bin/python3*`: the files of that directory whose names
            // start so.
            PathRule::NamePrefix(p) => {
                let (Some(dir), Some(prefix)) = (p.parent(), p.file_name()) else {
                    continue;
                };
                let prefix = prefix.to_string_lossy().into_owned();
                let Ok(rd) = fs::read_dir(dir) else { continue };
                for e in rd.flatten().take(100_000) {
                    if e.file_name().to_string_lossy().starts_with(&prefix) {
                        found.push(e.path());
                    }
                }
            }
        }
    }
    let mut interps: Vec<PathBuf> = found
        .iter()
        .filter(|p| p.is_file())
        .filter_map(|p| elf_interpreter(p))
        .collect();
    found.append(&mut interps);
    found.sort();
    found.dedup();
    Ok(found)
}

/// The PT_INTERP of an ELF file, if it has one.
pub fn elf_interpreter(path: &Path) -> Option<PathBuf> {
    // Program headers and the interpreter string sit at the start of the
    // file; reading 64 KiB avoids loading multi-megabyte binaries.
    let mut buf = Vec::with_capacity(65536);
    fs::File::open(path)
        .ok()?
        .take(65536)
        .read_to_end(&mut buf)
        .ok()?;
    let header = goblin::elf::Elf::parse_header(&buf).ok()?;
    let ctx = goblin::container::Ctx::new(
        if header.e_ident[goblin::elf::header::EI_CLASS] == goblin::elf::header::ELFCLASS64 {
            goblin::container::Container::Big
        } else {
            goblin::container::Container::Little
        },
        goblin::container::Endian::from(header.e_ident[goblin::elf::header::EI_DATA] == 1),
    );
    let phdrs = goblin::elf::ProgramHeader::parse(
        &buf,
        header.e_phoff as usize,
        header.e_phnum as usize,
        ctx,
    )
    .ok()?;
    let ph = phdrs
        .iter()
        .find(|p| p.p_type == goblin::elf::program_header::PT_INTERP)?;
    let start = ph.p_offset as usize;
    let bytes = buf.get(start..start.checked_add(ph.p_filesz as usize)?)?;
    let s = std::str::from_utf8(bytes).ok()?.trim_end_matches('\0');
    Some(PathBuf::from(s))
}

/// Everything a built ruleset is a function of, besides the inodes its
/// path rules were bound to: the rules (paths and rights), the handled file
/// rights, the network part and the ABI (which decides the scopes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RulesetKey {
    rules: Vec<(PathBuf, u64)>,
    handled: u64,
    net: Option<(Option<Vec<u16>>, Vec<u16>)>,
    abi: i32,
}

/// A built ruleset and the (device, inode) each rule path named when its
/// rule was added.
struct BuiltRuleset {
    fd: OwnedFd,
    bound: Vec<(u64, u64)>,
    /// Stamps of the rules' parent directories, taken before the rules
    /// were bound; only those not changed within [`RACY`] of the stamp.
    parents: std::collections::HashMap<PathBuf, DirStamp>,
}

/// Built rulesets, kept by the daemon across sessions (a ruleset fd can be
/// applied by any number of `landlock_restrict_self` calls; it is never
/// changed after it is built). Revalidated on every use like the carve cache.
static RULESET_CACHE: std::sync::Mutex<
    Option<std::collections::HashMap<RulesetKey, BuiltRuleset>>,
> = std::sync::Mutex::new(None);

/// Times [`build_ruleset`] handed out a built ruleset again (for tests).
static RULESET_HITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many times a built ruleset was reused since start.
pub fn ruleset_cache_hits() -> u64 {
    RULESET_HITS.load(std::sync::atomic::Ordering::Relaxed)
}

/// (device, inode) of what `path` names now, without following a final
/// symlink (rule paths are canonical, and the rule was bound the same way).
fn path_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

/// Whether every rule path still names the inode its rule was bound to.
/// Landlock binds a rule to the inode at add time, so a path whose file was
/// replaced (renamed over, a directory swapped, a mount on top) would be
/// governed by the old inode's rule: then the ruleset is built afresh.
///
/// A rule whose parent directory has the stamp it had before the rule was
/// bound needs no check of its own: an entry created, removed or renamed
/// in a directory moves its mtime, and a directory replaced changes device
/// or inode, so every name in it still names the same inode (a mount on an
/// entry changes no stamp, but Landlock finds the rule of the covered
/// inode on the way up from the mount, the same place a fresh rule would
/// be). One statx per directory instead of one per rule (/etc: ~150).
fn still_bound(
    rules: &[(PathBuf, u64)],
    bound: &[(u64, u64)],
    parents: &std::collections::HashMap<PathBuf, DirStamp>,
) -> bool {
    let mut unchanged: std::collections::HashMap<&Path, bool> = Default::default();
    rules.len() == bound.len()
        && rules.iter().zip(bound).all(|((p, _), id)| {
            let parent_same = p.parent().is_some_and(|d| {
                *unchanged.entry(d).or_insert_with(|| {
                    parents
                        .get(d)
                        .is_some_and(|s| dir_stamp(d).as_ref() == Some(s))
                })
            });
            parent_same || path_id(p).as_ref() == Some(id)
        })
}

/// Stamps of the distinct parent directories of `rules`, leaving out any
/// changed within [`RACY`] (a change in the same timestamp tick after the
/// stamp would not show).
fn parent_stamps(rules: &[FsRule]) -> std::collections::HashMap<PathBuf, DirStamp> {
    let mut out = std::collections::HashMap::new();
    let mut seen: HashSet<&Path> = HashSet::new();
    for r in rules {
        let Some(d) = r.path.parent() else { continue };
        if !seen.insert(d) {
            continue;
        }
        if let Some(s) = dir_stamp(d).filter(|s| !racy(s)) {
            out.insert(d.to_path_buf(), s);
        }
    }
    out
}

/// Build the ruleset; the returned fd is handed to `landlock_restrict_self`
/// in the child. `abi` is the kernel's ABI, already checked by the caller
/// against what the policy needs. A ruleset built before from the same
/// inputs is handed out again (a duplicate of its fd) when every rule path
/// still names the inode its rule was bound to: one statx per rule instead
/// of an open and a `landlock_add_rule` each, for the daemon's sessions.
pub fn build_ruleset(spec: &FsSpec, abi: i32) -> Result<OwnedFd, LandlockError> {
    build_ruleset_from(spec, abi, fs_rules_cached(spec))
}

/// [`build_ruleset`] for rules already worked out from `spec`.
fn build_ruleset_from(
    spec: &FsSpec,
    abi: i32,
    rules: Vec<FsRule>,
) -> Result<OwnedFd, LandlockError> {
    const MAX_ENTRIES: usize = 16;
    // What the ruleset handles (best effort: the kernel's ABI, at most V5);
    // a rule may grant only that.
    let handled = (AccessFs::from_all(ABI::from(abi)) & AccessFs::from_all(ABI::V5)).bits();
    let key = RulesetKey {
        rules: rules
            .iter()
            .map(|r| (r.path.clone(), r.access.bits() & handled))
            .collect(),
        handled,
        net: (spec.restrict_net && abi >= 4)
            .then(|| (spec.connect_ports.clone(), spec.bind_ports.clone())),
        abi,
    };
    let mut guard = RULESET_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = guard.get_or_insert_with(Default::default);
    if let Some(built) = cache.get(&key) {
        if still_bound(&key.rules, &built.bound, &built.parents) {
            if let Ok(fd) = built.fd.try_clone() {
                RULESET_HITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(fd);
            }
        }
        cache.remove(&key);
    }
    // Stamped before the rules are bound, so a change in between shows.
    let parents = parent_stamps(&rules);
    let (fd, bound) = build_fresh(spec, abi, &rules, handled)?;
    // Kept only when a duplicate can be handed out; otherwise this session
    // still gets its ruleset and the next one builds again.
    if let Ok(kept) = fd.try_clone() {
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(
            key,
            BuiltRuleset {
                fd: kept,
                bound,
                parents,
            },
        );
    }
    Ok(fd)
}

/// Whether [`build_session_rulesets`] may split a session's rules in two
/// layers (set by the daemon, whose sessions can share the first).
static LAYERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Let [`build_session_rulesets`] give sessions a shared, cached ruleset
/// plus a small one of their own. For a long-running process (the daemon):
/// a standalone `run` builds once and would only pay for the second layer.
pub fn set_layered(on: bool) {
    LAYERED.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// The Landlock rulesets of one session, applied in order by the agent
/// (Landlock layers intersect: an access must be granted by every layer).
#[derive(Debug)]
pub struct SessionRulesets {
    /// The policy's ruleset, shared by the sessions of one policy.
    pub shared: OwnedFd,
    /// The session's own layer when the rules were split; `None` when
    /// `shared` already holds everything, the session's directory included.
    pub own: Option<OwnedFd>,
}

/// The rulesets for `spec` plus read-write access to `session_dir`, a
/// directory made for this session (a new inode every time, so a ruleset
/// naming it could never be reused).
///
/// When layering is on ([`set_layered`]), no deny path of `spec` lies
/// under or above the session directory's parent `P` and no root of `spec`
/// is `P` or above it: the shared layer is
/// `spec` plus `P` itself (same inode every session: built once, cached),
/// and the session's own layer grants `spec`'s roots uncarved plus
/// `session_dir`. What both allow is exactly what one ruleset of `spec`
/// plus `session_dir` allows: outside `P` the own layer grants at least
/// what the carved shared one does (its roots, and every shared rule the
/// roots do not cover, such as a symlink's target outside them); under `P`
/// only roots below `P` grant anything in the own layer, and nothing is
/// carved there (no deny), so the shared layer's extra grant of `P` adds
/// nothing beyond those roots, and other sessions' directories there are
/// refused by the own layer. Otherwise one ruleset, as before.
pub fn build_session_rulesets(
    spec: &FsSpec,
    session_dir: &Path,
    abi: i32,
) -> Result<SessionRulesets, LandlockError> {
    let mut whole = spec.clone();
    whole.write.push(session_dir.to_path_buf());
    if !LAYERED.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(SessionRulesets {
            shared: build_ruleset(&whole, abi)?,
            own: None,
        });
    }
    // The own layer: the roots as granted without carving (resolved, one
    // rule each), then every shared rule they do not cover.
    let mut uncarved = spec.clone();
    uncarved.deny.clear();
    uncarved.write.push(session_dir.to_path_buf());
    uncarved.restrict_net = false;
    let mut own_rules = fs_rules(&uncarved);
    let roots = own_rules.clone();
    // Split only when nothing is carved at or under P and no root grants
    // P or above it: then under P the roots grant exactly what their rules
    // say, and the shared grant of P cannot widen anything there.
    let denies: Vec<PathBuf> = spec.deny.iter().map(|d| canon(d)).collect();
    let parent = session_dir.parent().map(canon).filter(|p| {
        p.is_absolute()
            && p.as_path() != Path::new("/")
            && !denies.iter().any(|d| within(d, p) || within(p, d))
            && !roots.iter().any(|u| within(p, &u.path))
    });
    let Some(parent) = parent else {
        return Ok(SessionRulesets {
            shared: build_ruleset(&whole, abi)?,
            own: None,
        });
    };
    let mut base = spec.clone();
    base.write.push(parent.clone());
    let shared_rules = fs_rules_cached(&base);
    for r in &shared_rules {
        // Under P the roots decide (the shared grant of P is what this
        // layer must not repeat).
        if within(&r.path, &parent) {
            continue;
        }
        let covered = roots
            .iter()
            .filter(|u| within(&r.path, &u.path))
            .fold(BitFlags::<AccessFs>::empty(), |a, u| a | u.access);
        if !covered.contains(r.access) {
            own_rules.push(r.clone());
        }
    }
    let shared = build_ruleset_from(&base, abi, shared_rules)?;
    let handled = (AccessFs::from_all(ABI::from(abi)) & AccessFs::from_all(ABI::V5)).bits();
    let (own, _) = build_fresh(&uncarved, abi, &own_rules, handled)?;
    Ok(SessionRulesets {
        shared,
        own: Some(own),
    })
}

/// Build a ruleset from scratch, with the (device, inode) each rule was
/// bound to.
fn build_fresh(
    spec: &FsSpec,
    abi: i32,
    rules: &[FsRule],
    handled: u64,
) -> Result<(OwnedFd, Vec<(u64, u64)>), LandlockError> {
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(ABI::V5))?;
    if spec.restrict_net && abi >= 4 {
        let mut net = BitFlags::<AccessNet>::empty();
        if spec.connect_ports.is_some() {
            net |= AccessNet::ConnectTcp;
        }
        net |= AccessNet::BindTcp;
        ruleset = ruleset.handle_access(net)?;
    }
    if abi >= 6 {
        ruleset = ruleset.scope(Scope::Signal | Scope::AbstractUnixSocket)?;
    }
    let mut created = ruleset.create()?;
    if spec.restrict_net && abi >= 4 {
        for p in spec.connect_ports.iter().flatten() {
            created = created.add_rule(NetPort::new(*p, AccessNet::ConnectTcp))?;
        }
        for p in &spec.bind_ports {
            created = created.add_rule(NetPort::new(*p, AccessNet::BindTcp))?;
        }
    }
    let fd: Option<OwnedFd> = created.into();
    let fd = fd.ok_or_else(|| {
        LandlockError::Unsupported(
            "Landlock is not enabled in this kernel (add `landlock` to the lsm= boot parameter)"
                .into(),
        )
    })?;
    let bound = add_path_rules(&fd, rules, handled)?;
    Ok((fd, bound))
}

/// Add the path rules with raw system calls: each path is opened O_PATH
/// relative to its parent's descriptor when the rule before it was in the
/// same directory (carving /etc gives a hundred siblings in a row), and the
/// rule's rights are already masked for files by [`fs_rules`], so neither
/// a walk from `/` nor an fstat per rule is needed (the crate's
/// `PathBeneath` does both). About a third of the ruleset's cost. Returns
/// the (device, inode) of each rule's descriptor: exactly the inode the
/// rule was bound to, with no window for a rename between open and stat.
fn add_path_rules(
    ruleset: &OwnedFd,
    rules: &[FsRule],
    handled: u64,
) -> Result<Vec<(u64, u64)>, LandlockError> {
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;

    #[repr(C, packed)]
    struct PathBeneathAttr {
        allowed_access: u64,
        parent_fd: i32,
    }
    let open_at = |dir: libc::c_int, p: &Path| -> std::io::Result<OwnedFd> {
        let c = CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: openat on a valid NUL-terminated path; O_PATH opens
        // nothing for reading and follows no final symlink (paths are
        // canonical).
        let fd = unsafe {
            libc::openat(
                dir,
                c.as_ptr(),
                libc::O_PATH | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a descriptor just opened and owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let path_err = |path: &Path, e: std::io::Error| LandlockError::Path {
        path: path.to_path_buf(),
        source: e,
    };
    let mut parent: Option<(PathBuf, OwnedFd)> = None;
    let mut bound = Vec::with_capacity(rules.len());
    for r in rules {
        let dir = r.path.parent().map(Path::to_path_buf);
        let same = matches!((&parent, &dir), (Some((p, _)), Some(d)) if p == d);
        let fd = match (same, &parent, r.path.file_name()) {
            (true, Some((_, pfd)), Some(name)) => open_at(pfd.as_raw_fd(), Path::new(name)),
            _ => open_at(libc::AT_FDCWD, &r.path),
        }
        .map_err(|e| path_err(&r.path, e))?;
        // SAFETY: fstat on a live descriptor (O_PATH allows it) into a
        // zeroed stat buffer of the libc layout that outlives the call.
        let st = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd.as_raw_fd(), &mut st) != 0 {
                return Err(path_err(&r.path, std::io::Error::last_os_error()));
            }
            st
        };
        bound.push((st.st_dev, st.st_ino));
        let attr = PathBeneathAttr {
            allowed_access: r.access.bits() & handled,
            parent_fd: fd.as_raw_fd(),
        };
        if attr.allowed_access != 0 {
            // SAFETY: landlock_add_rule with a live ruleset fd and a packed
            // attribute of the kernel's layout that outlives the call.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset.as_raw_fd(),
                    1u32, // LANDLOCK_RULE_PATH_BENEATH
                    &attr as *const PathBeneathAttr,
                    0u32,
                )
            };
            if rc != 0 {
                return Err(path_err(&r.path, std::io::Error::last_os_error()));
            }
        }
        // The next rules are likely this one's siblings: keep the parent.
        if !same {
            if let Some(d) = dir {
                parent = open_at(libc::AT_FDCWD, &d).ok().map(|f| (d, f));
            }
        }
    }
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_is_carved_by_siblings() {
        let dir = tempdir();
        fs::create_dir_all(dir.join("a/secret")).unwrap();
        fs::create_dir_all(dir.join("a/ok")).unwrap();
        fs::write(dir.join("a/file"), "x").unwrap();
        fs::write(dir.join("b"), "x").unwrap();
        let spec = FsSpec {
            read: vec![dir.clone()],
            deny: vec![dir.join("a/secret")],
            ..Default::default()
        };
        let rules = fs_rules(&spec);
        let paths: Vec<_> = rules.iter().map(|r| r.path.clone()).collect();
        assert!(paths.contains(&dir.join("a/ok")));
        assert!(paths.contains(&dir.join("a/file")));
        assert!(paths.contains(&dir.join("b")));
        assert!(!paths.iter().any(|p| p.starts_with(dir.join("a/secret"))));
        // The carved directories themselves are only listable.
        for d in [&dir, &dir.join("a")] {
            let r = rules.iter().find(|r| &r.path == d).unwrap();
            assert_eq!(r.access, BitFlags::from(AccessFs::ReadDir));
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symlink_into_denied_tree_is_not_granted() {
        let dir = tempdir();
        fs::create_dir_all(dir.join("secret")).unwrap();
        fs::write(dir.join("secret/key"), "k").unwrap();
        std::os::unix::fs::symlink(dir.join("secret/key"), dir.join("link")).unwrap();
        let spec = FsSpec {
            read: vec![dir.clone()],
            deny: vec![dir.join("secret")],
            ..Default::default()
        };
        let rules = fs_rules(&spec);
        assert!(!rules.iter().any(|r| r.path.starts_with(dir.join("secret"))));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn exec_glob_expands_with_interpreter() {
        let files = expand_exec_allow(&["/usr/bin/python3*".to_string()]).unwrap();
        if let Ok(real) = fs::canonicalize("/usr/bin/python3.11") {
            assert!(
                files
                    .iter()
                    .any(|f| fs::canonicalize(f).ok() == Some(real.clone())),
                "{files:?}"
            );
            let interp = elf_interpreter(&real).expect("dynamic binary has PT_INTERP");
            assert!(files.contains(&interp), "{files:?}");
        }
        assert!(expand_exec_allow(&["/nonexistent/*".to_string()])
            .unwrap()
            .is_empty());
    }

    /// Whether `cat path` succeeds under the ruleset (a real confined
    /// process opening the file).
    fn can_read(ruleset: &OwnedFd, path: &Path) -> bool {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let fd = ruleset.as_raw_fd();
        let mut cmd = std::process::Command::new("/bin/cat");
        cmd.arg(path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: only async-signal-safe system calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.status().map(|s| s.success()).unwrap_or(false)
    }

    fn age(p: &Path) {
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        fs::File::open(p).unwrap().set_modified(t).unwrap();
    }

    /// `dir/a/secret/key` (denied) beside `dir/a/FILE`, both directories
    /// aged past the racy window, under a read policy of the system
    /// directories plus `dir`: the carve-out the cache tests work on.
    fn carved_tree(dir: &Path, file: &str) -> FsSpec {
        fs::create_dir_all(dir.join("a/secret")).unwrap();
        fs::write(dir.join("a/secret/key"), "k").unwrap();
        fs::write(dir.join("a").join(file), "o").unwrap();
        age(&dir.join("a"));
        age(dir);
        FsSpec {
            read: ["/usr", "/lib", "/lib64", "/bin", "/etc"]
                .iter()
                .map(PathBuf::from)
                .chain([dir.to_path_buf()])
                .collect(),
            deny: vec![dir.join("a/secret")],
            ..Default::default()
        }
    }

    /// Whether the cache tests can run here (root, for the carved trees'
    /// files, and Landlock ABI >= 3); if not, says so (failing under
    /// CI=true).
    fn root_with_landlock_3(name: &str) -> bool {
        if !crate::testing::root_or_skip(name) {
            return false;
        }
        if kernel_abi() < 3 {
            crate::testing::cannot_run(name, "needs Landlock ABI >= 3");
            return false;
        }
        true
    }

    /// A change after the first session is seen by the next one exactly as
    /// without the cache, and what is denied stays denied.
    #[test]
    fn carve_cache_sees_changes_and_keeps_denies() {
        if !root_with_landlock_3("carve_cache_sees_changes_and_keeps_denies") {
            return;
        }
        let dir = tempdir();
        let spec = carved_tree(&dir, "old");
        let abi = kernel_abi();
        let build = || build_ruleset(&spec, abi).unwrap();
        let first = build();
        assert!(can_read(&first, &dir.join("a/old")));
        assert!(!can_read(&first, &dir.join("a/secret/key")));
        let hits = carve_cache_hits();
        let second = build();
        assert!(carve_cache_hits() > hits, "second session reuses the rules");
        assert!(can_read(&second, &dir.join("a/old")));
        assert!(!can_read(&second, &dir.join("a/secret/key")));

        // A new file in the carved directory: readable by the next session.
        fs::write(dir.join("a/new"), "n").unwrap();
        assert_eq!(fs_rules_cached(&spec), fs_rules(&spec));
        let third = build();
        assert!(can_read(&third, &dir.join("a/new")));
        assert!(!can_read(&third, &dir.join("a/secret/key")));

        // Cached again, then the denied tree replaced by a file and a
        // symlink into it added: both stay denied.
        age(&dir.join("a"));
        let _ = build();
        let hits = carve_cache_hits();
        let _ = build();
        assert!(carve_cache_hits() > hits);
        fs::remove_dir_all(dir.join("a/secret")).unwrap();
        fs::write(dir.join("a/secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.join("a/secret"), dir.join("a/sneak")).unwrap();
        assert_eq!(fs_rules_cached(&spec), fs_rules(&spec));
        let fourth = build();
        assert!(!can_read(&fourth, &dir.join("a/secret")));
        assert!(!can_read(&fourth, &dir.join("a/sneak")));
        assert!(can_read(&fourth, &dir.join("a/new")));

        // A file in a granted subtree replaced: no carving there, the
        // next session opens whatever is at the path (as without a cache).
        age(&dir.join("a"));
        let _ = build();
        fs::write(dir.join("a/old"), "o2").unwrap();
        assert!(can_read(&build(), &dir.join("a/old")));
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A built ruleset is handed out again while its rule paths name the
    /// same inodes; a rule file replaced by rename (same rule list, new
    /// inode) makes the next session build afresh and read the new file;
    /// what is denied stays denied throughout.
    #[test]
    fn ruleset_cache_reuses_and_rebinds_replaced_files() {
        if !root_with_landlock_3("ruleset_cache_reuses_and_rebinds_replaced_files") {
            return;
        }
        let dir = tempdir().join("rs");
        let spec = carved_tree(&dir, "passwd");
        let abi = kernel_abi();
        let build = || build_ruleset(&spec, abi).unwrap();
        let first = build();
        let hits = ruleset_cache_hits();
        let second = build();
        assert!(
            ruleset_cache_hits() > hits,
            "second session reuses the ruleset"
        );
        assert!(can_read(&first, &dir.join("a/passwd")));
        assert!(can_read(&second, &dir.join("a/passwd")));
        assert!(!can_read(&second, &dir.join("a/secret/key")));
        // A different spec (one more deny) is not served the cached one.
        let mut other = spec.clone();
        other.deny.push(dir.join("a/passwd"));
        let hits = ruleset_cache_hits();
        let narrowed = build_ruleset(&other, abi).unwrap();
        assert_eq!(ruleset_cache_hits(), hits);
        assert!(!can_read(&narrowed, &dir.join("a/passwd")));

        // Rewritten by rename, as editors and `passwd` do: same path, same
        // rule list, new inode. The old ruleset no longer reaches it.
        fs::write(dir.join("a/passwd.new"), "p2").unwrap();
        fs::rename(dir.join("a/passwd.new"), dir.join("a/passwd")).unwrap();
        assert!(!can_read(&second, &dir.join("a/passwd")));
        let hits = ruleset_cache_hits();
        let third = build();
        assert_eq!(ruleset_cache_hits(), hits, "a replaced rule file rebuilds");
        assert!(can_read(&third, &dir.join("a/passwd")));
        assert!(!can_read(&third, &dir.join("a/secret/key")));

        // Reused again once rebuilt, bound to the new inode.
        let fourth = build();
        assert!(ruleset_cache_hits() > hits);
        assert!(can_read(&fourth, &dir.join("a/passwd")));

        // The denied directory swapped for another by rename: still denied.
        fs::create_dir_all(dir.join("a/swap")).unwrap();
        fs::write(dir.join("a/swap/key"), "k2").unwrap();
        fs::remove_dir_all(dir.join("a/secret")).unwrap();
        fs::rename(dir.join("a/swap"), dir.join("a/secret")).unwrap();
        let fifth = build();
        assert!(!can_read(&fifth, &dir.join("a/secret/key")));
        assert!(can_read(&fifth, &dir.join("a/passwd")));
        let sixth = build();
        assert!(!can_read(&sixth, &dir.join("a/secret/key")));
        fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    /// Whether `sh -c script` succeeds under the rulesets, applied in order
    /// (a real confined process).
    fn sh_under(layers: &[&OwnedFd], script: &str) -> bool {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let fds: Vec<i32> = layers.iter().map(|f| f.as_raw_fd()).collect();
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args(["-c", script])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: only async-signal-safe system calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for fd in &fds {
                    if libc::syscall(libc::SYS_landlock_restrict_self, *fd, 0u32) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        cmd.status().map(|s| s.success()).unwrap_or(false)
    }

    /// A session's rules split into the shared (cached) layer and its own
    /// allow and refuse exactly what one ruleset of the whole spec does:
    /// the carved tree, a symlink in it to a file outside every root, the
    /// session's own directory (read, write, create), and, beside it, another
    /// session's directory and the parent itself, which the shared layer
    /// grants and the own layer must refuse. The shared layer is reused by
    /// the next session. A deny at the parent falls back to one ruleset.
    #[test]
    fn session_layers_allow_exactly_what_one_ruleset_does() {
        if !root_with_landlock_3("session_layers_allow_exactly_what_one_ruleset_does") {
            return;
        }
        let dir = tempdir().join("layers");
        // As `carved_tree`, with `dir/a` rather than `dir` as the root: a
        // root above the sessions' parent rules the split out (below).
        let mut spec = carved_tree(&dir, "ok");
        spec.read.retain(|p| p != &dir);
        spec.read.push(dir.join("a"));
        fs::create_dir_all(dir.join("outside")).unwrap();
        fs::write(dir.join("outside/target"), "t").unwrap();
        fs::write(dir.join("outside/other"), "t").unwrap();
        std::os::unix::fs::symlink(dir.join("outside/target"), dir.join("a/link")).unwrap();
        age(&dir.join("a"));
        let sessions = dir.join("sessions");
        for s in ["s1", "s2", "s3"] {
            fs::create_dir_all(sessions.join(s)).unwrap();
            fs::write(sessions.join(s).join("f"), "x").unwrap();
        }
        spec.write.push(dir.join("w"));
        fs::create_dir_all(dir.join("w")).unwrap();
        let abi = kernel_abi();
        set_layered(true);
        let own_dir = sessions.join("s1");
        let layered = build_session_rulesets(&spec, &own_dir, abi).unwrap();
        let own = layered.own.as_ref().expect("split in two layers");
        let mut whole = spec.clone();
        whole.write.push(own_dir.clone());
        let single = build_ruleset(&whole, abi).unwrap();
        // Quoted: the test's directory name has parentheses.
        let d = format!("'{}'", dir.display());
        let probes = [
            (format!("cat {d}/a/ok"), true),
            (format!("cat {d}/a/secret/key"), false),
            (format!("cat {d}/a/link"), true),
            (format!("echo y > {d}/a/ok"), false),
            (format!("echo y > {d}/w/new && cat {d}/w/new && rm {d}/w/new"), true),
            (format!("cat {d}/sessions/s1/f"), true),
            (
                format!("echo y > {d}/sessions/s1/g && mkdir {d}/sessions/s1/h && rm {d}/sessions/s1/g && rmdir {d}/sessions/s1/h"),
                true,
            ),
            (format!("cat {d}/sessions/s2/f"), false),
            (format!("echo y > {d}/sessions/s2/f"), false),
            (format!("ls {d}/sessions/s3"), false),
            (format!("echo y > {d}/sessions/new"), false),
            // Granted by the link's rule, which binds the file's inode.
            (format!("cat {d}/outside/target"), true),
            (format!("cat {d}/outside/other"), false),
        ];
        for (script, want) in &probes {
            assert_eq!(sh_under(&[&single], script), *want, "one ruleset: {script}");
            assert_eq!(
                sh_under(&[&layered.shared, own], script),
                *want,
                "two layers: {script}"
            );
        }
        // Without its own layer the shared one would let a session into
        // the others' directories: the own layer is what refuses them.
        assert!(sh_under(
            &[&layered.shared],
            &format!("cat {d}/sessions/s2/f")
        ));
        // The next session (another directory) reuses the shared layer.
        let hits = ruleset_cache_hits();
        let next = build_session_rulesets(&spec, &sessions.join("s2"), abi).unwrap();
        assert!(ruleset_cache_hits() > hits, "shared layer reused");
        let own2 = next.own.as_ref().expect("split");
        assert!(sh_under(
            &[&next.shared, own2],
            &format!("cat {d}/sessions/s2/f")
        ));
        assert!(!sh_under(
            &[&next.shared, own2],
            &format!("cat {d}/sessions/s1/f")
        ));
        // A deny under the parent, or a root granting it: one ruleset.
        let mut denied = spec.clone();
        denied.deny.push(sessions.join("s3"));
        assert!(build_session_rulesets(&denied, &own_dir, abi)
            .unwrap()
            .own
            .is_none());
        let mut wide = spec.clone();
        wide.read.push(dir.clone());
        let one = build_session_rulesets(&wide, &own_dir, abi).unwrap();
        assert!(one.own.is_none());
        assert!(!sh_under(
            &[&one.shared],
            &format!("echo y > {d}/sessions/s2/f")
        ));
        fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "shieldd-ll-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        fs::canonicalize(d).unwrap()
    }

    /// The byte comparison agrees with `Path::starts_with` on clean paths,
    /// including the look-alikes that share a prefix but not a component.
    #[test]
    fn within_agrees_with_components() {
        let cases = [
            ("/etc/ssh", "/etc/ssh", true),
            ("/etc/ssh/sshd_config", "/etc/ssh", true),
            ("/etc/sshd", "/etc/ssh", false),
            ("/etc/ssh_host", "/etc/ssh", false),
            ("/etc", "/etc/ssh", false),
            ("/etc/shadow-", "/etc/shadow", false),
            ("/anything", "/", true),
            ("/", "/", true),
            ("/", "/etc", false),
            ("/root/.ssh", "/root/.ssh", true),
            ("/root/.sshx", "/root/.ssh", false),
        ];
        for (p, d, want) in cases {
            let (p, d) = (Path::new(p), Path::new(d));
            assert_eq!(within(p, d), want, "{} within {}", p.display(), d.display());
            assert_eq!(
                p.starts_with(d),
                want,
                "{} starts_with {}",
                p.display(),
                d.display()
            );
        }
    }
}
