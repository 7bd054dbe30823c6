//! Image folders: finding and reading the images to compress, and writing decompressed
//! images so that an output folder either appears complete or not at all.

use crate::container::is_safe_name;
use crate::geometry::{HEIGHT, WIDTH};
use crate::image_io::{self, ImageError, ImageFormat};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Why a folder could not be read or written. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("{path}: {reason}")]
    Io {
        path: String,
        reason: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{path}: image is {w}×{h}; the model codes {WIDTH}×{HEIGHT} images")]
    Geometry { path: String, w: usize, h: usize },
    #[error("{0}: file name cannot be stored (it must be UTF-8 and a plain relative path)")]
    BadName(String),
    #[error("{0}: no .pbm or .png images found")]
    Empty(String),
    #[error("{0}: output folder exists and is not empty")]
    OutputNotEmpty(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FolderError + '_ {
    move |reason| FolderError::Io {
        path: path.display().to_string(),
        reason,
    }
}

/// An image read from a folder.
pub struct FolderImage {
    /// Path relative to the folder, `/`-separated.
    pub name: String,
    pub format: ImageFormat,
    /// `WIDTH·HEIGHT` bytes of 0/1.
    pub pixels: Vec<u8>,
}

/// The `.pbm` and `.png` files under `dir`, recursively, as (relative name, path), sorted
/// by name so that archives do not depend on directory order. Symbolic links to folders
/// are not followed (they could loop).
pub fn list_images(dir: &Path) -> Result<Vec<(String, PathBuf)>, FolderError> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io_err(&d))? {
            let entry = entry.map_err(io_err(&d))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io_err(&path))?;
            if kind.is_dir() {
                stack.push(path);
            } else if image_io::format_for_extension(&path).is_some() && !kind.is_dir() {
                let rel = path.strip_prefix(dir).expect("listed under dir");
                let name = rel
                    .iter()
                    .map(|c| c.to_str())
                    .collect::<Option<Vec<_>>>()
                    .map(|parts| parts.join("/"))
                    .filter(|n| is_safe_name(n))
                    .ok_or_else(|| FolderError::BadName(path.display().to_string()))?;
                found.push((name, path));
            }
        }
    }
    if found.is_empty() {
        return Err(FolderError::Empty(dir.display().to_string()));
    }
    found.sort();
    Ok(found)
}

/// Reads `files` in parallel, checking each is a bi-level image of the model's size.
pub fn read_images(
    files: &[(String, PathBuf)],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<FolderImage>, FolderError> {
    files
        .par_iter()
        .map(|(name, path)| {
            let (img, format) = image_io::read_image(path)?;
            if (img.width, img.height) != (WIDTH, HEIGHT) {
                return Err(FolderError::Geometry {
                    path: path.display().to_string(),
                    w: img.width,
                    h: img.height,
                });
            }
            progress(1);
            Ok(FolderImage {
                name: name.clone(),
                format,
                pixels: img.pixels,
            })
        })
        .collect()
}

/// Writes images under `out`, which must not exist or be an empty folder. Everything is
/// written into a hidden staging folder beside `out` first and renamed into place at the
/// end, so an interrupted or failed run never leaves a partial `out`.
pub fn write_images(
    out: &Path,
    images: &[FolderImage],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), FolderError> {
    if out.exists() {
        let mut entries = std::fs::read_dir(out).map_err(io_err(out))?;
        if entries.next().is_some() {
            return Err(FolderError::OutputNotEmpty(out.display().to_string()));
        }
    }
    let staging = staging_path(out);
    std::fs::create_dir_all(&staging).map_err(io_err(&staging))?;
    // Sequential on purpose: parallel creation in one folder contends on the folder's
    // lock in the kernel and was slower than one thread.
    let result = images.iter().try_for_each(|img| {
        let path = staging.join(&img.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let bytes = image_io::encode_image(
            &image_io::BitImage {
                width: WIDTH,
                height: HEIGHT,
                pixels: img.pixels.clone(),
            },
            img.format,
        );
        std::fs::write(&path, bytes).map_err(io_err(&path))?;
        progress(1);
        Ok(())
    });
    let result = result.and_then(|()| {
        if out.exists() {
            std::fs::remove_dir(out).map_err(io_err(out))?;
        }
        std::fs::rename(&staging, out).map_err(io_err(out))
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// A hidden sibling of `out` unique to this process.
pub fn staging_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    out.with_file_name(format!(".{name}.vlae-zip-partial-{}", std::process::id()))
}

/// Writes `bytes` to `path` through a staging file and a rename.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), FolderError> {
    let staging = staging_path(path);
    let result = std::fs::write(&staging, bytes).and_then(|()| std::fs::rename(&staging, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    result.map_err(io_err(path))
}
