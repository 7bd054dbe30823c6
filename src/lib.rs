//! vlae-zip: lossless compression of bi-level images with a Variational Lossy Autoencoder
//! and bits-back coding over ANS.
//!
//! Two paths share the weights and one description of the layers ([`arch`]). Training and
//! evaluation run the candle model in `nn` (feature `train`). Coding runs image I/O →
//! deterministic inference ([`infer`]) → entropy coding ([`codec`], constriction; never
//! sees a tensor) → container ([`container`], which knows nothing of the others).

pub mod arch;
pub mod archive;
pub mod codec;
pub mod config;
pub mod container;
#[cfg(feature = "train")]
pub mod figure;
pub mod folder;
pub mod geometry;
pub mod idx;
pub mod image_io;
pub mod infer;
pub mod job;
pub mod models;
#[cfg(feature = "train")]
pub mod nn;
mod prefetch;
