//! Whole jobs over files: images on disk → archive bytes, archive → an output folder,
//! and the round trip `vlae-zip bench` reports. The CLI only parses arguments and prints.
#![forbid(unsafe_code)]

use crate::archive::{self, lanes_per_task, ArchiveError, CompressOptions};
use crate::container::{self, ContainerError, Entry, LaneCoder, ModelId};
use crate::folder::{self, FolderError, FolderImage, StagedFolder};
use crate::infer::network::Network;
use std::path::Path;
use std::time::Instant;

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Container(#[from] ContainerError),
}

/// Compresses images read from disk into archive bytes, each lane with whichever of
/// `models` (or the fallback coders) codes it smallest, within `memory_limit`
/// ([`archive::compress_within`]).
pub fn compress_images(
    models: &[&Network],
    images: &[FolderImage],
    opts: CompressOptions,
    progress: &(dyn Fn(u64) + Sync),
    memory_limit: Option<u64>,
) -> Result<Vec<u8>, JobError> {
    let entries: Vec<_> = images.iter().map(|i| i.entry.clone()).collect();
    let pixels: Vec<&[u8]> = images.iter().map(|i| i.pixels.as_slice()).collect();
    Ok(archive::compress_within(
        models,
        &entries,
        &pixels,
        opts,
        progress,
        memory_limit,
    )?)
}

/// Decodes an archive into a staged output folder (made, and so checked, before anything
/// was decoded), which appears only once every image decoded (and, for a whole archive,
/// the pixel checksum matched). With `wanted`, only the images it accepts are decoded
/// and written, from the lanes that hold them ([`archive::decompress_some`]). Returns the
/// number of images written.
pub fn decompress_into(
    models: &[&Network],
    arch: &container::Archive,
    staged: StagedFolder,
    wanted: Option<&dyn Fn(&Entry) -> bool>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, JobError> {
    folder::check_archive_layout(arch.entries().filter(|e| wanted.is_none_or(|w| w(e))))?;
    let mut images = 0u64;
    let mut sink = |entry: Entry, pixels: Vec<u8>| -> Result<(), JobError> {
        staged.write(&entry, pixels)?;
        images += 1;
        Ok(())
    };
    match wanted {
        None => archive::decompress(models, arch, &mut sink, progress)?,
        Some(wanted) => archive::decompress_some(models, arch, wanted, &mut sink, progress)?,
    }
    staged.commit()?;
    Ok(images)
}

/// Decodes every image of an archive and checks the pixel checksum, writing nothing:
/// `vlae-zip test`. Returns the number of images. An archive whose images decompress could
/// not all write out fails too.
pub fn verify(
    models: &[&Network],
    arch: &container::Archive,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, JobError> {
    folder::check_archive_layout(arch.entries())?;
    let mut images = 0u64;
    archive::decompress(
        models,
        arch,
        // Each image reaches the sink whole (`archive::decompress` hands on an image once
        // its entry's pixels are decoded) and the checksum is checked there: counting is
        // all that is left.
        &mut |_, _| -> Result<(), JobError> {
            images += 1;
            Ok(())
        },
        progress,
    )?;
    Ok(images)
}

/// What a compress–decompress round trip measured.
#[derive(Clone, Debug)]
pub struct RoundTrip {
    pub images: usize,
    pub pixels: u64,
    pub archive_bytes: usize,
    pub payload_bytes: usize,
    pub lanes: usize,
    pub stored_lanes: usize,
    pub latent_bits: u8,
    /// Independent decoding tasks a machine with `threads` threads would run.
    pub decode_tasks: usize,
    pub threads: usize,
    pub compress_secs: f64,
    pub decompress_secs: f64,
    pub ok: bool,
    /// The model whose bits-back lanes hold the most rows, if any lane is one: the model
    /// to compare the rate with under `auto`.
    pub main_model: Option<ModelId>,
}

/// Compresses `images` into `work/bench.vlz`, decompresses that into `work/out`, reads the
/// output back and compares names, formats, sizes and pixels. Both timings include the
/// file writes.
pub fn round_trip(
    models: &[&Network],
    images: &[FolderImage],
    opts: CompressOptions,
    work: &Path,
) -> Result<RoundTrip, JobError> {
    let (archive_path, out_dir) = (work.join("bench.vlz"), work.join("out"));
    let t = Instant::now();
    let bytes = compress_images(models, images, opts, &|_| {}, None)?;
    folder::write_file_atomic(&archive_path, &bytes, false)?;
    let compress_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let read = std::fs::read(&archive_path).map_err(|reason| FolderError::Io {
        path: archive_path.display().to_string(),
        reason,
    })?;
    let arch = container::parse(&read)?;
    let staged = StagedFolder::create(&out_dir)?;
    decompress_into(models, &arch, staged, None, &|_| {})?;
    let decompress_secs = t.elapsed().as_secs_f64();

    let reread = folder::read_images(&folder::list_inputs(&[out_dir])?, &|_| {})?;
    let ok = reread.len() == images.len()
        && reread
            .iter()
            .zip(images)
            .all(|(a, b)| a.entry == b.entry && a.pixels == b.pixels);
    let threads = rayon::current_num_threads();
    let mut rows_by_model = vec![0u64; arch.models.len()];
    for lane in &arch.lanes {
        if let LaneCoder::BitsBack { model, .. } = lane.coder {
            rows_by_model[model as usize] += lane.rows;
        }
    }
    let main_model = (0..rows_by_model.len())
        .filter(|&m| rows_by_model[m] > 0)
        .max_by_key(|&m| rows_by_model[m])
        .map(|m| arch.models[m]);
    Ok(RoundTrip {
        images: images.len(),
        pixels: images.iter().map(|i| i.entry.pixels()).sum(),
        archive_bytes: bytes.len(),
        payload_bytes: arch.payload_bytes(),
        lanes: arch.lanes.len(),
        stored_lanes: arch
            .lanes
            .iter()
            .filter(|l| l.coder == LaneCoder::Stored)
            .count(),
        latent_bits: arch.latent_bits,
        decode_tasks: arch
            .lanes
            .len()
            .div_ceil(lanes_per_task(arch.lanes.len(), threads)),
        threads,
        compress_secs,
        decompress_secs,
        ok,
        main_model,
    })
}
