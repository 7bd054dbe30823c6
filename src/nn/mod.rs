//! The candle side: the VLAE as tensors, for training and evaluation. Tensors end here;
//! the coder reads the saved weights through `infer` instead.
#![forbid(unsafe_code)]

pub mod data;
pub mod eval;
pub mod ops;
pub mod train;
pub mod vlae;
