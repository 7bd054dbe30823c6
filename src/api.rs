//! The library's front door: images in memory to archive bytes and back, with the
//! built-in models, and a caller-set bound on what decoding may allocate.
//!
//! ```
//! use vlae_zip::{compress, decompress, Image, Limits, Options};
//!
//! // A 3×2 image, 1 = ink.
//! let image = Image::pbm("tiny.pbm", 3, 2, vec![1, 0, 1, 0, 1, 0]);
//! let bytes = compress(std::slice::from_ref(&image), &Options::default())?;
//! let back = decompress(&bytes, &Limits::default())?;
//! assert_eq!(back, [image]);
//! # Ok::<(), vlae_zip::Error>(())
//! ```
#![forbid(unsafe_code)]

use crate::archive::{self, ArchiveError, CompressOptions, LaneCoders, DEFAULT_LATENT_BITS};
use crate::container::{self, ContainerError, Entry, ImageFormat};
use crate::folder::{self, FolderError};
use crate::infer::network::Network;
use crate::infer::weights::ModelError;
use crate::models::{self, BUILT_IN};
use std::sync::OnceLock;

/// One bi-level image: its name in the archive, the file format it is written back as,
/// its size, and `width × height` pixels in raster order, 1 = ink, 0 = paper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub name: String,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Image {
    /// An image written back as PBM.
    pub fn pbm(name: &str, width: u32, height: u32, pixels: Vec<u8>) -> Self {
        Image {
            name: name.into(),
            format: ImageFormat::Pbm,
            width,
            height,
            pixels,
        }
    }

    fn entry(&self) -> Entry {
        Entry {
            name: self.name.clone(),
            format: self.format,
            width: self.width,
            height: self.height,
        }
    }
}

/// How to compress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// A built-in model's name (see [`crate::models::BUILT_IN`]), or `"auto"`: each lane
    /// with whichever built-in model, or fallback coder, codes it smallest.
    pub model: String,
    /// Importance samples per tile (1 is plain bits-back): more codes nearer the model's
    /// NLL, and more slowly.
    pub importance_samples: u32,
    /// Lanes, the units decoded in parallel; `None` lets the coder choose.
    pub lanes: Option<usize>,
    /// Bytes compressing may hold at once, the images included
    /// ([`archive::encode_bytes`]): checked before coding, on as many of the current
    /// thread pool's threads as fit (the archive is the same on any number); `None` for
    /// no limit.
    pub max_memory_bytes: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            model: "auto".into(),
            importance_samples: 1,
            lanes: None,
            max_memory_bytes: None,
        }
    }
}

/// Bounds on what decoding an archive may create, checked against the container before
/// anything is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes decoding may hold at once: the images returned, and the coders' working set
    /// ([`archive::decode_bytes`]).
    pub max_memory_bytes: u64,
    /// Images an archive may hold.
    pub max_images: u64,
}

impl Default for Limits {
    /// 4 GiB and the container's own image limit: every real use, 60,000 digits or a
    /// hundred 600-dpi pages at a time, fits.
    fn default() -> Self {
        Limits {
            max_memory_bytes: 4 << 30,
            max_images: container::MAX_IMAGES,
        }
    }
}

/// Why the library failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("no built-in model is called {0:?}")]
    UnknownModel(String),
    /// Two images would be one file, or one's file the folder of another: the archive
    /// could not be decompressed into a folder.
    #[error(transparent)]
    Layout(#[from] FolderError),
    #[error("image {name:?}: {reason}")]
    Image { name: String, reason: String },
    #[error("decoding needs {needed} bytes of memory, above the limit of {limit}")]
    Memory { needed: u64, limit: u64 },
    #[error("the archive holds {images} images, above the limit of {limit}")]
    Images { images: u64, limit: u64 },
}

/// Every built-in model, loaded once.
fn built_in_networks() -> Result<&'static [Network], Error> {
    static NETWORKS: OnceLock<Result<Vec<Network>, String>> = OnceLock::new();
    let loaded = NETWORKS.get_or_init(|| {
        BUILT_IN
            .iter()
            .map(|m| m.network().map_err(|e| e.to_string()))
            .collect()
    });
    match loaded {
        Ok(nets) => Ok(nets),
        Err(e) => Err(Error::Image {
            name: "built-in model".into(),
            reason: e.clone(),
        }),
    }
}

/// The networks `model` names.
fn chosen(model: &str) -> Result<Vec<&'static Network>, Error> {
    let nets = built_in_networks()?;
    let picked: Vec<&Network> = BUILT_IN
        .iter()
        .zip(nets)
        .filter(|(m, _)| {
            if model == "auto" {
                m.auto
            } else {
                m.name == model
            }
        })
        .map(|(_, n)| n)
        .collect();
    if picked.is_empty() {
        return Err(Error::UnknownModel(model.into()));
    }
    Ok(picked)
}

/// Compresses `images` into one archive. Every image must be bi-level: each pixel 0 or 1,
/// `width × height` of them, and decompress must be able to write them all out (no name
/// is also the folder of another's, as `a.pbm` and `a.pbm/x.pbm` would be).
pub fn compress(images: &[Image], options: &Options) -> Result<Vec<u8>, Error> {
    for img in images {
        let bad = |reason: String| Error::Image {
            name: img.name.clone(),
            reason,
        };
        if img.pixels.len() as u64 != u64::from(img.width) * u64::from(img.height) {
            return Err(bad(format!(
                "{} pixels for {}×{}",
                img.pixels.len(),
                img.width,
                img.height
            )));
        }
        if let Some(v) = img.pixels.iter().find(|&&p| p > 1) {
            return Err(bad(format!("pixel value {v}: images are bi-level, 0 or 1")));
        }
    }
    let nets = chosen(&options.model)?;
    let entries: Vec<Entry> = images.iter().map(Image::entry).collect();
    folder::check_archive_layout(entries.iter().cloned())?;
    let pixels: Vec<&[u8]> = images.iter().map(|i| i.pixels.as_slice()).collect();
    let opts = CompressOptions {
        latent_bits: DEFAULT_LATENT_BITS,
        adapt_latent_bits: true,
        lanes: options.lanes,
        coders: LaneCoders::Smallest,
        samples: options.importance_samples.max(1) as usize,
    };
    Ok(archive::compress_within(
        &nets,
        &entries,
        &pixels,
        opts,
        &|_| {},
        options.max_memory_bytes,
    )?)
}

/// Decompresses an archive made with the built-in models into its images, in order,
/// after checking it against `limits`.
pub fn decompress(bytes: &[u8], limits: &Limits) -> Result<Vec<Image>, Error> {
    decode(bytes, limits, None)
}

/// The images of an archive named in `names`, in that order (a name given twice comes
/// twice), decoding only the lanes that hold them ([`archive::decompress_some`]: the file
/// checksum is checked, the pixel checksum, over every image, is not). A name the archive
/// does not hold is an error.
pub fn decompress_named(
    bytes: &[u8],
    names: &[&str],
    limits: &Limits,
) -> Result<Vec<Image>, Error> {
    let wanted: std::collections::HashSet<&str> = names.iter().copied().collect();
    let decoded = decode(
        bytes,
        limits,
        Some(&|e: &Entry| wanted.contains(e.name.as_str())),
    )?;
    let by_name: std::collections::HashMap<&str, &Image> =
        decoded.iter().map(|i| (i.name.as_str(), i)).collect();
    names
        .iter()
        .map(|&name| {
            by_name
                .get(name)
                .map(|&i| i.clone())
                .ok_or_else(|| Error::Image {
                    name: name.to_string(),
                    reason: "the archive holds no image of that name".into(),
                })
        })
        .collect()
}

/// Both of the above: the archive checked against `limits` (its pixels counted whole,
/// whatever is wanted), then every image, or those `wanted` accepts.
fn decode(
    bytes: &[u8],
    limits: &Limits,
    wanted: Option<&dyn Fn(&Entry) -> bool>,
) -> Result<Vec<Image>, Error> {
    let arch = container::parse(bytes)?;
    if arch.image_count > limits.max_images {
        return Err(Error::Images {
            images: arch.image_count,
            limit: limits.max_images,
        });
    }
    let pixels: u64 = arch
        .entry_sizes()
        .map(|(w, h)| u64::from(w) * u64::from(h))
        .sum();
    let needed = pixels + archive::decode_bytes(&arch, rayon::current_num_threads());
    if needed > limits.max_memory_bytes {
        return Err(Error::Memory {
            needed,
            limit: limits.max_memory_bytes,
        });
    }
    let nets: Vec<&Network> = built_in_networks()?.iter().collect();
    let mut images = Vec::new();
    let mut sink = |e: Entry, pixels: Vec<u8>| -> Result<(), ArchiveError> {
        images.push(Image {
            name: e.name,
            format: e.format,
            width: e.width,
            height: e.height,
            pixels,
        });
        Ok(())
    };
    match wanted {
        None => archive::decompress(&nets, &arch, &mut sink, &|_| {})?,
        Some(wanted) => archive::decompress_some(&nets, &arch, wanted, &mut sink, &|_| {})?,
    }
    Ok(images)
}

/// The built-in models' names, as [`Options::model`] takes them.
pub fn model_names() -> impl Iterator<Item = &'static str> {
    models::BUILT_IN.iter().map(|m| m.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A memory limit below what the archive needs is refused before decoding, and
    /// naming the need.
    #[test]
    fn a_memory_limit_refuses_before_decoding() {
        let page = Image::pbm("page.pbm", 300, 300, vec![0; 90_000]);
        let bytes = compress(&[page], &Options::default()).unwrap();
        let limits = Limits {
            max_memory_bytes: 50_000,
            ..Limits::default()
        };
        match decompress(&bytes, &limits) {
            Err(Error::Memory { needed, limit }) => {
                assert!(needed >= 90_000 && limit == 50_000, "{needed}")
            }
            other => panic!("{other:?}"),
        }
        let few = Limits {
            max_images: 0,
            ..Limits::default()
        };
        assert!(matches!(
            decompress(&bytes, &few),
            Err(Error::Images { images: 1, .. })
        ));
    }

    /// A compress memory limit that one thread's coding fits codes (the same archive as
    /// unlimited); one below it is refused before coding, saying what was needed.
    #[test]
    fn a_memory_limit_bounds_compression() {
        let page = Image::pbm("page.pbm", 300, 200, vec![0; 300 * 200]);
        let one = archive::encode_bytes(&[(300, 200)], 1);
        let free = compress(std::slice::from_ref(&page), &Options::default()).unwrap();
        let within = Options {
            max_memory_bytes: Some(one),
            ..Options::default()
        };
        assert_eq!(
            compress(std::slice::from_ref(&page), &within).unwrap(),
            free
        );
        let below = Options {
            max_memory_bytes: Some(one - 1),
            ..Options::default()
        };
        match compress(&[page], &below) {
            Err(e @ Error::Archive(archive::ArchiveError::CodingMemory { .. })) => {
                assert!(e.to_string().contains("page.pbm, 300×200"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// Named images come back in the order asked, a name given twice twice; a name the
    /// archive lacks is an error naming it.
    #[test]
    fn named_images_come_back_in_the_order_asked() {
        let images: Vec<Image> = ["a.pbm", "b.pbm", "c.pbm"]
            .iter()
            .enumerate()
            .map(|(k, n)| {
                Image::pbm(
                    n,
                    4,
                    3,
                    (0..12).map(|i| u8::from((i + k) % 3 == 0)).collect(),
                )
            })
            .collect();
        let bytes = compress(&images, &Options::default()).unwrap();
        let got =
            decompress_named(&bytes, &["c.pbm", "a.pbm", "c.pbm"], &Limits::default()).unwrap();
        assert_eq!(
            got,
            [images[2].clone(), images[0].clone(), images[2].clone()]
        );
        match decompress_named(&bytes, &["d.pbm"], &Limits::default()) {
            Err(e @ Error::Image { .. }) => assert!(e.to_string().contains("d.pbm"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    /// Grey pixels and short images are refused with the image's name.
    #[test]
    fn images_that_are_not_bi_level_are_refused() {
        let grey = Image::pbm("grey.pbm", 2, 1, vec![0, 7]);
        let err = compress(&[grey], &Options::default()).unwrap_err();
        assert!(err.to_string().contains("grey.pbm"), "{err}");
        let short = Image::pbm("short.pbm", 2, 2, vec![0; 3]);
        assert!(compress(&[short], &Options::default()).is_err());
        let options = Options {
            model: "nope".into(),
            ..Options::default()
        };
        let one = Image::pbm("a.pbm", 1, 1, vec![1]);
        assert!(matches!(
            compress(&[one], &options),
            Err(Error::UnknownModel(_))
        ));
    }
}
