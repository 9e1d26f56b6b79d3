//! Configuration of storage locations (written on another branch; this placeholder only lets the
//! `store` branch build on its own).
