//! Entropy coding: bits-back over constriction's ANS, and the other lane coders. Sees
//! probabilities, never tensors.
#![forbid(unsafe_code)]

pub mod bitsback;
pub mod context;
pub mod glyph_match;
pub mod lane;
pub mod memory;
mod mix_weights;
pub mod mixing;
pub mod model;
pub mod quantize;
