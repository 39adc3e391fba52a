//! eBPF monitor (issue 3).
