//! Images on disk: finding and reading the images to compress, and writing decompressed
//! images so that an output folder either appears complete or not at all.
#![forbid(unsafe_code)]

use crate::container::{is_safe_name, Entry};
use crate::image_io::{self, BitImage, ImageError};
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why images could not be read or written. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("{path}: {reason}")]
    Io {
        path: String,
        reason: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{0}: file name cannot be stored (it must be UTF-8 and a plain relative path)")]
    BadName(String),
    #[error("{0}: no .pbm or .png images found")]
    Empty(String),
    #[error("{name}: two inputs would be stored under this name ({first} and {second})")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
    #[error("{0}: output folder exists and is not empty")]
    OutputNotEmpty(String),
    #[error("{0}: output exists (use --force to overwrite)")]
    OutputExists(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FolderError + '_ {
    move |reason| FolderError::Io {
        path: path.display().to_string(),
        reason,
    }
}

/// An image read from disk, with the entry it will have in an archive.
#[derive(Clone)]
pub struct FolderImage {
    pub entry: Entry,
    /// `width × height` bytes of 0/1.
    pub pixels: Vec<u8>,
}

/// The images to compress, as (stored name, path), sorted by name so that archives do not
/// depend on directory order or argument order. A file argument is stored under its file
/// name; a folder's `.pbm` and `.png` files, found recursively, under their paths relative
/// to it. Symbolic links to folders are not followed (they could loop).
pub fn list_inputs(inputs: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, FolderError> {
    let mut found = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(io_err(input))?;
        if meta.is_dir() {
            let before = found.len();
            list_folder(input, &mut found)?;
            if found.len() == before {
                return Err(FolderError::Empty(input.display().to_string()));
            }
        } else {
            let name = input
                .file_name()
                .and_then(|n| n.to_str())
                .filter(|n| is_safe_name(n))
                .ok_or_else(|| FolderError::BadName(input.display().to_string()))?;
            found.push((name.to_string(), input.clone()));
        }
    }
    if found.is_empty() {
        return Err(FolderError::Empty("no input".into()));
    }
    found.sort();
    if let Some(w) = found.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(FolderError::Duplicate {
            name: w[0].0.clone(),
            first: w[0].1.display().to_string(),
            second: w[1].1.display().to_string(),
        });
    }
    Ok(found)
}

fn list_folder(dir: &Path, found: &mut Vec<(String, PathBuf)>) -> Result<(), FolderError> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io_err(&d))? {
            let entry = entry.map_err(io_err(&d))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io_err(&path))?;
            if kind.is_dir() {
                stack.push(path);
            } else if image_io::format_for_extension(&path).is_some() {
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
    Ok(())
}

/// Reads `files` in parallel. `progress` is called once per image.
pub fn read_images(
    files: &[(String, PathBuf)],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<FolderImage>, FolderError> {
    files
        .par_iter()
        .map(|(name, path)| {
            let (img, format) = image_io::read_image(path)?;
            progress(1);
            Ok(FolderImage {
                entry: Entry {
                    name: name.clone(),
                    format,
                    width: img.width as u32,
                    height: img.height as u32,
                },
                pixels: img.pixels,
            })
        })
        .collect()
}

/// A hidden sibling of `out` unique to this process.
fn staging_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    out.with_file_name(format!(".{name}.vlae-zip-partial-{}", std::process::id()))
}

/// Makes everything written so far on `path`'s filesystem durable: one `syncfs` where the
/// platform has it, an fsync of `path` elsewhere.
fn sync_filesystem(path: &Path) -> std::io::Result<()> {
    let f = std::fs::File::open(path)?;
    #[cfg(target_os = "linux")]
    {
        rustix::fs::syncfs(&f)?;
    }
    f.sync_all()
}

/// An output folder being written: images go into a fresh hidden staging folder beside it,
/// which is renamed into place by [`StagedFolder::commit`]. Dropped uncommitted, it removes
/// the staging folder, so a failed or interrupted run never leaves a partial output.
pub struct StagedFolder {
    staging: PathBuf,
    out: PathBuf,
    committed: bool,
}

impl StagedFolder {
    /// Checks that `out` does not exist or is an empty folder, and creates the staging
    /// folder (which must not exist).
    pub fn create(out: &Path) -> Result<Self, FolderError> {
        if out.exists() {
            let mut entries = std::fs::read_dir(out).map_err(io_err(out))?;
            if entries.next().is_some() {
                return Err(FolderError::OutputNotEmpty(out.display().to_string()));
            }
        }
        let staging = staging_path(out);
        std::fs::create_dir(&staging).map_err(io_err(&staging))?;
        Ok(StagedFolder {
            staging,
            out: out.to_path_buf(),
            committed: false,
        })
    }

    /// Writes one image. Files are created new: a name that differs from an earlier one
    /// only in case, on a case-insensitive filesystem, is an error, never an overwrite.
    pub fn write(&self, entry: &Entry, pixels: Vec<u8>) -> Result<(), FolderError> {
        let path = self.staging.join(&entry.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let bytes = image_io::encode_image(
            &BitImage {
                width: entry.width as usize,
                height: entry.height as usize,
                pixels,
            },
            entry.format,
        );
        std::fs::File::create_new(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .map_err(io_err(&path))
    }

    /// Makes the files durable and renames the staging folder to the output.
    pub fn commit(mut self) -> Result<(), FolderError> {
        sync_filesystem(&self.staging).map_err(io_err(&self.staging))?;
        if self.out.exists() {
            std::fs::remove_dir(&self.out).map_err(io_err(&self.out))?;
        }
        std::fs::rename(&self.staging, &self.out).map_err(io_err(&self.out))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedFolder {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Writes `bytes` to `path` through a new staging file, synced, then renamed. Without
/// `overwrite`, an existing `path` is an error.
pub fn write_file_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), FolderError> {
    if !overwrite && path.exists() {
        return Err(FolderError::OutputExists(path.display().to_string()));
    }
    let staging = staging_path(path);
    let result = std::fs::File::create_new(&staging)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&staging, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    result.map_err(io_err(path))
}
