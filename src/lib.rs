//! vlae-zip: lossless compression of bi-level images with a Variational Lossy Autoencoder
//! and bits-back coding over ANS.
//!
//! Two paths share the weights and one description of the layers ([`arch`]). Training and
//! evaluation run the candle model in `nn` (feature `train`). Coding runs image I/O →
//! deterministic inference ([`infer`]) → entropy coding ([`codec`], constriction; never
//! sees a tensor) → container ([`container`], which knows nothing of the others).
//!
//! Most callers need only [`compress`] and [`decompress`], over [`Image`]s in memory, with
//! [`Options`] and [`Limits`]; the modules below are for those who build their own jobs.

mod api;
pub mod arch;
pub mod archive;
pub mod codec;
pub mod config;
pub mod container;
mod cpu;
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

pub use api::{compress, decompress, decompress_named, model_names, Error, Image, Limits, Options};
pub use container::ImageFormat;
