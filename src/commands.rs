//! What each subcommand does: arguments in, library calls, lines out.

use crate::{CodingArgs, Command, LaneCoderArg, ModelArgs};
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use vlae_zip::archive::{CompressOptions, LaneCoders};
use vlae_zip::config::VlaeConfig;
use vlae_zip::container::{self, Entry, ImageFormat, LaneCoder};
use vlae_zip::folder::{self, FolderImage};
use vlae_zip::idx::PIXELS;
use vlae_zip::infer::network::Network;
use vlae_zip::job;
use vlae_zip::models;
use vlae_zip::nn::data::{Image, TileSet};
use vlae_zip::nn::{eval, train, vlae as eval_model};

const LN2: f64 = std::f64::consts::LN_2;

/// Learning rate when fine-tuning with `--init`: a quarter of a fresh run's, so that the
/// start is not forgotten in the first steps.
const FINE_TUNING_RATE: f64 = 5e-4;

pub fn run(command: Command, quiet: bool) -> Result<()> {
    match command {
        Command::Compress {
            inputs,
            output,
            force,
            model,
            coding,
        } => compress(&inputs, &output, force, &model, &coding, quiet),
        Command::Decompress {
            archive,
            output,
            model,
        } => decompress(&archive, &output, &model, quiet),
        Command::Info { archive } => info(&archive),
        Command::Models => list_models(),
        Command::Bench {
            path,
            iwae,
            json,
            model,
            coding,
        } => bench(
            &path,
            iwae.map(|k| k as usize)
                .or((coding.iw > 1).then_some(usize::from(coding.iw))),
            json,
            &model,
            &coding,
            quiet,
        ),
        Command::Show {
            data,
            output,
            model,
            scale,
            seed,
        } => {
            let args = ModelArgs {
                model,
                config: None,
            };
            let net = network(&model_sources(&args)[0])?;
            let images = load_any(&data, quiet)?;
            if images.is_empty() {
                anyhow::bail!("{}: no images", data.display());
            }
            let views: Vec<(usize, usize, &[u8])> = images
                .iter()
                .map(|i| {
                    (
                        i.entry.width as usize,
                        i.entry.height as usize,
                        i.pixels.as_slice(),
                    )
                })
                .collect();
            let panel = vlae_zip::figure::originals(&views, net.tile());
            let scale = scale.map_or(if panel.width < 600 { 4 } else { 1 }, |s| s as usize);
            let (w, h, grey) = vlae_zip::figure::figure(&net, &panel, seed, scale);
            std::fs::write(&output, vlae_zip::figure::png(w, h, &grey))
                .with_context(|| format!("cannot write {}", output.display()))?;
            println!("figure: {} ({w}×{h})", output.display());
            Ok(())
        }
        Command::Extract { idx, output, limit } => {
            let mut images = idx_images(&idx)?;
            images.truncate(limit.map_or(usize::MAX, |n| n as usize));
            let pb = bar(images.len(), "writing", quiet);
            let staged = folder::StagedFolder::create(&output)?;
            for img in images {
                staged.write(&img.entry, img.pixels)?;
                pb.inc(1);
            }
            staged.commit()?;
            pb.finish_and_clear();
            Ok(())
        }
        Command::Train {
            data_path,
            data,
            config,
            init,
            run,
            output,
            resume,
            minutes,
            epochs,
            batch_size,
            learning_rate,
            limit,
            validation_images,
            shift,
            mirror,
        } => {
            let data = data_path
                .or(data)
                .unwrap_or_else(|| "corpus/binarized-mnist/train-images.idx3-ubyte.gz".into());
            let (init, cfg) = match &init {
                Some(name) => {
                    let (tensors, cfg) = model_tensors(&ModelArgs {
                        model: name.clone(),
                        config: None,
                    })?;
                    if let Some(path) = &config {
                        if VlaeConfig::load(path)? != cfg {
                            anyhow::bail!(
                                "--config {} differs from the config of the --init model {name}",
                                path.display()
                            );
                        }
                    }
                    (Some(tensors), cfg)
                }
                None => (
                    None,
                    VlaeConfig::load(&config.unwrap_or_else(|| "models/vlae-mnist.json".into()))?,
                ),
            };
            let mut images = load_any(&data, quiet)?;
            images.truncate(limit.map_or(usize::MAX, |n| n as usize));
            let held_out = match validation_images {
                Some(v) => v as usize,
                None if data.is_dir() => images.len().div_ceil(10),
                None => 10_000,
            };
            if held_out >= images.len() {
                anyhow::bail!(
                    "{}: {} images, and {held_out} are held out for validation: none left to train on",
                    data.display(),
                    images.len()
                );
            }
            let valid = images.split_off(images.len() - held_out);
            let mut opts = train::TrainOptions::default();
            opts.epochs = epochs.map_or(opts.epochs, |v| v as usize);
            opts.batch_size = batch_size.map_or(opts.batch_size, |v| v as usize);
            opts.learning_rate = learning_rate.unwrap_or(if init.is_some() {
                FINE_TUNING_RATE
            } else {
                opts.learning_rate
            });
            opts.validation_images = held_out;
            opts.augment = vlae_zip::nn::data::Augment {
                shift: shift as usize,
                mirror,
            };
            let how = train::Invocation {
                resume,
                quiet,
                init,
                minutes,
            };
            let best = train::train(
                &tile_set(images, &cfg),
                &tile_set(valid, &cfg),
                &cfg,
                &opts,
                &run,
                how,
            )
            .context("training failed")?;
            let output = output.unwrap_or_else(|| {
                let name = run.file_name().map_or("model".into(), |n| n.to_os_string());
                run.join(name).with_extension("safetensors")
            });
            std::fs::copy(&best, &output)
                .with_context(|| format!("cannot write {}", output.display()))?;
            let json = output.with_extension("json");
            std::fs::write(&json, cfg.to_json())
                .with_context(|| format!("cannot write {}", json.display()))?;
            println!(
                "model: {} (config {}); use it with --model {0}",
                output.display(),
                json.display()
            );
            Ok(())
        }
        Command::Eval {
            path,
            model,
            iwae,
            limit,
            json,
        } => {
            let mut images = load_any(&path, quiet)?;
            images.truncate(limit.map_or(usize::MAX, |n| n as usize));
            // `auto` means the first built-in model.
            let (m, cfg) = candle_model(&model_sources(&model)[0])?;
            let (stats, iw) = model_figures(&m, &cfg, &images, iwae.map(|k| k as usize))?;
            let iw = iw.map(|r| (iwae.unwrap_or(1) as usize, r));
            print_eval(&stats, iw, json);
            Ok(())
        }
    }
}

/// Where a model named by `--model` comes from.
enum ModelSource {
    BuiltIn(&'static models::BuiltIn),
    File { weights: PathBuf, config: PathBuf },
}

impl ModelSource {
    /// What `--model` calls it.
    fn name(&self) -> String {
        match self {
            ModelSource::BuiltIn(m) => m.name.to_string(),
            ModelSource::File { weights, .. } => weights.display().to_string(),
        }
    }
}

/// The models `--model` names: every built-in one for `auto`, one built-in model by name,
/// or a weights file (with `--config`, or the JSON beside it).
fn model_sources(args: &ModelArgs) -> Vec<ModelSource> {
    if args.model == "auto" {
        return models::BUILT_IN
            .iter()
            .filter(|m| m.auto)
            .map(ModelSource::BuiltIn)
            .collect();
    }
    if let Some(m) = models::built_in(&args.model) {
        return vec![ModelSource::BuiltIn(m)];
    }
    let weights = PathBuf::from(&args.model);
    let config = args
        .config
        .clone()
        .unwrap_or_else(|| weights.with_extension("json"));
    vec![ModelSource::File { weights, config }]
}

fn network(source: &ModelSource) -> Result<Network> {
    Ok(match source {
        ModelSource::BuiltIn(m) => m.network()?,
        ModelSource::File { weights, config } => Network::load(weights, config)?,
    })
}

/// The networks to compress with.
fn coding_networks(args: &ModelArgs) -> Result<Vec<Network>> {
    model_sources(args).iter().map(network).collect()
}

/// The networks to decompress with: those `--model` names, then every other built-in
/// one (each built once).
fn decoding_networks(args: &ModelArgs) -> Result<Vec<Network>> {
    let mut sources = model_sources(args);
    for m in models::BUILT_IN {
        let named = |s: &ModelSource| matches!(s, ModelSource::BuiltIn(b) if b.name == m.name);
        if !sources.iter().any(named) {
            sources.push(ModelSource::BuiltIn(m));
        }
    }
    sources.iter().map(network).collect()
}

/// The weights of the model `args` names, as candle tensors, with its config: `auto`
/// means the first built-in model.
fn model_tensors(args: &ModelArgs) -> Result<(HashMap<String, Tensor>, VlaeConfig)> {
    source_tensors(&model_sources(args)[0])
}

fn source_tensors(source: &ModelSource) -> Result<(HashMap<String, Tensor>, VlaeConfig)> {
    Ok(match source {
        ModelSource::BuiltIn(m) => (
            candle_core::safetensors::load_buffer(m.weights, &Device::Cpu)?,
            m.vlae_config()?,
        ),
        ModelSource::File { weights, config } => (
            candle_core::safetensors::load(weights, &Device::Cpu)
                .with_context(|| format!("cannot load model {}", weights.display()))?,
            VlaeConfig::load(config)?,
        ),
    })
}

/// The candle model of `source`, for −ELBO and IWAE figures.
fn candle_model(source: &ModelSource) -> Result<(eval_model::Vlae, VlaeConfig)> {
    let (tensors, cfg) = source_tensors(source)?;
    let m = eval_model::Vlae::new(
        VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
        &cfg,
    )
    .with_context(|| format!("cannot build model {}", source.name()))?;
    Ok((m, cfg))
}

/// `vlae-zip models`.
fn list_models() -> Result<()> {
    for m in models::BUILT_IN {
        let net = m.network()?;
        let cfg = net.config();
        println!("{}", m.name);
        println!("  tile         {0}×{0}", cfg.tile);
        let margin = cfg.canvas().margin;
        if margin > 0 {
            println!("  context      {margin} rows above the tile, {margin} columns either side");
        } else {
            println!("  context      none (white beyond the tile)");
        }
        println!(
            "  fingerprint  {}",
            vlae_zip::infer::weights::hex(&net.fingerprint())
        );
        println!("  archive id   {}", net.id());
        println!("  parameters   {}", net.parameters());
        println!("  trained on   {}", m.trained_on);
        println!(
            "  auto         {}",
            if m.auto {
                "yes"
            } else {
                "no (decodes its old archives)"
            }
        );
    }
    Ok(())
}

fn bar(len: usize, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {per_sec}, eta {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// Reads the images of files and folders, reporting progress.
fn read_inputs(inputs: &[PathBuf], quiet: bool) -> Result<Vec<FolderImage>> {
    let files = folder::list_inputs(inputs)?;
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
            entry: Entry {
                name: format!("{i:0width$}.pbm"),
                format: ImageFormat::Pbm,
                width: 28,
                height: 28,
            },
            pixels: p.to_vec(),
        })
        .collect())
}

/// Images from a folder, an image file or an IDX file.
fn load_any(path: &Path, quiet: bool) -> Result<Vec<FolderImage>> {
    if path.is_dir() || vlae_zip::image_io::format_for_extension(path).is_some() {
        read_inputs(&[path.to_path_buf()], quiet)
    } else {
        idx_images(path)
    }
}

/// The images as the model's training samples: the canvases of their tiles with ink and
/// paper, each image one strip (as one lane codes it).
fn tile_set(images: impl IntoIterator<Item = FolderImage>, cfg: &VlaeConfig) -> TileSet {
    TileSet::new(
        images
            .into_iter()
            .map(|i| Image {
                width: i.entry.width as usize,
                height: i.entry.height as usize,
                pixels: i.pixels,
            })
            .collect(),
        cfg.canvas(),
    )
}

/// The model's −ELBO terms per image, and with `iwae` samples its IWAE NLL (mean, standard
/// error) per image, in nats: sums over each image's modelled tiles. Tiles without both
/// ink and paper cost the model nothing (the chain codes their class alone).
fn model_figures(
    m: &eval_model::Vlae,
    cfg: &VlaeConfig,
    images: &[FolderImage],
    iwae: Option<usize>,
) -> Result<(eval::ElboStats, Option<(f64, f64)>)> {
    let set = tile_set(images.iter().cloned(), cfg);
    if set.is_empty() {
        // Only blank tiles: the model codes nothing.
        let stats = eval::ElboStats {
            images: images.len(),
            ..Default::default()
        };
        return Ok((stats, iwae.map(|_| (0.0, 0.0))));
    }
    let canvases = set.grid_canvases();
    let per_image = set.len() as f64 / images.len().max(1) as f64;
    let mut stats = eval::evaluate_elbo(m, &canvases, cfg.latent_dim, 500)?;
    stats.images = images.len();
    stats.recon_nats *= per_image;
    stats.kl_nats *= per_image;
    let iw = iwae
        .map(|k| eval::evaluate_iwae(m, &canvases, cfg.latent_dim, k))
        .transpose()?
        .map(|(nll, se)| (nll * per_image, se * per_image));
    Ok((stats, iw))
}

fn coding_options(coding: &CodingArgs) -> CompressOptions {
    CompressOptions {
        latent_bits: coding
            .latent_bits
            .unwrap_or(vlae_zip::archive::DEFAULT_LATENT_BITS),
        adapt_latent_bits: coding.latent_bits.is_none(),
        lanes: coding.lanes.map(|l| l as usize),
        coders: match coding.lane_coder {
            LaneCoderArg::Smallest => LaneCoders::Smallest,
            LaneCoderArg::BitsBack => LaneCoders::BitsBack,
        },
        samples: coding.iw.into(),
    }
}

/// Archive bytes from a file or standard input.
///
/// Files are memory-mapped and parsed in place: the lanes' payloads are never copied.
/// Modifying or truncating an archive while vlae-zip reads it is not supported. A
/// modification is caught by the checksum, but a truncation under the mapping makes the
/// read fault (SIGBUS) and ends the process at once; the output folder is renamed into
/// place only after every image decoded and checked, so no partial output ever appears.
enum ArchiveBytes {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl std::ops::Deref for ArchiveBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ArchiveBytes::Mapped(m) => m,
            ArchiveBytes::Read(v) => v,
        }
    }
}

fn open_archive(path: &Path) -> Result<ArchiveBytes> {
    if path == Path::new("-") {
        let mut v = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut v)
            .context("cannot read the archive from standard input")?;
        return Ok(ArchiveBytes::Read(v));
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: a read-only mapping of a file this process does not write; see the stance
    // on concurrent modification above.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .with_context(|| format!("cannot map {}", path.display()))?;
    Ok(ArchiveBytes::Mapped(map))
}

fn compress(
    inputs: &[PathBuf],
    output: &Path,
    force: bool,
    model: &ModelArgs,
    coding: &CodingArgs,
    quiet: bool,
) -> Result<()> {
    let to_stdout = output == Path::new("-");
    if !to_stdout && output.exists() && !force {
        anyhow::bail!(
            "{}: output file exists (use --force to overwrite)",
            output.display()
        );
    }
    let nets = coding_networks(model)?;
    let start = Instant::now();
    let images = read_inputs(inputs, quiet)?;
    let rows: u64 = images.iter().map(|i| u64::from(i.entry.height)).sum();
    let pb = bar(rows as usize, "compressing", quiet);
    let refs: Vec<&Network> = nets.iter().collect();
    let bytes = job::compress_images(&refs, &images, coding_options(coding), &|n| pb.inc(n))?;
    pb.finish_and_clear();
    if to_stdout {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)
            .and_then(|()| out.flush())
            .context("cannot write the archive to standard output")?;
    } else {
        folder::write_file_atomic(output, &bytes, force)?;
    }
    if !quiet && !to_stdout {
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
    let nets = decoding_networks(model)?;
    let refs: Vec<&Network> = nets.iter().collect();
    let start = Instant::now();
    let staged = folder::StagedFolder::create(output)?;
    let bytes = open_archive(archive_path)?;
    let context = || format!("cannot decompress {}", archive_path.display());
    let arch = container::parse(&bytes).with_context(context)?;
    let pb = bar(arch.total_rows() as usize, "decompressing", quiet);
    let images =
        job::decompress_into(&refs, &arch, staged, &|n| pb.inc(n)).with_context(context)?;
    pb.finish_and_clear();
    if !quiet {
        println!(
            "{images} images → {} in {:.2} s",
            output.display(),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn info(path: &Path) -> Result<()> {
    let bytes = open_archive(path)?;
    let arch = container::parse(&bytes)
        .with_context(|| format!("{} is not a valid archive", path.display()))?;
    let n = arch.image_count;
    let (smallest, largest) = arch.size_range;
    let count = |kind: LaneCoder| arch.lanes.iter().filter(|l| l.coder == kind).count();
    let context = arch
        .lanes
        .iter()
        .filter(|l| matches!(l.coder, LaneCoder::Context { .. } | LaneCoder::PageMixing))
        .count();
    let stored = count(LaneCoder::Stored);
    println!("archive        {}", path.display());
    println!("format         {}", container::VERSION);
    for m in &arch.models {
        println!("model          {m}");
    }
    if smallest == largest {
        println!("images         {n} of {}×{}", largest.0, largest.1);
    } else {
        println!(
            "images         {n} of mixed sizes ({}×{} to {}×{})",
            smallest.0, smallest.1, largest.0, largest.1
        );
    }
    let remembering = arch
        .lanes
        .iter()
        .filter(|l| matches!(l.coder, LaneCoder::BitsBack { memory: true, .. }))
        .count();
    let with_memory = if remembering > 0 {
        format!(", {remembering} of them with page memory")
    } else {
        String::new()
    };
    println!(
        "lanes          {} ({} bits-back{with_memory}, {context} context model, {stored} stored)",
        arch.lanes.len(),
        arch.lanes.len() - context - stored
    );
    // Importance samples per bits-back lane, when any lane has more than one: a lane may
    // record fewer than `--iw` asked for (format-spec.md §3.4).
    let samples: Vec<String> = arch
        .lanes
        .iter()
        .filter_map(|l| match l.coder {
            LaneCoder::BitsBack { samples, .. } => Some(samples.to_string()),
            _ => None,
        })
        .collect();
    if samples.iter().any(|s| s != "1") {
        println!(
            "samples        {} (importance samples per bits-back lane)",
            samples.join(", ")
        );
    }
    println!(
        "latent buckets 2^{}, probabilities {} bits",
        arch.latent_bits, arch.precision
    );
    println!(
        "size           {} bytes = {:.2} bits/image ({:.2} in lane payloads)",
        bytes.len(),
        bytes.len() as f64 * 8.0 / n.max(1) as f64,
        arch.payload_bytes() as f64 * 8.0 / n.max(1) as f64
    );
    for e in arch.entries().take(3) {
        println!("  {} ({}, {}×{})", e.name, e.format, e.width, e.height);
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
    let nets = coding_networks(model)?;
    let refs: Vec<&Network> = nets.iter().collect();
    let images = load_any(path, quiet)?;
    let work = tempfile::tempdir().context("cannot create a temporary folder")?;
    let rt = job::round_trip(&refs, &images, coding_options(coding), work.path())?;

    // Under `auto`, the rate is compared with the model that coded most of the rows.
    let main = rt
        .main_model
        .and_then(|id| nets.iter().position(|n| n.is(&id)))
        .unwrap_or(0);
    let source = &model_sources(model)[main];
    let model_name = source.name();
    let (m, cfg) = candle_model(source)?;
    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner().with_message("evaluating the model's -ELBO")
    };
    let (stats, iw) = model_figures(&m, &cfg, &images, iwae)?;
    pb.finish_and_clear();

    let n = rt.images as f64;
    // Pages are timed by their pixels (issue 8's bar is in megapixels a second).
    let megapixels = rt.pixels as f64 / 1e6;
    let achieved = rt.archive_bytes as f64 * 8.0 / n;
    let payload_bits = rt.payload_bytes as f64 * 8.0 / n;
    let elbo = stats.neg_elbo_nats() / LN2;
    if json {
        let mut obj = serde_json::json!({
            "images": rt.images,
            "lanes": rt.lanes,
            "stored_lanes": rt.stored_lanes,
            "latent_bits": rt.latent_bits,
            "archive_bytes": rt.archive_bytes,
            "achieved_bits_per_image": achieved,
            "payload_bits_per_image": payload_bits,
            "neg_elbo_bits_per_image": elbo,
            "model": model_name,
            "model_coded_any_lane": rt.main_model.is_some(),
            "kl_bits_per_image": stats.kl_nats / LN2,
            "gap_bits_per_image": achieved - elbo,
            "compress_images_per_sec": n / rt.compress_secs,
            "decompress_images_per_sec": n / rt.decompress_secs,
            "compress_megapixels_per_sec": megapixels / rt.compress_secs,
            "decompress_megapixels_per_sec": megapixels / rt.decompress_secs,
            "threads": rt.threads,
            "decode_tasks": rt.decode_tasks,
            "roundtrip_ok": rt.ok,
        });
        if let Some((nll, se)) = iw {
            obj["iwae_samples"] = iwae.into();
            obj["iwae_nll_bits_per_image"] = (nll / LN2).into();
            obj["iwae_nll_stderr_bits"] = (se / LN2).into();
        }
        println!("{obj}");
    } else {
        println!("images                 {}", rt.images);
        println!(
            "lanes                  {} ({} stored); {} decoding tasks on {} threads",
            rt.lanes, rt.stored_lanes, rt.decode_tasks, rt.threads
        );
        println!("achieved               {achieved:9.3} bits/image  ({} bytes; lane payloads {payload_bits:.3})", rt.archive_bytes);
        // Page mixing, the context templates and stored lanes use no model: the gap is then
        // no model's.
        let coder = if rt.main_model.is_some() {
            ""
        } else {
            "; it coded no lane"
        };
        println!(
            "model -ELBO            {elbo:9.3} bits/image  ({model_name}; KL {:.3}{coder})",
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
        for (way, secs) in [
            ("compress", rt.compress_secs),
            ("decompress", rt.decompress_secs),
        ] {
            println!(
                "{way:<23}{:9.1} images/s  ({:.2} Mpx/s)",
                n / secs,
                megapixels / secs
            );
        }
        println!(
            "round trip             {}",
            if rt.ok { "ok" } else { "FAILED" }
        );
    }
    if !rt.ok {
        anyhow::bail!("decompressed images differ from the originals");
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
