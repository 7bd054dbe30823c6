//! Entropy coding: bits-back over constriction's ANS, and the other lane coders. Sees
//! probabilities, never tensors.
//!
//! At the bottom, imported by the rest and importing none of it: [`lane`] (what every
//! coder takes and gives), [`model`] (the ANS adapter) and [`counts`] (adaptive counts and
//! the pixel-model loop). Above them, one module per coder of the container's registry:
//! [`bitsback`] (chains, with [`quantize`] and the page [`memory`]), [`template`],
//! [`mixing`] (page mixing, with [`glyph_match`]), [`stored`] and [`frame`] (Zstandard).
//!
//! The context models' per-pixel functions are `#[inline(always)]`: the loops that drive
//! them are compiled for the processor's instructions (`crate::cpu::run_with`), and a
//! function left out of line runs in the baseline build, for all the loops' speed. Left
//! to the compiler, a second caller (the encoder's) was enough to leave the decoder's
//! calls out of line, 5–15% slower.
#![forbid(unsafe_code)]

pub mod bitsback;
pub mod counts;
pub mod frame;
pub mod glyph_match;
pub mod lane;
pub mod memory;
mod mix_weights;
pub mod mixing;
pub mod model;
pub mod quantize;
pub mod stored;
pub mod template;
