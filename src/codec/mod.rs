//! Entropy coding: bits-back over constriction's ANS. Sees probabilities, never tensors.

pub mod bitsback;
pub mod model;
pub mod quantize;
