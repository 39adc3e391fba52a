//! The kernel's BTF cut down to what loading the monitor reads, so the
//! loader parses a few hundred types instead of the whole kernel (the full
//! parse and the CO-RE candidate search over it were most of the load's CPU).
//!
//! Kept, with their original type ids: every kernel type whose kind and name
//! match a named type of the object's own BTF (the CO-RE candidates), the
//! `btf_trace_<tracepoint>` typedefs (tp_btf attach ids), and everything
//! these reach without going through a pointer (embedded structs, arrays,
//! typedefs, modifiers). That is all CO-RE field matching reads: a pointer
//! field is compatible with any pointer, and each pointer hop of a
//! `BPF_CORE_READ` is a relocation of its own, on its own local type.
//! Type ids up to the last tracepoint typedef stay the kernel's (the rest
//! there become nameless forward declarations); kept types past it are
//! renumbered, which is sound because field relocations never read target
//! ids (`bpf_core_type_id_kernel` would: the monitor's tests compare the
//! relocated programs against a whole-BTF relocation). Written here because
//! aya parses BTF only whole.

use std::collections::{HashMap, HashSet};

/// BTF kinds this file treats specially (include/uapi/linux/btf.h).
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_ENUM64: u32 = 19;

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
/// Bounds the work on a malformed blob: the kernel's has about 150,000.
const MAX_TYPES: usize = 4_000_000;

/// Why a BTF blob could not be cut down (the caller then parses it whole).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TrimError {
    /// Not a native-endian BTF blob, or a truncated one.
    #[error("malformed BTF: {0}")]
    Malformed(&'static str),
    /// A kind this parser does not know (a newer kernel).
    #[error("unknown BTF kind {0}")]
    UnknownKind(u32),
}

/// One parsed type: where it starts and its header fields.
#[derive(Clone, Copy)]
struct Ty {
    off: usize,
    name_off: u32,
    kind: u32,
    vlen: usize,
    size_or_type: u32,
}

impl Ty {
    /// Bytes after the 12-byte header, and the stride of per-member records
    /// that start with a name offset (0 if none).
    fn trailer(&self) -> Result<(usize, usize), TrimError> {
        Ok(match self.kind {
            1 => (4, 0),                           // INT
            KIND_PTR | 7..=12 | 16 | 18 => (0, 0), // PTR FWD TYPEDEF mods FUNC FLOAT TYPE_TAG
            KIND_ARRAY => (12, 0),
            KIND_STRUCT | KIND_UNION => (self.vlen * 12, 12),
            KIND_ENUM => (self.vlen * 8, 8),
            KIND_FUNC_PROTO => (self.vlen * 8, 8),
            14 | 17 => (4, 0),         // VAR DECL_TAG
            15 => (self.vlen * 12, 0), // DATASEC
            KIND_ENUM64 => (self.vlen * 12, 12),
            k => return Err(TrimError::UnknownKind(k)),
        })
    }
}

/// A parsed blob: its type records and string section.
struct Parsed<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// Type id `i + 1` is `tys[i]`.
    tys: Vec<Ty>,
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, TrimError> {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
        .ok_or(TrimError::Malformed("truncated"))
}

fn parse(blob: &[u8]) -> Result<Parsed<'_>, TrimError> {
    let magic = blob
        .get(0..2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_ne_bytes)
        .ok_or(TrimError::Malformed("truncated header"))?;
    if magic != MAGIC {
        return Err(TrimError::Malformed("bad magic or foreign byte order"));
    }
    let hdr_len = u32_at(blob, 4)? as usize;
    let section = |off: usize, len: usize| -> Result<&[u8], TrimError> {
        let start = hdr_len
            .checked_add(u32_at(blob, off)? as usize)
            .ok_or(TrimError::Malformed("section offset"))?;
        let len = u32_at(blob, len)? as usize;
        blob.get(start..start.saturating_add(len))
            .ok_or(TrimError::Malformed("section out of bounds"))
    };
    let types = section(8, 12)?;
    let strings = section(16, 20)?;
    let mut tys = Vec::new();
    let mut off = 0;
    while off < types.len() {
        if tys.len() >= MAX_TYPES {
            return Err(TrimError::Malformed("too many types"));
        }
        let info = u32_at(types, off + 4)?;
        let ty = Ty {
            off,
            name_off: u32_at(types, off)?,
            kind: (info >> 24) & 0x1f,
            vlen: (info & 0xffff) as usize,
            size_or_type: u32_at(types, off + 8)?,
        };
        let (trailer, _) = ty.trailer()?;
        off += 12 + trailer;
        if off > types.len() {
            return Err(TrimError::Malformed("truncated type"));
        }
        tys.push(ty);
    }
    Ok(Parsed {
        types,
        strings,
        tys,
    })
}

impl Parsed<'_> {
    fn name(&self, off: u32) -> &[u8] {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        rest.get(..end).unwrap_or_default()
    }
}

/// A CO-RE name without its `___flavor` suffix (the loader matches on that).
fn flavorless(name: &[u8]) -> &[u8] {
    name.windows(3)
        .position(|w| w == b"___")
        .and_then(|i| name.get(..i))
        .unwrap_or(name)
}

/// The offset of `name` in `strings`, appended on first use.
fn intern<'a>(interned: &mut HashMap<&'a [u8], u32>, name: &'a [u8], strings: &mut Vec<u8>) -> u32 {
    if name.is_empty() {
        return 0;
    }
    *interned.entry(name).or_insert_with(|| {
        let off = strings.len() as u32;
        strings.extend_from_slice(name);
        strings.push(0);
        off
    })
}

/// The kernel's BTF blob: mapped where the kernel allows it (6.16+: no copy
/// of its 5 MB), read otherwise.
pub(crate) enum KernelBlob {
    /// A private read-only mapping of the sysfs file.
    Mapped {
        /// Start of the mapping.
        ptr: std::ptr::NonNull<libc::c_void>,
        /// Its length.
        len: usize,
    },
    /// The file's contents.
    Read(Vec<u8>),
}

impl KernelBlob {
    /// Map or read `path`.
    pub(crate) fn open(path: &str) -> std::io::Result<KernelBlob> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len() as usize;
        if len > 0 {
            // SAFETY: a fresh private read-only mapping of an open file; the
            // result is checked before use and unmapped once in Drop.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE,
                    file.as_raw_fd(),
                    0,
                )
            };
            if ptr != libc::MAP_FAILED {
                if let Some(ptr) = std::ptr::NonNull::new(ptr) {
                    return Ok(KernelBlob::Mapped { ptr, len });
                }
            }
        }
        let mut buf = Vec::with_capacity(len);
        std::io::Read::read_to_end(&mut &file, &mut buf)?;
        Ok(KernelBlob::Read(buf))
    }

    /// The blob's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            // SAFETY: the mapping is `len` readable bytes, private (no one
            // writes it) and lives as long as `self`.
            KernelBlob::Mapped { ptr, len } => unsafe {
                std::slice::from_raw_parts(ptr.as_ptr().cast::<u8>(), *len)
            },
            KernelBlob::Read(v) => v,
        }
    }
}

impl Drop for KernelBlob {
    fn drop(&mut self) {
        if let KernelBlob::Mapped { ptr, len } = self {
            // SAFETY: unmaps exactly the mapping made in `open`, once; no
            // slice from `bytes` outlives `self`.
            unsafe {
                libc::munmap(ptr.as_ptr(), *len);
            }
        }
    }
}

/// Overwrite the u32 at `at`.
fn put(b: &mut [u8], at: usize, v: u32) {
    if let Some(dst) = b.get_mut(at..at + 4) {
        dst.copy_from_slice(&v.to_ne_bytes());
    }
}

/// The ELF section `.BTF` of a BPF object.
fn object_btf(object: &[u8]) -> Result<&[u8], TrimError> {
    let elf = goblin::elf::Elf::parse(object).map_err(|_| TrimError::Malformed("object ELF"))?;
    let sh = elf
        .section_headers
        .iter()
        .find(|sh| elf.shdr_strtab.get_at(sh.sh_name) == Some(".BTF"))
        .ok_or(TrimError::Malformed("object has no .BTF"))?;
    let start = sh.sh_offset as usize;
    object
        .get(start..start.saturating_add(sh.sh_size as usize))
        .ok_or(TrimError::Malformed("object .BTF out of bounds"))
}

/// `kernel` (a raw BTF blob, /sys/kernel/btf/vmlinux) cut down to what
/// relocating `object` and attaching its tp_btf programs to `tracepoints`
/// needs; type ids are unchanged.
pub(crate) fn trim(
    kernel: &[u8],
    object: &[u8],
    tracepoints: &[&str],
) -> Result<Vec<u8>, TrimError> {
    let local = parse(object_btf(object)?)?;
    let wanted: HashSet<&[u8]> = local
        .tys
        .iter()
        .filter(|t| t.name_off != 0)
        .map(|t| flavorless(local.name(t.name_off)))
        .collect();
    let trace: HashSet<Vec<u8>> = tracepoints
        .iter()
        .map(|tp| format!("btf_trace_{tp}").into_bytes())
        .collect();

    let k = parse(kernel)?;
    let mut keep = vec![false; k.tys.len() + 1];
    let mut stack: Vec<u32> = Vec::new();
    for (i, t) in k.tys.iter().enumerate() {
        let named_root = matches!(
            t.kind,
            KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 | KIND_TYPEDEF | KIND_FWD
        );
        if t.name_off == 0 || !named_root {
            continue;
        }
        let name = k.name(t.name_off);
        if wanted.contains(flavorless(name)) || (t.kind == KIND_TYPEDEF && trace.contains(name)) {
            stack.push(i as u32 + 1);
        }
    }
    // Everything reachable without a pointer hop.
    while let Some(id) = stack.pop() {
        let Some(slot) = keep.get_mut(id as usize) else {
            continue;
        };
        if *slot {
            continue;
        }
        *slot = true;
        let Some(t) = k.tys.get(id as usize - 1) else {
            continue;
        };
        let body = t.off + 12;
        match t.kind {
            KIND_STRUCT | KIND_UNION => {
                for m in 0..t.vlen {
                    stack.push(u32_at(k.types, body + m * 12 + 4)?);
                }
            }
            KIND_ARRAY => {
                stack.push(u32_at(k.types, body)?);
                stack.push(u32_at(k.types, body + 4)?);
            }
            KIND_TYPEDEF | 9 | 10 | 11 | 18 => stack.push(t.size_or_type),
            _ => {}
        }
    }

    // Ids up to the last tracepoint typedef stay the kernel's (tp_btf
    // attaches by id); kept types past it are numbered on from there. CO-RE
    // field relocations read offsets and sizes, never target ids.
    let cutoff = k
        .tys
        .iter()
        .enumerate()
        .filter(|(_, t)| t.kind == KIND_TYPEDEF && trace.contains(k.name(t.name_off)))
        .map(|(i, _)| i + 1)
        .max()
        .unwrap_or(0);
    let mut new_id = vec![0u32; keep.len()];
    let mut next = cutoff as u32;
    for (id, kept) in keep.iter().enumerate() {
        if !*kept {
            continue;
        }
        if let Some(slot) = new_id.get_mut(id) {
            *slot = if id <= cutoff {
                id as u32
            } else {
                next += 1;
                next
            };
        }
    }
    let map = |old: u32| new_id.get(old as usize).copied().unwrap_or(0);

    let mut types = Vec::new();
    let mut strings = vec![0u8];
    let mut interned: HashMap<&[u8], u32> = HashMap::new();
    let order =
        (1..=k.tys.len()).filter(|&id| id <= cutoff || keep.get(id).copied().unwrap_or(false));
    for id in order {
        let Some(t) = k.tys.get(id - 1) else { continue };
        if !keep.get(id).copied().unwrap_or(false) {
            types.extend_from_slice(&0u32.to_ne_bytes());
            types.extend_from_slice(&(KIND_FWD << 24).to_ne_bytes());
            types.extend_from_slice(&0u32.to_ne_bytes());
            continue;
        }
        let (trailer, stride) = t.trailer()?;
        let raw = k
            .types
            .get(t.off..t.off + 12 + trailer)
            .ok_or(TrimError::Malformed("truncated type"))?;
        let start = types.len();
        types.extend_from_slice(raw);
        let mut names = vec![0];
        if stride != 0 {
            names.extend((0..t.vlen).map(|m| 12 + m * stride));
        }
        for at in names {
            let old = u32_at(&types, start + at)?;
            let new = intern(&mut interned, k.name(old), &mut strings);
            put(&mut types, start + at, new);
        }
        let refs: Vec<usize> = match t.kind {
            KIND_PTR | KIND_TYPEDEF | 9..=14 | 17 | 18 => vec![8],
            _ => Vec::new(),
        }
        .into_iter()
        .chain(match t.kind {
            KIND_ARRAY => vec![12, 16],
            KIND_STRUCT | KIND_UNION => (0..t.vlen).map(|m| 12 + m * 12 + 4).collect(),
            KIND_FUNC_PROTO => (0..t.vlen).map(|m| 12 + m * 8 + 4).collect(),
            15 => (0..t.vlen).map(|m| 12 + m * 12).collect(),
            _ => Vec::new(),
        })
        .collect();
        for at in refs {
            let old = u32_at(&types, start + at)?;
            put(&mut types, start + at, map(old));
        }
    }

    let mut out = Vec::with_capacity(HEADER_LEN + types.len() + strings.len());
    out.extend_from_slice(&MAGIC.to_ne_bytes());
    out.push(1); // version
    out.push(0); // flags
    for v in [
        HEADER_LEN as u32,
        0,
        types.len() as u32,
        types.len() as u32,
        strings.len() as u32,
    ] {
        out.extend_from_slice(&v.to_ne_bytes());
    }
    out.extend_from_slice(&types);
    out.extend_from_slice(&strings);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aya::{Btf, Endianness};
    use aya_obj::btf::BtfKind;

    const TRACEPOINTS: &[&str] = &[
        "sched_process_fork",
        "sched_process_exit",
        "sched_process_exec",
        "sys_enter",
        "sys_exit",
    ];

    fn kernel_btf() -> Option<Vec<u8>> {
        match std::fs::read("/sys/kernel/btf/vmlinux") {
            Ok(raw) => Some(raw),
            Err(e) => {
                crate::testing::cannot_run("btf_trim test", &format!("no kernel BTF ({e})"));
                None
            }
        }
    }

    /// Every instruction the loader relocates comes out the same against
    /// the cut BTF as against the whole kernel BTF.
    #[test]
    fn trimmed_btf_relocates_like_the_whole() {
        let Some(raw) = kernel_btf() else { return };
        let small = trim(&raw, super::super::BPF_OBJECT, TRACEPOINTS).expect("trim");
        assert!(
            small.len() * 10 < raw.len(),
            "only {} of {} bytes cut",
            raw.len() - small.len(),
            raw.len()
        );
        let full = Btf::parse(&raw, Endianness::default()).expect("full BTF");
        let cut = Btf::parse(&small, Endianness::default()).expect("cut BTF");
        let relocate = |btf: &Btf| {
            let mut obj = aya_obj::Object::parse(super::super::BPF_OBJECT).expect("object");
            obj.relocate_btf(btf).expect("relocation");
            obj.functions
                .iter()
                .map(|(k, f)| (*k, format!("{:?}", f.instructions)))
                .collect::<Vec<_>>()
        };
        let (a, b) = (relocate(&full), relocate(&cut));
        assert!(!a.is_empty());
        assert_eq!(a, b);
        for tp in TRACEPOINTS {
            let name = format!("btf_trace_{tp}");
            assert_eq!(
                cut.id_by_type_name_kind(&name, BtfKind::Typedef)
                    .expect("cut id"),
                full.id_by_type_name_kind(&name, BtfKind::Typedef)
                    .expect("full id"),
                "{name}"
            );
        }
    }

    /// A relocation the cut BTF cannot serve fails rather than resolving
    /// to something else: without a tracepoint its typedef is not kept.
    #[test]
    fn unrequested_tracepoint_is_absent() {
        let Some(raw) = kernel_btf() else { return };
        let small = trim(&raw, super::super::BPF_OBJECT, &["sched_process_fork"]).expect("trim");
        let cut = Btf::parse(&small, Endianness::default()).expect("cut BTF");
        assert!(cut
            .id_by_type_name_kind("btf_trace_sched_process_fork", BtfKind::Typedef)
            .is_ok());
        assert!(cut
            .id_by_type_name_kind("btf_trace_sys_enter", BtfKind::Typedef)
            .is_err());
    }

    #[test]
    fn malformed_blobs_are_errors_not_panics() {
        let obj = super::super::BPF_OBJECT;
        assert!(trim(&[], obj, TRACEPOINTS).is_err());
        assert!(trim(&[0x9f, 0xeb, 1, 0], obj, TRACEPOINTS).is_err());
        assert!(trim(&[0u8; 64], obj, TRACEPOINTS).is_err());
        assert!(trim(b"not an ELF", b"not an ELF", TRACEPOINTS).is_err());
        // A header whose sections point past the end.
        let mut hdr = Vec::new();
        hdr.extend_from_slice(&MAGIC.to_ne_bytes());
        hdr.extend_from_slice(&[1, 0]);
        for v in [24u32, 0, 1000, 1000, 10] {
            hdr.extend_from_slice(&v.to_ne_bytes());
        }
        assert!(matches!(parse(&hdr), Err(TrimError::Malformed(_))));
        // A type of a kind no kernel has.
        let mut blob = hdr.clone();
        for (i, v) in [24u32, 0, 12, 12, 1].into_iter().enumerate() {
            blob.get_mut(4 + i * 4..8 + i * 4)
                .expect("header")
                .copy_from_slice(&v.to_ne_bytes());
        }
        blob.extend_from_slice(&0u32.to_ne_bytes());
        blob.extend_from_slice(&(31u32 << 24).to_ne_bytes());
        blob.extend_from_slice(&0u32.to_ne_bytes());
        blob.push(0);
        assert!(matches!(parse(&blob), Err(TrimError::UnknownKind(31))));
        // Every truncation of a real blob is refused or parsed, never a panic.
        if let Some(raw) = kernel_btf() {
            for cut in [25, 100, 4096, raw.len() / 2, raw.len() - 1] {
                let _ = trim(raw.get(..cut).expect("prefix"), obj, TRACEPOINTS);
            }
        }
    }

    #[test]
    fn flavor_suffix_is_dropped() {
        assert_eq!(flavorless(b"task_struct___old"), b"task_struct");
        assert_eq!(flavorless(b"task_struct"), b"task_struct");
        // Two underscores are part of the name.
        assert_eq!(flavorless(b"__u32__x"), b"__u32__x");
    }
}
