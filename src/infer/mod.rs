//! Deterministic inference for the coder: the trained weights evaluated in plain Rust with
//! a fixed order of operations. No tensors here.

pub mod kernels;
pub mod network;
pub mod weights;
