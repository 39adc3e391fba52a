//! (scan-core helper fills this in)
