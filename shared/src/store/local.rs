//! Local-filesystem versioned store (being written).
