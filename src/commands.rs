//! What each subcommand does: glue between files, the library and the terminal.

use crate::{CodingArgs, Command, ModelArgs};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;
use vlae_zip::archive;
use vlae_zip::config::VlaeConfig;
use vlae_zip::container::{self, Archive, Entry};
use vlae_zip::folder::{self, FolderImage};
use vlae_zip::geometry::PIXELS;
use vlae_zip::image_io::ImageFormat;
use vlae_zip::infer::network::Network;
use vlae_zip::nn::{eval, train};

const LN2: f64 = std::f64::consts::LN_2;

/// `mi_option_purge_delay` in mimalloc's `mimalloc.h` (v2 and v3 alike).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Training and evaluation allocate and free the same large activations every step. By
/// default mimalloc hands freed pages back to the OS and the kernel zeroes them again on
/// the next touch, which took a fifth of a training step; keeping them is 15% faster.
fn keep_freed_memory() {
    // SAFETY: sets a plain integer option; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

pub fn run(command: Command, quiet: bool) -> Result<()> {
    match command {
        Command::Compress {
            dir,
            output,
            force,
            model,
            coding,
        } => compress(&dir, &output, force, &model, &coding, quiet),
        Command::Decompress {
            archive,
            output,
            model,
        } => decompress(&archive, &output, &model, quiet),
        Command::Info { archive } => info(&archive),
        Command::Bench {
            path,
            iwae,
            json,
            model,
            coding,
        } => bench(&path, iwae, json, &model, &coding, quiet),
        Command::Extract { idx, output, limit } => {
            let mut images = idx_images(&idx)?;
            images.truncate(limit.unwrap_or(usize::MAX));
            let pb = bar(images.len(), "writing", quiet);
            folder::write_images(&output, &images, &|n| pb.inc(n))?;
            pb.finish_and_clear();
            Ok(())
        }
        Command::Train {
            data,
            config,
            run,
            resume,
            epochs,
            batch_size,
            learning_rate,
            limit,
            validation_images,
        } => {
            keep_freed_memory();
            let cfg = VlaeConfig::load(&config)?;
            let mut images = vlae_zip::idx::read_idx_images(&data)?;
            if let Some(n) = limit {
                images.truncate(n * PIXELS);
            }
            let mut opts = train::TrainOptions::default();
            opts.epochs = epochs.unwrap_or(opts.epochs);
            opts.batch_size = batch_size.unwrap_or(opts.batch_size);
            opts.learning_rate = learning_rate.unwrap_or(opts.learning_rate);
            opts.validation_images = validation_images.unwrap_or(opts.validation_images);
            let best = train::train(&images, &cfg, &opts, &run, resume, quiet)
                .context("training failed")?;
            println!("best weights: {}", best.display());
            Ok(())
        }
        Command::Eval {
            path,
            model,
            iwae,
            limit,
            json,
        } => {
            keep_freed_memory();
            let mut images = load_any(&path, quiet)?;
            images.truncate(limit.unwrap_or(usize::MAX));
            let images: Vec<u8> = images.into_iter().flat_map(|i| i.pixels).collect();
            let (weights, cfg) = model_paths(&model);
            let cfg = VlaeConfig::load(&cfg)?;
            let m = eval::load_model(&weights, &cfg)
                .with_context(|| format!("cannot load model {}", weights.display()))?;
            let stats = eval::evaluate_elbo(&m, &images, cfg.latent_dim, 500)?;
            let iw = iwae
                .map(|k| eval::evaluate_iwae(&m, &images, cfg.latent_dim, k).map(|r| (k, r)))
                .transpose()?;
            print_eval(&stats, iw, json);
            Ok(())
        }
    }
}

/// The weights and config paths. Defaults are relative to the working directory, falling
/// back to the source checkout the binary was built from.
fn model_paths(args: &ModelArgs) -> (PathBuf, PathBuf) {
    let mut weights = args.model.clone();
    if !weights.exists() && weights.is_relative() {
        let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(&weights);
        if built.exists() {
            weights = built;
        }
    }
    let config = args
        .config
        .clone()
        .unwrap_or_else(|| weights.with_extension("json"));
    (weights, config)
}

fn load_network(args: &ModelArgs) -> Result<Network> {
    let (weights, config) = model_paths(args);
    Ok(Network::load(&weights, &config)?)
}

fn bar(len: usize, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {pos}/{len} images, {per_sec}, eta {eta}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// Reads a folder's images, reporting progress.
fn read_folder(dir: &Path, quiet: bool) -> Result<Vec<FolderImage>> {
    let files = folder::list_images(dir)?;
    let pb = bar(files.len(), "reading", quiet);
    let images = folder::read_images(&files, &|n| pb.inc(n))?;
    pb.finish_and_clear();
    Ok(images)
}

/// The images of an IDX file, named `00000.pbm`, `00001.pbm`, …
fn idx_images(path: &Path) -> Result<Vec<FolderImage>> {
    let flat = vlae_zip::idx::read_idx_images(path)?;
    let width = (flat.len() / PIXELS)
        .saturating_sub(1)
        .to_string()
        .len()
        .max(5);
    Ok(flat
        .chunks(PIXELS)
        .enumerate()
        .map(|(i, p)| FolderImage {
            name: format!("{i:0width$}.pbm"),
            format: ImageFormat::Pbm,
            pixels: p.to_vec(),
        })
        .collect())
}

/// Images from a folder or an IDX file.
fn load_any(path: &Path, quiet: bool) -> Result<Vec<FolderImage>> {
    if path.is_dir() {
        read_folder(path, quiet)
    } else {
        idx_images(path)
    }
}

/// Compresses images into archive bytes.
fn compress_images(
    net: &Network,
    images: &[FolderImage],
    coding: &CodingArgs,
    quiet: bool,
) -> Result<Vec<u8>> {
    let entries = images
        .iter()
        .map(|i| Entry {
            name: i.name.clone(),
            format: i.format,
        })
        .collect();
    let pixels: Vec<Vec<u8>> = images.iter().map(|i| i.pixels.clone()).collect();
    let lanes = coding
        .lanes
        .unwrap_or_else(|| archive::default_lanes(images.len()));
    let pb = bar(images.len(), "compressing", quiet);
    let arch = archive::compress(net, entries, &pixels, coding.latent_bits, lanes, &|n| {
        pb.inc(n)
    })?;
    pb.finish_and_clear();
    Ok(container::write(&arch))
}

/// Decodes every image of a parsed archive. Nothing is written until every lane decoded
/// and the pixel checksum matched.
fn decode_archive(net: &Network, arch: Archive, quiet: bool) -> Result<Vec<FolderImage>> {
    let pb = bar(arch.entries.len(), "decompressing", quiet);
    let pixels = archive::decompress(net, &arch, &|n| pb.inc(n))?;
    pb.finish_and_clear();
    Ok(arch
        .entries
        .into_iter()
        .zip(pixels)
        .map(|(e, pixels)| FolderImage {
            name: e.name,
            format: e.format,
            pixels,
        })
        .collect())
}

fn map_file(path: &Path) -> Result<memmap2::Mmap> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: read-only mapping; the archive is parsed and checksummed before use, and the
    // map is dropped before this command ends.
    unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))
}

fn compress(
    dir: &Path,
    output: &Path,
    force: bool,
    model: &ModelArgs,
    coding: &CodingArgs,
    quiet: bool,
) -> Result<()> {
    if output.exists() && !force {
        bail!(
            "{}: output file exists (use --force to overwrite)",
            output.display()
        );
    }
    let net = load_network(model)?;
    let start = Instant::now();
    let images = read_folder(dir, quiet)?;
    let bytes = compress_images(&net, &images, coding, quiet)?;
    folder::write_file_atomic(output, &bytes)?;
    if !quiet {
        let n = images.len();
        println!(
            "{n} images → {} bytes ({:.2} bits/image) in {:.2} s ({:.0} images/s)",
            bytes.len(),
            bytes.len() as f64 * 8.0 / n as f64,
            start.elapsed().as_secs_f64(),
            n as f64 / start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn decompress(archive_path: &Path, output: &Path, model: &ModelArgs, quiet: bool) -> Result<()> {
    let net = load_network(model)?;
    let start = Instant::now();
    let map = map_file(archive_path)?;
    let images = container::parse(&map)
        .map_err(anyhow::Error::from)
        .and_then(|arch| decode_archive(&net, arch, quiet))
        .with_context(|| format!("cannot decompress {}", archive_path.display()))?;
    let pb = bar(images.len(), "writing", quiet);
    folder::write_images(output, &images, &|n| pb.inc(n))?;
    pb.finish_and_clear();
    if !quiet {
        println!(
            "{} images → {} in {:.2} s",
            images.len(),
            output.display(),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn info(path: &Path) -> Result<()> {
    let map = map_file(path)?;
    let arch = container::parse(&map)
        .with_context(|| format!("{} is not a valid archive", path.display()))?;
    let h = &arch.header;
    let n = h.image_count as usize;
    let payload = arch.payload_bytes();
    println!("archive        {}", path.display());
    println!("format         version {}", container::VERSION);
    println!(
        "model          {}",
        vlae_zip::infer::weights::fingerprint_hex(&h.fingerprint)
    );
    println!("images         {n} of {}×{}", h.width, h.height);
    println!("lanes          {}", arch.lanes.len());
    println!(
        "latent buckets 2^{}, probabilities {} bits",
        h.latent_bits, h.precision
    );
    println!(
        "size           {} bytes = {:.2} bits/image ({:.2} in lane payloads)",
        map.len(),
        map.len() as f64 * 8.0 / n.max(1) as f64,
        payload as f64 * 8.0 / n.max(1) as f64
    );
    for e in arch.entries.iter().take(3) {
        println!("  {} ({:?})", e.name, e.format);
    }
    if n > 3 {
        println!("  … {} more", n - 3);
    }
    Ok(())
}

fn bench(
    path: &Path,
    iwae: Option<usize>,
    json: bool,
    model: &ModelArgs,
    coding: &CodingArgs,
    quiet: bool,
) -> Result<()> {
    let net = load_network(model)?;
    let tmp = tempfile::tempdir().context("cannot create a temporary folder")?;
    let (archive_path, out_dir) = (tmp.path().join("bench.vlz"), tmp.path().join("out"));

    let t = Instant::now();
    let images = load_any(path, quiet)?;
    let bytes = compress_images(&net, &images, coding, quiet)?;
    folder::write_file_atomic(&archive_path, &bytes)?;
    let compress_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let map = map_file(&archive_path)?;
    let arch = container::parse(&map)?;
    let (lanes, latent_bits, payload_bytes) = (
        arch.lanes.len(),
        arch.header.latent_bits,
        arch.payload_bytes(),
    );
    let decoded = decode_archive(&net, arch, quiet)?;
    folder::write_images(&out_dir, &decoded, &|_| {})?;
    let decompress_secs = t.elapsed().as_secs_f64();

    let reread = read_folder(&out_dir, true)?;
    let roundtrip_ok = reread.len() == images.len()
        && reread
            .iter()
            .zip(&images)
            .all(|(a, b)| a.name == b.name && a.format == b.format && a.pixels == b.pixels);

    keep_freed_memory();
    let (weights, config) = model_paths(model);
    let cfg = VlaeConfig::load(&config)?;
    let m = eval::load_model(&weights, &cfg)?;
    let flat: Vec<u8> = images
        .iter()
        .flat_map(|i| i.pixels.iter().copied())
        .collect();
    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner().with_message("evaluating the model's -ELBO")
    };
    let stats = eval::evaluate_elbo(&m, &flat, cfg.latent_dim, 500)?;
    let iw = iwae
        .map(|k| eval::evaluate_iwae(&m, &flat, cfg.latent_dim, k))
        .transpose()?;
    pb.finish_and_clear();

    let n = images.len() as f64;
    let achieved = bytes.len() as f64 * 8.0 / n;
    let payload_bits = payload_bytes as f64 * 8.0 / n;
    let elbo = stats.neg_elbo_nats() / LN2;
    if json {
        let mut obj = serde_json::json!({
            "images": images.len(),
            "lanes": lanes,
            "latent_bits": latent_bits,
            "archive_bytes": bytes.len(),
            "achieved_bits_per_image": achieved,
            "payload_bits_per_image": payload_bits,
            "neg_elbo_bits_per_image": elbo,
            "kl_bits_per_image": stats.kl_nats / LN2,
            "gap_bits_per_image": achieved - elbo,
            "compress_images_per_sec": n / compress_secs,
            "decompress_images_per_sec": n / decompress_secs,
            "roundtrip_ok": roundtrip_ok,
        });
        if let Some((nll, se)) = iw {
            obj["iwae_samples"] = iwae.into();
            obj["iwae_nll_bits_per_image"] = (nll / LN2).into();
            obj["iwae_nll_stderr_bits"] = (se / LN2).into();
        }
        println!("{obj}");
    } else {
        println!("images                 {}", images.len());
        println!("lanes                  {lanes}");
        println!("achieved               {achieved:9.3} bits/image  ({} bytes; lane payloads {payload_bits:.3})", bytes.len());
        println!(
            "model -ELBO            {elbo:9.3} bits/image  (KL {:.3})",
            stats.kl_nats / LN2
        );
        if let Some((nll, se)) = iw {
            println!(
                "model IWAE NLL (K={})  {:9.3} ± {:.3} bits/image",
                iwae.unwrap_or(0),
                nll / LN2,
                se / LN2
            );
        }
        println!(
            "gap                    {:+9.3} bits/image  ({:+.3}%)",
            achieved - elbo,
            100.0 * (achieved / elbo - 1.0)
        );
        println!("compress               {:9.1} images/s", n / compress_secs);
        println!(
            "decompress             {:9.1} images/s",
            n / decompress_secs
        );
        println!(
            "round trip             {}",
            if roundtrip_ok { "ok" } else { "FAILED" }
        );
    }
    if !roundtrip_ok {
        bail!("decompressed images differ from the originals");
    }
    Ok(())
}

fn print_eval(stats: &eval::ElboStats, iwae: Option<(usize, (f64, f64))>, json: bool) {
    if json {
        let mut obj = serde_json::json!({
            "images": stats.images,
            "neg_elbo_bits_per_image": stats.neg_elbo_nats() / LN2,
            "kl_bits_per_image": stats.kl_nats / LN2,
            "recon_bits_per_image": stats.recon_nats / LN2,
            "neg_elbo_nats_per_image": stats.neg_elbo_nats(),
        });
        if let Some((k, (nll, se))) = iwae {
            obj["iwae_samples"] = k.into();
            obj["iwae_nll_bits_per_image"] = (nll / LN2).into();
            obj["iwae_nll_stderr_bits"] = (se / LN2).into();
        }
        println!("{obj}");
    } else {
        println!("images            {}", stats.images);
        println!(
            "-ELBO             {:9.3} bits/image  ({:.3} nats)",
            stats.neg_elbo_nats() / LN2,
            stats.neg_elbo_nats()
        );
        println!(
            "  reconstruction  {:9.3} bits/image  ({:.3} nats)",
            stats.recon_nats / LN2,
            stats.recon_nats
        );
        println!(
            "  KL (bits in z)  {:9.3} bits/image  ({:.3} nats)",
            stats.kl_nats / LN2,
            stats.kl_nats
        );
        if let Some((k, (nll, se))) = iwae {
            println!(
                "IWAE NLL (K={k:<4}) {:9.3} ± {:.3} bits/image  ({:.3} nats)",
                nll / LN2,
                se / LN2,
                nll
            );
        }
    }
}
