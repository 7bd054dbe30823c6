//! Images on disk: finding and reading the images to compress, and writing decompressed
//! images so that an output folder either appears complete or not at all.
//!
//! Everything written goes first to a staging path of one naming, `.NAME.vlae-zip-partial-
//! PID-RANDOM` beside an output or `.vlae-zip-partial-PID-RANDOM` inside an empty output
//! folder: fresh (created exclusively, with a random part, so that a rerun that happens to
//! get the same process id never meets its predecessor's), removed when the write fails,
//! when the process is ended by a signal ([`abandon_staging`]), or, when the process died
//! without a chance to clean up, by the next run that stages in the same folder
//! ([`remove_stale_staging`]).
#![forbid(unsafe_code)]

use crate::container::{is_safe_name, Entry, ImageFormat};
use crate::image_io::{self, BitImage, ImageError};
use rayon::prelude::*;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

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
    #[error("{name}: {reason}; decompressing would fail, so it is not stored")]
    NameTooLong { name: String, reason: String },
    #[error("{0}: no .pbm, .png or .tif images found")]
    Empty(String),
    #[error("{name}: two inputs would be stored under this name ({first} and {second})")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
    #[error("{name}: would be both a file ({file}) and the folder of {inside}; decompress could not write both")]
    FileIsFolder {
        name: String,
        file: String,
        inside: String,
    },
    #[error("{0}: a symbolic link to a folder, which is not followed (it could loop); name the folder it links to as an input of its own")]
    LinkedFolder(String),
    #[error("{0}: output folder exists and is not empty")]
    OutputNotEmpty(String),
    #[error("{0}: output exists (use --force to overwrite)")]
    OutputExists(String),
    #[error("{0}: output is a folder")]
    OutputIsFolder(String),
    #[error("{0}: output is a block device or a socket, not a file, a character device or a FIFO")]
    OutputNotWritable(String),
    #[error("{0}: output is a device (use --force to write the archive into it)")]
    OutputIsDevice(String),
    #[error("{0}: output is a terminal; an archive is binary")]
    OutputIsTerminal(String),
    #[error("{0}: output exists and is not a folder")]
    OutputNotFolder(String),
    #[error("{0}: a symbolic link to nothing is there (use --force to replace it)")]
    DanglingLink(String),
    #[error("the output would hold {value}, more than the limit of {limit} (raise it with {option}, or lift the limits with --allow-large)")]
    OverLimit {
        value: String,
        limit: String,
        option: &'static str,
    },
    #[error("{path}: the output needs up to {need} and the filesystem has {free} free")]
    NoRoom {
        path: String,
        need: String,
        free: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FolderError + '_ {
    move |reason| FolderError::Io {
        path: path.display().to_string(),
        reason,
    }
}

/// `n` and the noun, in the singular for one: "1 image", "2 images".
pub fn count(n: u64, noun: &str) -> String {
    let n_text = group_digits(n);
    if n == 1 {
        format!("{n_text} {noun}")
    } else {
        format!("{n_text} {noun}s")
    }
}

/// `n` with a comma between each group of three digits: 100,000.
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A byte count for people: exact below 10 kB, else in kB, MB, GB (powers of 1000, as `df
/// -H` and disk labels count).
pub fn human_bytes(n: u64) -> String {
    if n < 10_000 {
        return count(n, "byte");
    }
    let units = ["kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", units[unit])
}

/// An image read from disk, with the entry it will have in an archive.
#[derive(Clone)]
pub struct FolderImage {
    pub entry: Entry,
    /// `width × height` bytes of 0/1.
    pub pixels: Vec<u8>,
}

/// The input that stands for standard input.
pub const STDIN: &str = "-";

/// Longest path the kernel takes, with its terminating NUL (Linux's PATH_MAX).
const PATH_MAX: usize = 4096;
/// Longest name of one path component (NAME_MAX of Linux and of most filesystems).
pub const NAME_MAX: usize = 255;
/// Longest stored name that decompress can create under its staging folder: PATH_MAX less
/// the NUL and room for the staging folder's name (at most [`NAME_MAX`] bytes) and its
/// slash. The output folder's own path is not known when compressing and is not counted.
pub const MAX_STORED_PATH: usize = PATH_MAX - 1 - (NAME_MAX + 1);

/// Fails unless decompress can create `name` on Linux: each component at most NAME_MAX
/// bytes (a folder compressed from another system can hold longer ones), the whole at most
/// [`MAX_STORED_PATH`].
fn check_name_fits(name: &str) -> Result<(), FolderError> {
    let too_long = |reason: String| FolderError::NameTooLong {
        name: name.to_string(),
        reason,
    };
    if let Some(part) = name.split('/').find(|p| p.len() > NAME_MAX) {
        return Err(too_long(format!(
            "a component of {} is longer than {NAME_MAX} bytes",
            count(part.len() as u64, "byte")
        )));
    }
    if name.len() > MAX_STORED_PATH {
        return Err(too_long(format!(
            "the name is {}, longer than the {MAX_STORED_PATH} bytes that fit under an output folder",
            count(name.len() as u64, "byte")
        )));
    }
    Ok(())
}

/// What a path holds when it is neither a file nor a folder, in words, for errors.
fn refuse_special(path: &Path, meta: &std::fs::Metadata) -> Result<(), FolderError> {
    match image_io::special_kind(&meta.file_type()) {
        None => Ok(()),
        Some(kind) => Err(ImageError::NotRegular {
            path: path.display().to_string(),
            kind,
        }
        .into()),
    }
}

/// The image files to compress, as (stored name, path), sorted by name so that archives do
/// not depend on directory order or argument order. A file argument is stored under its
/// file name; a folder's `.pbm`, `.png`, `.tif` and `.tiff` files, found recursively, under
/// their paths relative to it; [`STDIN`] under `stdin.pbm`, `stdin.png` or `stdin.tif` (its
/// format is known once read, see [`read_images`]). A TIFF's pages are stored under its
/// name and their page numbers (see [`read_images`]). A symbolic link to a folder inside
/// a folder is an error: following it could loop, and passing it by would drop its
/// images unseen (name the folder it links to as an input of its own); one that links
/// into the folder itself is passed by, its images stored under their own paths. Inputs
/// must be regular files: a FIFO, device or socket is refused, named, before anything is
/// read from it (a tape rewinds when opened; /dev/zero never ends).
pub fn list_inputs(inputs: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, FolderError> {
    let mut found = Vec::new();
    for input in inputs {
        if input == Path::new(STDIN) {
            found.push(("stdin".to_string(), input.clone()));
            continue;
        }
        let meta = std::fs::metadata(input).map_err(io_err(input))?;
        if meta.is_dir() {
            let before = found.len();
            list_folder(input, &mut found)?;
            if found.len() == before {
                return Err(FolderError::Empty(input.display().to_string()));
            }
        } else {
            refuse_special(input, &meta)?;
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
    sort_and_check_names(&mut found)?;
    Ok(found)
}

/// Sorts (name, path) pairs by name and fails on a name stored twice or one that
/// decompress could not create.
fn sort_and_check_names(found: &mut [(String, PathBuf)]) -> Result<(), FolderError> {
    found.sort();
    if let Some(w) = found.windows(2).find(|w| w[0].0 == w[1].0) {
        let shown = |p: &Path| {
            if p == Path::new(STDIN) {
                "standard input".to_string()
            } else {
                p.display().to_string()
            }
        };
        return Err(FolderError::Duplicate {
            name: w[0].0.clone(),
            first: shown(&w[0].1),
            second: shown(&w[1].1),
        });
    }
    found.iter().try_for_each(|(name, _)| check_name_fits(name))
}

fn list_folder(dir: &Path, found: &mut Vec<(String, PathBuf)>) -> Result<(), FolderError> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io_err(&d))? {
            let entry = entry.map_err(io_err(&d))?;
            let path = entry.path();
            let mut kind = entry.file_type().map_err(io_err(&path))?;
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            // Following a link to a folder could loop, and passing it by would drop its
            // images unseen, unless it links into the folder being listed, whose images
            // are stored under their own paths (`latest -> 2024/`).
            if kind.is_symlink() && std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                let inside = std::fs::canonicalize(&path)
                    .and_then(|target| Ok(target.starts_with(std::fs::canonicalize(dir)?)))
                    .unwrap_or(false);
                if inside {
                    continue;
                }
                return Err(FolderError::LinkedFolder(path.display().to_string()));
            }
            if image_io::format_for_extension(&path).is_none() {
                continue;
            }
            if kind.is_symlink() {
                // A link to an image is read through.
                kind = std::fs::metadata(&path).map_err(io_err(&path))?.file_type();
            }
            if let Some(what) = image_io::special_kind(&kind) {
                return Err(ImageError::NotRegular {
                    path: path.display().to_string(),
                    kind: what,
                }
                .into());
            }
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
    Ok(())
}

/// The image file on standard input, which must not be a terminal (nobody types a PBM).
fn read_stdin_image() -> Result<image_io::Pages, FolderError> {
    use std::io::IsTerminal;
    let name = Path::new("standard input");
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(ImageError::Invalid {
            path: name.display().to_string(),
            reason: "is a terminal: pipe an image in, or name a file".into(),
        }
        .into());
    }
    Ok(image_io::read_image_file_from(stdin.lock(), name)?)
}

/// Reads `files` in parallel, [`STDIN`] from standard input. `progress` is called once per
/// file. The image from standard input takes its format's extension. A TIFF's pages become
/// the images `<name>/0001`, `<name>/0002`, … (see [`image_io::tiff_page_name`]), which
/// decompress writes back as one file; the names are then sorted again (`a.tif/0001` sorts
/// after `a.tif.pbm`) and checked for duplicates, and for a TIFF whose name is also a
/// folder of other images (decompress could not write both).
pub fn read_images(
    files: &[(String, PathBuf)],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<FolderImage>, FolderError> {
    let read =
        |name: &String, path: &PathBuf| -> Result<Vec<(FolderImage, PathBuf)>, FolderError> {
            let stdin = path == Path::new(STDIN);
            let pages = if stdin {
                read_stdin_image()?
            } else {
                image_io::read_image_file(path)?
            };
            progress(1);
            let images = pages.into_iter().enumerate().map(|(i, (img, format))| {
                let name = match format {
                    ImageFormat::TiffPage if stdin => {
                        image_io::tiff_page_name(&format!("{name}.tif"), i + 1)
                    }
                    ImageFormat::TiffPage => image_io::tiff_page_name(name, i + 1),
                    ImageFormat::Pbm if stdin => format!("{name}.pbm"),
                    ImageFormat::PngGray { .. } | ImageFormat::PngPalette { .. } if stdin => {
                        format!("{name}.png")
                    }
                    _ => name.clone(),
                };
                let entry = Entry {
                    name,
                    format,
                    width: img.width as u32,
                    height: img.height as u32,
                };
                (
                    FolderImage {
                        entry,
                        pixels: img.pixels,
                    },
                    path.clone(),
                )
            });
            Ok(images.collect())
        };
    let per_file: Vec<Vec<(FolderImage, PathBuf)>> = files
        .par_iter()
        .map(|(name, path)| read(name, path))
        .collect::<Result<_, _>>()?;
    let mut images: Vec<(FolderImage, PathBuf)> = per_file.into_iter().flatten().collect();
    images.sort_by(|a, b| a.0.entry.name.cmp(&b.0.entry.name));
    let mut names: Vec<(String, PathBuf)> = images
        .iter()
        .map(|(i, p)| (i.entry.name.clone(), p.clone()))
        .collect();
    sort_and_check_names(&mut names)?;
    check_files_are_not_folders(&images)?;
    Ok(images.into_iter().map(|(i, _)| i).collect())
}

/// Fails when the file an image is written to is also a folder of other images, which
/// decompress could not write both of: `a.pbm` beside `a.pbm/x.pbm`, or a TIFF's pages
/// `a.tif/0001`, … (written to `a.tif`) beside `a.tif/x.pbm` or `a.tif/0001/x.pbm`, or beside
/// an image stored as `a.tif`.
fn check_files_are_not_folders(images: &[(FolderImage, PathBuf)]) -> Result<(), FolderError> {
    check_layout(
        images
            .iter()
            .map(|(image, path)| (&image.entry, path.display().to_string())),
    )
}

/// Fails when an archive's images could not all be written out: one's file would be the
/// folder of another's (`a.pbm` and `a.pbm/x.pbm`; a TIFF's pages `a.tif/0001`, … and
/// `a.tif/x.pbm`), or one file would be written twice. Compress never writes such an
/// archive; one made by hand is refused by `test` and by decompress before anything is
/// decoded. `entries` come in archive order, names strictly increasing.
///
/// One pass, without a set of names: an archive of a few kilobytes may name 2^24 images
/// of 4,096-byte names, and a name may have 2,000 folders. The names inside a folder
/// `F/` sort together, between `F/` and `F0` (`0` follows `/`), so a stack of the earlier
/// names whose such range is still ahead holds every name that may be a folder of the
/// next one; each on the stack is longer than the one below it, so it holds at most
/// 4,096 names. A TIFF's pages must be consecutive and alone in their file's range: the
/// entry before the first page and the one after the last must lie outside it.
pub fn check_archive_layout(entries: impl Iterator<Item = Entry>) -> Result<(), FolderError> {
    let mut stack: Vec<String> = Vec::new();
    let mut previous: Option<Entry> = None;
    let tiff = |e: &Entry| match e.format {
        ImageFormat::TiffPage => Some(file_of(e).to_string()),
        _ => None,
    };
    for entry in entries {
        let name = entry.name.as_str();
        while stack.last().is_some_and(|f| !in_folder_range(name, f)) {
            stack.pop();
        }
        if let Some(folder) = stack.last().filter(|f| is_inside(name, f)) {
            return Err(file_is_folder(folder, folder, name));
        }
        if let Some(prev) = &previous {
            let (before, here) = (tiff(prev), tiff(&entry));
            // A run of pages begins: nothing before it may lie in its file's folder.
            if let Some(file) = here
                .as_deref()
                .filter(|&f| before.as_deref() != Some(f) && is_inside(&prev.name, f))
            {
                return Err(file_is_folder(file, name, &prev.name));
            }
            // A run of pages ends: nothing after it may lie in its file's folder.
            if let Some(file) = before
                .as_deref()
                .filter(|&f| here.as_deref() != Some(f) && is_inside(name, f))
            {
                return Err(file_is_folder(file, &prev.name, name));
            }
        }
        stack.push(entry.name.clone());
        previous = Some(entry);
    }
    Ok(())
}

/// Whether `name` lies inside the folder `folder`.
fn is_inside(name: &str, folder: &str) -> bool {
    name.len() > folder.len() && name.starts_with(folder) && name.as_bytes()[folder.len()] == b'/'
}

/// Whether `name` sorts before `folder` followed by `0`, the first name after every name
/// inside `folder` (`/` is followed by `0` bytewise).
fn in_folder_range(name: &str, folder: &str) -> bool {
    let bound = folder.as_bytes().iter().chain(b"0");
    name.as_bytes().iter().lt(bound)
}

fn file_is_folder(folder: &str, file: &str, inside: &str) -> FolderError {
    FolderError::FileIsFolder {
        name: folder.to_string(),
        file: file.to_string(),
        inside: inside.to_string(),
    }
}

/// The check of [`check_files_are_not_folders`]: each image comes with its origin (an
/// input path), and images that share a file must share their origin. Origins are
/// compared as shown, which is how the error names them. Inputs are files on disk, which
/// bound its sets; archives are checked by [`check_archive_layout`].
fn check_layout<'a>(images: impl Iterator<Item = (&'a Entry, String)>) -> Result<(), FolderError> {
    let images: Vec<(&Entry, String)> = images.collect();
    let mut files: std::collections::HashMap<&str, &String> = std::collections::HashMap::new();
    for (entry, origin) in &images {
        if let Some(first) = files.insert(file_of(entry), origin) {
            if first != origin {
                return Err(FolderError::Duplicate {
                    name: file_of(entry).to_string(),
                    first: first.to_string(),
                    second: origin.to_string(),
                });
            }
        }
    }
    for (entry, origin) in &images {
        let mut prefix = file_of(entry);
        while let Some((folder, _)) = prefix.rsplit_once('/') {
            if let Some(file) = files.get(folder) {
                return Err(FolderError::FileIsFolder {
                    name: folder.to_string(),
                    file: file.to_string(),
                    inside: origin.to_string(),
                });
            }
            prefix = folder;
        }
    }
    Ok(())
}

/// The file an image is written to: a TIFF page's file (its name up to the page number),
/// else its name.
fn file_of(entry: &Entry) -> &str {
    let name = entry.name.as_str();
    match entry.format {
        ImageFormat::TiffPage => image_io::tiff_page_of(name).map_or(name, |(file, _)| file),
        _ => name,
    }
}

// ---------------------------------------------------------------------------------------
// Staging: names, the registry a signal empties, stale leftovers.

/// What every staging name holds after its leading dot (and the output's name): this mark,
/// then the owning process's id, a dash and a random part.
const STAGING_MARK: &str = "vlae-zip-partial-";
/// Random characters in a staging name: with the process id, no two runs meet.
const STAGING_RANDOM: usize = 8;
/// Bytes of the output's name kept in a staging name beside it, so that the staging name
/// stays within [`NAME_MAX`].
const STAGING_NAME_KEPT: usize = 64;

/// The staging paths this process has created and not yet committed or removed. The lock
/// is held for every write into them and for each commit, so that [`abandon_staging`],
/// which removes them and then keeps the lock, never races a write that would recreate a
/// folder, and never removes half of a commit.
static STAGING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn staging_lock() -> MutexGuard<'static, Vec<PathBuf>> {
    STAGING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes every staging path of this process and blocks all further writes and commits:
/// what a handler of SIGINT or SIGTERM calls just before it ends the process, so that an
/// interrupted run leaves nothing behind. Never returns control to writing: the lock is
/// kept for the rest of the process's life.
pub fn abandon_staging() {
    let guard = staging_lock();
    for path in guard.iter() {
        remove_any(path);
    }
    std::mem::forget(guard);
}

/// Removes a file or a whole folder, ignoring failures (a cleanup's last resort).
fn remove_any(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => drop(std::fs::remove_dir_all(path)),
        Ok(_) => drop(std::fs::remove_file(path)),
        Err(_) => {}
    }
}

/// The name prefix of a staging path for `label` (the output's file name, or nothing for a
/// staging folder inside the output), up to the random part.
fn staging_prefix(label: Option<&OsStr>) -> String {
    let pid = std::process::id();
    match label {
        None => format!(".{STAGING_MARK}{pid}-"),
        Some(name) => {
            let name = name.to_string_lossy();
            let mut cut = name.len().min(STAGING_NAME_KEPT);
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            format!(".{}.{STAGING_MARK}{pid}-", &name[..cut])
        }
    }
}

/// The id of the process that made a staging path of this naming, or `None` for any other
/// name. Names of earlier builds (with no random part) are recognised too.
fn staging_owner(name: &OsStr) -> Option<u32> {
    let name = name.to_str()?;
    if !name.starts_with('.') {
        return None;
    }
    let rest = &name[name.rfind(STAGING_MARK)? + STAGING_MARK.len()..];
    let (pid, random) = rest.split_once('-').unwrap_or((rest, ""));
    let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    (digits && random.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| pid.parse().ok())
        .flatten()
}

/// Whether no process runs under `pid`: its staging paths are leftovers. The id of this
/// process counts as gone too (its own live paths are skipped by the caller): a process
/// that died earlier under the same id left them.
fn owner_is_gone(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{test_kill_process, Pid};
        match i32::try_from(pid).ok().and_then(Pid::from_raw) {
            Some(p) => test_kill_process(p) == Err(rustix::io::Errno::SRCH),
            None => false,
        }
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// Removes the stale staging paths in `dir`: those of this module's naming whose process no
/// longer runs (a run killed by SIGKILL or a power cut had no chance to remove its own).
/// The rule is the process id alone, not an age: a long decompression of a live process is
/// never touched, and a leftover goes at the next run in the same folder. Failures are
/// ignored: a leftover that cannot be removed is only clutter, and a later check reports
/// what matters (an output folder that is not empty).
pub fn remove_stale_staging(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let live = staging_lock().clone();
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = staging_owner(&entry.file_name()).is_some_and(owner_is_gone);
        if stale && !live.contains(&path) {
            remove_any(&path);
        }
    }
}

/// The folder a path lives in: its parent, or `.` for a bare name.
fn parent_folder(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Fails unless this process may create files in `dir` (checked before any work, so that a
/// read-only or foreign folder is reported at once rather than after decoding).
fn check_writable(dir: &Path) -> Result<(), FolderError> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{access, Access};
        access(dir, Access::WRITE_OK | Access::EXEC_OK)
            .map_err(|e| io_err(dir)(std::io::Error::from(e)))?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
    Ok(())
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

/// Renames `from` to `to` unless `to` exists (atomically where the kernel can).
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(std::io::ErrorKind::AlreadyExists.into());
    }
    std::fs::rename(from, to)
}

// ---------------------------------------------------------------------------------------
// Output folders.

/// Where a folder's staging goes.
enum Placement {
    /// `out` does not exist: a sibling staging folder is renamed to it, so that the whole
    /// output appears at once.
    Beside,
    /// `out` is an existing empty folder, which may be `.`, a symbolic link, a mount point,
    /// or a folder in a parent the user cannot write: none can be renamed over, so the
    /// staging folder is made inside it (on its filesystem, where the user can write) and
    /// its entries are renamed up one by one when everything has been written.
    Inside,
}

/// An output folder, checked and not yet created: [`OutputFolder::check`] runs every check
/// that does not need the archive, before anything is read or decoded.
pub struct OutputFolder {
    out: PathBuf,
    placement: Placement,
}

impl OutputFolder {
    /// Checks that `out` is an empty folder (any kind: `.`, a symbolic link to one, a mount
    /// point), or does not exist in a folder this process can write; removes stale staging
    /// leftovers where the staging will go.
    pub fn check(out: &Path) -> Result<Self, FolderError> {
        let placement = match std::fs::metadata(out) {
            Ok(meta) if meta.is_dir() => {
                remove_stale_staging(out);
                let mut entries = std::fs::read_dir(out).map_err(io_err(out))?;
                if entries.next().is_some() {
                    return Err(FolderError::OutputNotEmpty(out.display().to_string()));
                }
                check_writable(out)?;
                Placement::Inside
            }
            Ok(_) => return Err(FolderError::OutputNotFolder(out.display().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(out).is_ok() {
                    return Err(FolderError::DanglingLink(out.display().to_string()));
                }
                if out.file_name().is_none() {
                    return Err(FolderError::BadName(out.display().to_string()));
                }
                let parent = parent_folder(out);
                std::fs::read_dir(parent).map_err(io_err(parent))?;
                check_writable(parent)?;
                remove_stale_staging(parent);
                Placement::Beside
            }
            Err(e) => return Err(io_err(out)(e)),
        };
        Ok(OutputFolder {
            out: out.to_path_buf(),
            placement,
        })
    }

    /// A folder on the filesystem that will receive the images: where free space counts.
    pub fn filesystem(&self) -> &Path {
        match self.placement {
            Placement::Beside => parent_folder(&self.out),
            Placement::Inside => &self.out,
        }
    }

    /// Creates the staging folder, fresh and uniquely named.
    pub fn stage(self) -> Result<StagedFolder, FolderError> {
        let (dir, label) = match self.placement {
            Placement::Beside => (parent_folder(&self.out), self.out.file_name()),
            Placement::Inside => (self.out.as_path(), None),
        };
        let prefix = staging_prefix(label);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).rand_bytes(STAGING_RANDOM);
        #[cfg(unix)]
        {
            // The folder keeps the mode that `mkdir` gives under the umask, as any output.
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o777));
        }
        let mut live = staging_lock();
        let staging = builder.tempdir_in(dir).map_err(io_err(dir))?.keep();
        live.push(staging.clone());
        drop(live);
        Ok(StagedFolder {
            staging,
            out: self.out,
            inside: matches!(self.placement, Placement::Inside),
            committed: false,
            tiff: Mutex::new(None),
        })
    }
}

/// An output folder being written: images go into a fresh hidden staging folder, which
/// [`StagedFolder::commit`] moves into place. Dropped uncommitted, it removes the staging
/// folder, so a failed or interrupted run never leaves a partial output.
pub struct StagedFolder {
    staging: PathBuf,
    out: PathBuf,
    inside: bool,
    committed: bool,
    /// The TIFF file whose pages are arriving (its name and its pages so far): written
    /// when an entry of another file comes, or at the commit.
    tiff: Mutex<Option<(String, image_io::TiffPages)>>,
}

impl StagedFolder {
    /// [`OutputFolder::check`] and [`OutputFolder::stage`] at once, for callers with no
    /// archive to check in between.
    pub fn create(out: &Path) -> Result<Self, FolderError> {
        OutputFolder::check(out)?.stage()
    }

    /// Where the images are written until the commit.
    pub fn staging_path(&self) -> &Path {
        &self.staging
    }

    /// Writes one image, given in archive order. Files are created new: a name that
    /// differs from an earlier one only in case, on a case-insensitive filesystem, is an
    /// error, never an overwrite. A TIFF page (`<file>/<page>`) joins the pages of `<file>`
    /// before it, and the file is written once its last page has come: when an entry of
    /// another file is written, or at the commit.
    pub fn write(&self, entry: &Entry, pixels: Vec<u8>) -> Result<(), FolderError> {
        let img = BitImage {
            width: entry.width as usize,
            height: entry.height as usize,
            pixels,
        };
        let mut tiff = self.tiff.lock().unwrap_or_else(PoisonError::into_inner);
        let page_of = (entry.format == ImageFormat::TiffPage)
            .then(|| image_io::tiff_page_of(&entry.name))
            .map(|page| {
                page.ok_or_else(|| ImageError::Invalid {
                    path: entry.name.clone(),
                    reason: "is a TIFF page whose name does not end in /<page number>".into(),
                })
            })
            .transpose()?;
        let file = page_of.map(|(file, _)| file);
        if tiff
            .as_ref()
            .is_some_and(|(name, _)| Some(name.as_str()) != file)
        {
            let (name, pages) = tiff.take().expect("checked");
            self.write_file(&name, &pages.finish(Path::new(&name))?)?;
        }
        let Some(file) = file else {
            drop(tiff);
            let name = Path::new(&entry.name);
            return self.write_file(
                &entry.name,
                &image_io::try_encode_image(&img, entry.format, name)?,
            );
        };
        let (_, pages) = tiff.get_or_insert_with(|| (file.to_string(), Default::default()));
        pages.push(&img, Path::new(file))?;
        Ok(())
    }

    /// Writes the TIFF whose pages have come, if any.
    fn flush_tiff(&self) -> Result<(), FolderError> {
        let pending = self
            .tiff
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match pending {
            Some((name, pages)) => self.write_file(&name, &pages.finish(Path::new(&name))?),
            None => Ok(()),
        }
    }

    /// Writes a file's bytes under `name` in the staging folder, created new.
    fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), FolderError> {
        let _held = staging_lock();
        let path = self.staging.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        std::fs::File::create_new(&path)
            .and_then(|mut f| f.write_all(bytes))
            .map_err(io_err(&path))
    }

    /// Writes the last TIFF, makes the files durable and moves them into place.
    pub fn commit(mut self) -> Result<(), FolderError> {
        self.flush_tiff()?;
        sync_filesystem(&self.staging).map_err(io_err(&self.staging))?;
        let mut live = staging_lock();
        if self.inside {
            move_entries_up(&self.staging, &self.out)?;
            std::fs::remove_dir(&self.staging).map_err(io_err(&self.staging))?;
        } else {
            // Replaces an empty folder made meanwhile; fails on anything else.
            std::fs::rename(&self.staging, &self.out).map_err(io_err(&self.out))?;
        }
        live.retain(|p| p != &self.staging);
        self.committed = true;
        Ok(())
    }
}

/// Renames every entry of `staging` into `out`, its parent, never over an existing name.
/// On a failure the entries already moved are moved back, so that the output stays empty.
fn move_entries_up(staging: &Path, out: &Path) -> Result<(), FolderError> {
    let names: Vec<_> = std::fs::read_dir(staging)
        .map_err(io_err(staging))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_err(staging))?;
    for (i, name) in names.iter().enumerate() {
        let target = out.join(name);
        if let Err(e) = rename_no_replace(&staging.join(name), &target) {
            for moved in &names[..i] {
                let _ = std::fs::rename(out.join(moved), staging.join(moved));
            }
            return Err(io_err(&target)(e));
        }
    }
    Ok(())
}

impl Drop for StagedFolder {
    fn drop(&mut self) {
        if !self.committed {
            let mut live = staging_lock();
            remove_any(&self.staging);
            live.retain(|p| p != &self.staging);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Output files.

/// Fails unless `path` can take a new file: a folder there is always refused; an existing
/// file, or a symbolic link (even one to nothing), only without `overwrite`. The folder it
/// goes in must exist and be writable. A FIFO or `/dev/null` there is written into as it
/// is; another character device only with `overwrite`; a block device or a socket is
/// refused ([`Special`]). Run before the work that makes the file.
pub fn check_output_file(path: &Path, overwrite: bool) -> Result<(), FolderError> {
    let shown = || path.display().to_string();
    match special_output(path) {
        Some(Special::Stream) => return Ok(()),
        Some(Special::Device) if overwrite => return Ok(()),
        Some(Special::Device) => return Err(FolderError::OutputIsDevice(shown())),
        Some(Special::Unwritable) => return Err(FolderError::OutputNotWritable(shown())),
        None => {}
    }
    match std::fs::symlink_metadata(path) {
        Ok(link) => {
            let shown = path.display().to_string();
            match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => return Err(FolderError::OutputIsFolder(shown)),
                Err(_) if link.file_type().is_symlink() && !overwrite => {
                    return Err(FolderError::DanglingLink(shown))
                }
                _ if !overwrite => return Err(FolderError::OutputExists(shown)),
                _ => {}
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path)(e)),
    }
    if path.file_name().is_none() {
        return Err(FolderError::BadName(path.display().to_string()));
    }
    let parent = parent_folder(path);
    std::fs::read_dir(parent).map_err(io_err(parent))?;
    check_writable(parent)
}

/// What an output path (links followed) is, where it is neither a file nor missing: a
/// FIFO or `/dev/null`, written into as they are; another character device, written into
/// only with `--force`; or a block device or socket, never written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Special {
    Stream,
    Device,
    Unwritable,
}

/// What `path` is, if [`Special`].
fn special_output(path: &Path) -> Option<Special> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let kind = std::fs::metadata(path).ok()?;
        let null = || std::fs::metadata("/dev/null").is_ok_and(|n| n.rdev() == kind.rdev());
        let file_type = kind.file_type();
        if file_type.is_fifo() || (file_type.is_char_device() && null()) {
            return Some(Special::Stream);
        }
        if file_type.is_char_device() {
            return Some(Special::Device);
        }
        if file_type.is_block_device() || file_type.is_socket() {
            return Some(Special::Unwritable);
        }
    }
    let _ = path;
    None
}

/// Writes `bytes` into the stream or device at `path`, which [`special_output`] found:
/// opened first and then checked, so that a file put there meanwhile is not overwritten
/// in place, and never a terminal.
fn write_into(path: &Path, bytes: &[u8]) -> Result<(), FolderError> {
    use std::io::IsTerminal;
    let shown = path.display().to_string();
    let mut stream = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    if stream.metadata().map_err(io_err(path))?.is_file() {
        return Err(FolderError::OutputExists(shown));
    }
    if stream.is_terminal() {
        return Err(FolderError::OutputIsTerminal(shown));
    }
    stream.write_all(bytes).map_err(io_err(path))
}

/// Writes `bytes` to `path` through a new staging file (created exclusively, beside it),
/// synced, then linked into place. Without `overwrite` an existing `path` is an error, even
/// one that appears while the bytes are written (the final rename never replaces); with it,
/// the file (or symbolic link) there is replaced. A FIFO or a device (`-o /dev/null`) is
/// written into instead ([`check_output_file`] says which): renaming a file over it would
/// replace the node.
pub fn write_file_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), FolderError> {
    check_output_file(path, overwrite)?;
    if special_output(path).is_some() {
        return write_into(path, bytes);
    }
    let parent = parent_folder(path);
    remove_stale_staging(parent);
    let prefix = staging_prefix(path.file_name());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).rand_bytes(STAGING_RANDOM);
    #[cfg(unix)]
    {
        // The file keeps the mode that creating it plainly gives under the umask.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut live = staging_lock();
    let mut file = builder.tempfile_in(parent).map_err(io_err(parent))?;
    let staged = file.path().to_path_buf();
    live.push(staged.clone());
    drop(live);
    let written = file
        .write_all(bytes)
        .and_then(|()| file.as_file().sync_all());
    // Linked into place under the lock, so that a signal's cleanup cannot race it.
    let mut live = staging_lock();
    let result = match written {
        Err(e) => {
            drop(file);
            Err(io_err(path)(e))
        }
        Ok(()) => {
            let persisted = if overwrite {
                file.persist(path)
            } else {
                file.persist_noclobber(path)
            };
            match persisted {
                Ok(_) => Ok(()),
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(FolderError::OutputExists(path.display().to_string()))
                }
                Err(e) => Err(io_err(path)(e.error)),
            }
        }
    };
    live.retain(|p| p != &staged);
    result
}

// ---------------------------------------------------------------------------------------
// How much an archive expands to.

/// Files, folders and bytes that decompressing creates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    pub files: u64,
    pub folders: u64,
    /// The files' sizes: exact for PBM, an upper bound for PNG (its raw rows, stored
    /// uncompressed, as deflate's worst case) and TIFF (each page's rows packed, stored
    /// uncompressed, the most a page is written in).
    pub bytes: u64,
}

/// Most files an output may hold unless the user raises the limit: lets the 60,000
/// training digits of MNIST through.
pub const DEFAULT_MAX_FILES: u64 = 100_000;
/// Most bytes an output may hold unless the user raises the limit: lets 100 letter-size
/// pages at 600 dpi (5100 × 6600) through even as 16-bit PNGs (6.7 GB).
pub const DEFAULT_MAX_BYTES: u64 = 8_000_000_000;

/// The limits decompress works under: [`DEFAULT_MAX_FILES`] and [`DEFAULT_MAX_BYTES`]
/// unless the user says otherwise; `None` lifts a limit.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_files: Option<u64>,
    pub max_bytes: Option<u64>,
    /// Whether to compare the output with the free space and inodes of its filesystem.
    pub check_room: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_files: Some(DEFAULT_MAX_FILES),
            max_bytes: Some(DEFAULT_MAX_BYTES),
            check_room: true,
        }
    }
}

/// The size of the file that decompress writes for `entry`; for a TIFF page, what the page
/// adds to its file.
pub fn file_bytes(entry: &Entry) -> u64 {
    let (w, h) = (u64::from(entry.width), u64::from(entry.height));
    match entry.format {
        ImageFormat::Pbm => format!("P4\n{w} {h}\n").len() as u64 + w.div_ceil(8) * h,
        ImageFormat::TiffPage => image_io::page_file_bytes(w, h),
        ImageFormat::PngGray { bit_depth } | ImageFormat::PngPalette { bit_depth } => {
            let raw = h * (1 + (w * u64::from(bit_depth)).div_ceil(8));
            // Stored deflate blocks (5 bytes each 65,535), zlib's and the chunks' framing.
            raw + raw / 64 + 1024
        }
    }
}

/// Counts an archive's output entry by entry, in archive order (names sorted bytewise, so
/// that each folder's entries are consecutive and a folder is counted when first met).
#[derive(Default)]
pub struct ExpansionCounter {
    total: Expansion,
    folder: String,
    /// The TIFF file the previous entry was a page of.
    tiff: Option<String>,
}

impl ExpansionCounter {
    /// Counts one entry; fails on a name this system cannot create (an archive made on
    /// a system with longer names), so that it is refused before anything is decoded. The
    /// pages of a TIFF are one file, named without the page number.
    pub fn add(&mut self, entry: &Entry) -> Result<(), FolderError> {
        let tiff = (entry.format == ImageFormat::TiffPage)
            .then(|| image_io::tiff_page_of(&entry.name))
            .flatten()
            .map(|(file, _)| file);
        let name = tiff.unwrap_or(&entry.name);
        check_name_fits(name)?;
        if tiff.is_none() || tiff != self.tiff.as_deref() {
            self.total.files += 1;
        }
        self.tiff = tiff.map(str::to_string);
        self.total.bytes = self.total.bytes.saturating_add(file_bytes(entry));
        let folder = name.rsplit_once('/').map_or("", |(f, _)| f);
        // Stored names have no empty components; the empty folder is the output itself.
        let parts = |f: &'_ str| f.split('/').filter(|p| !p.is_empty()).count();
        let shared = folder
            .split('/')
            .zip(self.folder.split('/'))
            .take_while(|(a, b)| a == b && !a.is_empty())
            .count();
        self.total.folders += (parts(folder) - shared) as u64;
        self.folder.clear();
        self.folder.push_str(folder);
        Ok(())
    }

    pub fn total(&self) -> Expansion {
        self.total
    }
}

/// Free space and inodes of a filesystem, as an unprivileged user may use them.
#[derive(Clone, Copy, Debug)]
pub struct Room {
    pub bytes: u64,
    /// `None` where the filesystem has no inode limit to report.
    pub inodes: Option<u64>,
    /// The filesystem's block size: each file takes whole blocks.
    pub block: u64,
}

/// The room on the filesystem that holds `dir`, where the platform reports it.
pub fn room(dir: &Path) -> Result<Option<Room>, FolderError> {
    #[cfg(target_os = "linux")]
    {
        let s = rustix::fs::statvfs(dir).map_err(|e| io_err(dir)(e.into()))?;
        Ok(Some(Room {
            bytes: s.f_bavail.saturating_mul(s.f_frsize),
            inodes: (s.f_files > 0).then_some(s.f_favail),
            block: s.f_frsize.max(1),
        }))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        Ok(None)
    }
}

impl Expansion {
    /// Fails when the output is over `limits`.
    pub fn check_limits(&self, limits: &Limits) -> Result<(), FolderError> {
        if let Some(max) = limits.max_files.filter(|&m| self.files > m) {
            return Err(FolderError::OverLimit {
                value: count(self.files, "file"),
                limit: count(max, "file"),
                option: "--max-files",
            });
        }
        if let Some(max) = limits.max_bytes.filter(|&m| self.bytes > m) {
            return Err(FolderError::OverLimit {
                value: format!("up to {}", human_bytes(self.bytes)),
                limit: human_bytes(max),
                option: "--max-bytes",
            });
        }
        Ok(())
    }

    /// Fails when `room` (of the filesystem at `dir`) cannot hold the output: its bytes,
    /// each file and folder rounded up to whole blocks, and an inode for each (and for the
    /// staging folder).
    pub fn check_room(&self, room: &Room, dir: &Path) -> Result<(), FolderError> {
        let entries = self.files + self.folders + 1;
        let need = self
            .bytes
            .saturating_add(entries.saturating_mul(room.block));
        let shown = dir.display().to_string();
        if need > room.bytes {
            return Err(FolderError::NoRoom {
                path: shown,
                need: human_bytes(need),
                free: human_bytes(room.bytes),
            });
        }
        if let Some(free) = room.inodes.filter(|&free| entries > free) {
            return Err(FolderError::NoRoom {
                path: shown,
                need: count(entries, "inode"),
                free: count(free, "inode"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive's names in order, each a PBM unless it looks like a TIFF page.
    fn layout_of(names: &[&str]) -> Result<(), FolderError> {
        check_archive_layout(names.iter().map(|name| Entry {
            name: name.to_string(),
            format: if image_io::tiff_page_of(name).is_some() {
                ImageFormat::TiffPage
            } else {
                ImageFormat::Pbm
            },
            width: 1,
            height: 1,
        }))
    }

    /// A file that is also a folder is found across the names that sort between them, and
    /// a TIFF's pages must have their file's folder to themselves; names that only share a
    /// beginning are fine.
    #[test]
    fn archive_layouts_that_cannot_be_written_are_found() {
        let clash = |names: &[&str], folder: &str| {
            let err = layout_of(names).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{folder}: would be both a file")),
                "{names:?}: {err}"
            );
        };
        assert!(layout_of(&["a", "a-b/c", "a.pbm", "a0/x", "b/a.pbm", "b/c/d"]).is_ok());
        assert!(layout_of(&["a.tif/0001", "a.tif/0002", "a.tif0/x", "b.tif/0001"]).is_ok());
        clash(&["a.pbm", "a.pbm-2", "a.pbm.x", "a.pbm/x.pbm"], "a.pbm");
        clash(&["d", "d!", "d/e/f"], "d");
        clash(&["a.tif", "a.tif/0001"], "a.tif");
        clash(&["a.tif/!x.pbm", "a.tif/0001"], "a.tif");
        clash(&["a.tif/0001", "a.tif/0001x"], "a.tif");
        clash(&["a.tif/0001", "a.tif/0002", "a.tif/x.pbm"], "a.tif");
        clash(&["a.tif/0001", "a.tif/0001/x.pbm"], "a.tif/0001");
    }

    fn entry(name: &str, format: ImageFormat, width: u32, height: u32) -> Entry {
        Entry {
            name: name.into(),
            format,
            width,
            height,
        }
    }

    #[test]
    fn counts_are_in_words_with_plurals() {
        assert_eq!(count(1, "image"), "1 image");
        assert_eq!(count(0, "image"), "0 images");
        assert_eq!(count(100_000, "file"), "100,000 files");
        assert_eq!(human_bytes(1), "1 byte");
        assert_eq!(human_bytes(9_999), "9,999 bytes");
        assert_eq!(human_bytes(8_000_000_000), "8.0 GB");
    }

    #[test]
    fn staging_names_are_recognised_with_their_owner() {
        let name = |s: &str| staging_owner(OsStr::new(s));
        assert_eq!(name(".out.vlae-zip-partial-123-aZ09bcde"), Some(123));
        assert_eq!(name(".vlae-zip-partial-77-x1"), Some(77));
        assert_eq!(name(".out.vlae-zip-partial-123"), Some(123));
        assert_eq!(name("out.vlae-zip-partial-123"), None);
        assert_eq!(name(".out.vlae-zip-partial-12a"), None);
        assert_eq!(name(".out.vlae-zip-partial--x"), None);
        assert_eq!(name(".out.vlae-zip-partial-1-a.b"), None);
        let prefix = staging_prefix(Some(OsStr::new(&"é".repeat(100))));
        assert!(prefix.len() < 100 && staging_owner(OsStr::new(&(prefix + "abc"))).is_some());
    }

    /// Sorted names: each folder is counted once, where its first entry is met.
    #[test]
    fn an_expansion_counts_files_folders_and_bytes() {
        let mut c = ExpansionCounter::default();
        for name in [
            "a.pbm",
            "x/b.pbm",
            "x/y/c.pbm",
            "x/y/d.pbm",
            "x/z/e.pbm",
            "z.pbm",
        ] {
            c.add(&entry(name, ImageFormat::Pbm, 28, 28)).unwrap();
        }
        let e = c.total();
        assert_eq!((e.files, e.folders), (6, 3));
        assert_eq!(e.bytes, 6 * (9 + 4 * 28));
        let png = file_bytes(&entry(
            "p.png",
            ImageFormat::PngGray { bit_depth: 8 },
            10,
            10,
        ));
        assert!(png >= 110, "{png}");
    }

    /// The default limits let the 60,000 MNIST training digits and 100 letter-size pages
    /// at 600 dpi through, the pages even as 16-bit PNGs; one more file than the limit is
    /// refused.
    #[test]
    fn the_default_limits_let_digits_and_pages_through() {
        let limits = Limits::default();
        let mut digits = ExpansionCounter::default();
        for i in 0..60_000 {
            digits
                .add(&entry(&format!("{i:05}.pbm"), ImageFormat::Pbm, 28, 28))
                .unwrap();
        }
        assert!(digits.total().check_limits(&limits).is_ok());
        let mut pages = ExpansionCounter::default();
        for i in 0..100 {
            let png = ImageFormat::PngGray { bit_depth: 16 };
            pages
                .add(&entry(&format!("{i:03}.png"), png, 5100, 6600))
                .unwrap();
        }
        assert!(pages.total().check_limits(&limits).is_ok());
        let many = Expansion {
            files: DEFAULT_MAX_FILES + 1,
            ..Expansion::default()
        };
        assert!(many.check_limits(&limits).is_err());
    }

    #[test]
    fn limits_and_room_refuse_what_does_not_fit() {
        let e = Expansion {
            files: 10,
            folders: 1,
            bytes: 1000,
        };
        assert!(e.check_limits(&Limits::default()).is_ok());
        let tight = Limits {
            max_files: Some(9),
            ..Limits::default()
        };
        assert!(e
            .check_limits(&tight)
            .unwrap_err()
            .to_string()
            .contains("--max-files"));
        let bytes = Limits {
            max_bytes: Some(999),
            ..Limits::default()
        };
        assert!(e
            .check_limits(&bytes)
            .unwrap_err()
            .to_string()
            .contains("--max-bytes"));
        let dir = Path::new("d");
        let room = |bytes, inodes| Room {
            bytes,
            inodes,
            block: 100,
        };
        assert!(e.check_room(&room(2200, Some(12)), dir).is_ok());
        assert!(e.check_room(&room(2199, None), dir).is_err());
        let err = e.check_room(&room(1 << 40, Some(11)), dir).unwrap_err();
        assert!(err.to_string().contains("12 inodes"), "{err}");
    }

    #[test]
    fn names_too_long_to_create_are_refused() {
        assert!(check_name_fits(&"a".repeat(255)).is_ok());
        let err = check_name_fits(&format!("x/{}", "a".repeat(256))).unwrap_err();
        assert!(err.to_string().contains("longer than 255 bytes"), "{err}");
        let deep = vec!["a".repeat(200); 20].join("/");
        assert!(check_name_fits(&deep).is_err());
    }
}
