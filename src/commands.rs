//! What each subcommand does: arguments in, library calls, lines out. [`run`] hands each
//! command to one function of its own.

use crate::{
    BenchArgs, CodingArgs, Command, CompressArgs, DecompressArgs, EvalArgs, ExtractArgs, InfoArgs,
    LaneCoderArg, LimitArgs, ModelArgs, ShowArgs, TestArgs, TrainArgs,
};
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use vlae_zip::archive::{ArchiveError, CompressOptions, LaneCoders};
use vlae_zip::config::VlaeConfig;
use vlae_zip::container::{self, Archive, Entry, ImageFormat, LaneCoder, ModelId};
use vlae_zip::folder::{self, count, FolderImage};
use vlae_zip::infer::network::Network;
use vlae_zip::job;
use vlae_zip::models;
use vlae_zip::nn::data::{Augment, Image, TileSet};
use vlae_zip::nn::{eval, train, vlae as eval_model};

const LN2: f64 = std::f64::consts::LN_2;

/// Learning rate when fine-tuning with `--init`: a quarter of a fresh run's, so that the
/// start is not forgotten in the first steps.
const FINE_TUNING_RATE: f64 = 5e-4;

/// Runs one command.
pub fn run(command: Command, quiet: bool) -> Result<()> {
    match command {
        Command::Compress(args) => compress(&args, quiet),
        Command::Decompress(args) => decompress(&args, quiet),
        Command::Test(args) => test(&args, quiet),
        Command::List(args) => list(&args.archive),
        Command::Info(args) => info(&args),
        Command::Models => list_models(),
        Command::Bench(args) => bench(&args, quiet),
        Command::Show(args) => show(&args, quiet),
        Command::Extract(args) => extract(&args, quiet),
        Command::Train(args) => train(args, quiet),
        Command::Eval(args) => evaluate(&args, quiet),
    }
}

/// Prints an error as every command does: one line naming the problem, then its causes.
pub fn print_error(err: &anyhow::Error) {
    eprintln!("vlae-zip: error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

/// `vlae-zip compress`: every check that needs no image runs before any is read.
fn compress(args: &CompressArgs, quiet: bool) -> Result<()> {
    let output = args.output.as_path();
    let to_stdout = output == Path::new("-");
    if to_stdout && std::io::stdout().is_terminal() {
        anyhow::bail!(
            "refusing to write an archive to a terminal: redirect standard output, or name a file with -o"
        );
    }
    if !to_stdout {
        folder::check_output_file(output, args.force)?;
    }
    let nets = coding_networks(&args.model)?;
    let start = Instant::now();
    let images = read_inputs(&args.inputs, quiet)?;
    let rows: u64 = images.iter().map(|i| u64::from(i.entry.height)).sum();
    let pb = bar(rows as usize, "compressing", quiet);
    let refs: Vec<&Network> = nets.iter().collect();
    let opts = coding_options(&args.coding);
    let (limit, what) = memory_limit(args.memory_limit);
    let bytes =
        job::compress_images(&refs, &images, opts, &|n| pb.inc(n), limit).map_err(|e| match e {
            job::JobError::Archive(ArchiveError::CodingMemory { .. }) => {
                anyhow::anyhow!("{e}: {what}")
            }
            e => e.into(),
        })?;
    pb.finish_and_clear();
    if to_stdout {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)
            .and_then(|()| out.flush())
            .context("cannot write the archive to standard output")?;
    } else {
        folder::write_file_atomic(output, &bytes, args.force)?;
    }
    if !quiet && !to_stdout {
        let n = images.len() as u64;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{} → {} ({:.2} bits/image) in {secs:.2} s ({:.0} images/s)",
            count(n, "image"),
            count(bytes.len() as u64, "byte"),
            bytes.len() as f64 * 8.0 / n as f64,
            n as f64 / secs
        );
    }
    Ok(())
}

/// Address space the program itself takes beside what [`vlae_zip::archive::encode_bytes`] counts:
/// its code and data, the networks, thread stacks and the allocator's slack. Measured
/// under a 1 GB `ulimit -v`, where a 6800 × 8800 page then compresses (`tests/hostile.rs`).
const PROGRAM_BYTES: u64 = 256 << 20;

/// The memory compressing may hold: `--memory-limit`, else the address space `ulimit -v`
/// leaves beside the program itself, else none; and which of them it is, for messages.
fn memory_limit(given: Option<u64>) -> (Option<u64>, &'static str) {
    match (given, address_space_limit()) {
        (Some(limit), _) => (Some(limit), "the --memory-limit"),
        (None, Some(space)) => (
            Some(space.saturating_sub(PROGRAM_BYTES)),
            "what the address-space limit (ulimit -v) leaves",
        ),
        (None, None) => (None, "no memory limit"),
    }
}

/// The process's address-space limit (`ulimit -v`), where the system has one set.
#[cfg(target_os = "linux")]
fn address_space_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::As).current
}

#[cfg(not(target_os = "linux"))]
fn address_space_limit() -> Option<u64> {
    None
}

/// The folder `decompress` writes: `-o`, else the archive's path without `.vlz`.
fn output_folder(args: &DecompressArgs) -> Result<PathBuf> {
    if let Some(out) = &args.output {
        return Ok(out.clone());
    }
    let archive = &args.archive;
    if archive == Path::new("-") {
        anyhow::bail!("the archive comes from standard input: name the output folder with -o");
    }
    match archive.extension() {
        Some(ext) if ext == "vlz" && archive.file_stem().is_some() => {
            Ok(archive.with_extension(""))
        }
        _ => anyhow::bail!(
            "{}: the name does not end in .vlz, so no output folder follows from it: name one with -o",
            archive.display()
        ),
    }
}

/// The images `decompress ARCHIVE NAME…` writes: every one when no name is given, else
/// those named and those inside the folders named.
struct Selection {
    names: HashSet<String>,
}

impl Selection {
    fn new(names: &[String]) -> Self {
        Selection {
            names: names
                .iter()
                .map(|n| n.trim_end_matches('/').to_string())
                .collect(),
        }
    }

    /// The name itself, or a folder it is in, was asked for.
    fn wants(&self, name: &str) -> bool {
        if self.names.is_empty() {
            return true;
        }
        let mut prefix = name;
        loop {
            if self.names.contains(prefix) {
                return true;
            }
            match prefix.rfind('/') {
                Some(slash) => prefix = &prefix[..slash],
                None => return false,
            }
        }
    }

    /// Counts what the selected images will create, and fails on a name that matches no
    /// image.
    fn expansion(&self, arch: &Archive) -> Result<folder::Expansion> {
        let mut counter = folder::ExpansionCounter::default();
        let mut unmatched = self.names.clone();
        for entry in arch.entries() {
            if self.wants(&entry.name) {
                counter.add(&entry)?;
                if !unmatched.is_empty() {
                    let mut prefix = entry.name.as_str();
                    loop {
                        unmatched.remove(prefix);
                        match prefix.rfind('/') {
                            Some(slash) => prefix = &prefix[..slash],
                            None => break,
                        }
                    }
                }
            }
        }
        if let Some(name) = unmatched.iter().min() {
            anyhow::bail!("the archive has no image or folder named {name:?} (see vlae-zip list)");
        }
        Ok(counter.total())
    }
}

/// Fails when the output is over the limits, or (unless `--allow-large`) does not fit the
/// free space and inodes of the filesystem it goes to.
fn check_expansion(
    expansion: &folder::Expansion,
    args: &LimitArgs,
    target: &folder::OutputFolder,
) -> Result<()> {
    let limits = if args.allow_large {
        folder::Limits {
            max_files: None,
            max_bytes: None,
            check_room: false,
        }
    } else {
        folder::Limits {
            max_files: Some(args.max_files.unwrap_or(folder::DEFAULT_MAX_FILES)),
            max_bytes: Some(args.max_bytes.unwrap_or(folder::DEFAULT_MAX_BYTES)),
            check_room: true,
        }
    };
    expansion.check_limits(&limits)?;
    if limits.check_room {
        if let Some(room) = folder::room(target.filesystem())? {
            expansion.check_room(&room, target.filesystem())?;
        }
    }
    Ok(())
}

/// Fails when decoding `arch` would hold more memory than `limit`.
fn check_memory(arch: &container::Archive, limit: Option<u64>) -> Result<()> {
    let needed = vlae_zip::archive::decode_bytes(arch, rayon::current_num_threads());
    match limit {
        Some(limit) if needed > limit => anyhow::bail!(
            "decoding needs {} of memory, above the --memory-limit of {}",
            count(needed, "byte"),
            count(limit, "byte")
        ),
        _ => Ok(()),
    }
}

/// `vlae-zip decompress`: the output is checked before the archive is read, the archive
/// and what it will create before the staging folder is made, all before decoding.
fn decompress(args: &DecompressArgs, quiet: bool) -> Result<()> {
    let output = output_folder(args)?;
    let target = folder::OutputFolder::check(&output)?;
    let start = Instant::now();
    let bytes = open_archive(&args.archive)?;
    let context = || format!("cannot decompress {}", args.archive.display());
    let arch = container::parse(&bytes).with_context(context)?;
    // Building the networks reads and hashes every model's weights: 3–4 ms, a sixth of
    // what a 10,000-pixel page costs to decode. An archive that names no model needs none.
    let nets = if arch.models.is_empty() {
        Vec::new()
    } else {
        decoding_networks(&args.model)?
    };
    let refs: Vec<&Network> = nets.iter().collect();
    let selection = Selection::new(&args.names);
    let expansion = selection.expansion(&arch).with_context(context)?;
    check_expansion(&expansion, &args.limits, &target).with_context(context)?;
    check_memory(&arch, args.limits.memory_limit).with_context(context)?;
    let staged = target.stage()?;
    let wanted = |e: &Entry| selection.wants(&e.name);
    let rows: u64 = if args.names.is_empty() {
        arch.total_rows()
    } else {
        arch.entries()
            .filter(wanted)
            .map(|e| u64::from(e.height))
            .sum()
    };
    let pb = bar(rows as usize, "decompressing", quiet);
    let some = (!args.names.is_empty()).then_some(&wanted as &dyn Fn(&Entry) -> bool);
    let images =
        job::decompress_into(&refs, &arch, staged, some, &|n| pb.inc(n)).with_context(context)?;
    pb.finish_and_clear();
    if !quiet {
        println!(
            "{} → {} in {:.2} s",
            count(images, "image"),
            output.display(),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// `vlae-zip test`: decodes each archive and checks it, writing nothing; goes on past a
/// faulty archive and fails at the end if any was.
fn test(args: &TestArgs, quiet: bool) -> Result<()> {
    let nets = decoding_networks(&args.model)?;
    let refs: Vec<&Network> = nets.iter().collect();
    let mut failed = 0u64;
    for path in &args.archives {
        let tested = open_archive(path).and_then(|bytes| {
            let arch = container::parse(&bytes)?;
            let pb = bar(arch.total_rows() as usize, "testing", quiet);
            let images = job::verify(&refs, &arch, &|n| pb.inc(n))?;
            pb.finish_and_clear();
            Ok(images)
        });
        match tested.with_context(|| format!("{} failed the test", path.display())) {
            Ok(images) if !quiet => println!("{}: ok, {}", path.display(), count(images, "image")),
            Ok(_) => {}
            Err(err) => {
                print_error(&err);
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} failed the test",
            count(args.archives.len() as u64, "archive")
        );
    }
    Ok(())
}

/// A format as people name it: "PBM", "PNG, 8-bit grey", "TIFF page", "PNG, 1-bit index"
/// (a palette PNG).
fn format_words(format: ImageFormat) -> String {
    match format {
        ImageFormat::Pbm => "PBM".into(),
        ImageFormat::PngGray { bit_depth } => format!("PNG, {bit_depth}-bit grey"),
        ImageFormat::TiffPage => "TIFF page".into(),
        // "Indexed", PNG's own word for a palette image: it fits `list`'s format column.
        ImageFormat::PngPalette { bit_depth } => format!("PNG, {bit_depth}-bit index"),
    }
}

/// The built-in models' names by the ids archives know them by.
fn built_in_names() -> Vec<(&'static str, Network)> {
    models::BUILT_IN
        .iter()
        .filter_map(|m| Some((m.name, m.network().ok()?)))
        .collect()
}

/// A model id, with its built-in name when it has one.
fn model_words(id: &ModelId, names: &[(&str, Network)]) -> String {
    match names.iter().find(|(_, net)| net.is(id)) {
        Some((name, _)) => format!("{id} ({name})"),
        None => format!("{id} (not built in)"),
    }
}

/// How a lane is coded, in words.
fn coder_words(coder: LaneCoder, models: &[ModelId], names: &[(&str, Network)]) -> String {
    match coder {
        LaneCoder::BitsBack {
            model,
            samples,
            memory,
            ..
        } => {
            let mut words = format!(
                "bits-back chain, model {}",
                model_words(&models[model as usize], names)
            );
            if samples > 1 {
                words += &format!(", {}", count(samples.into(), "importance sample"));
            }
            if memory {
                words += ", page memory";
            }
            words
        }
        LaneCoder::Repeat { back } => format!("repeat of the image {back} before"),
        other => other.info().name.into(),
    }
}

/// A lane's coded bytes: its payload and, for an ANS lane, its 8-byte head.
fn lane_bytes(lane: &container::LaneView) -> u64 {
    let head = if lane.coder.has_head() { 8 } else { 0 };
    lane.payload.len() as u64 + head
}

/// `vlae-zip list`: every lane, then every image with its size, format, the lanes that
/// hold it and its share of their bytes (by rows).
fn list(path: &Path) -> Result<()> {
    let bytes = open_archive(path)?;
    let arch = container::parse(&bytes)
        .with_context(|| format!("{} is not a valid archive", path.display()))?;
    let names = built_in_names();
    println!("{:>5}  {:>8}  {:>10}  coder", "lane", "rows", "bytes");
    for (i, lane) in arch.lanes.iter().enumerate() {
        println!(
            "{:>5}  {:>8}  {:>10}  {}",
            i + 1,
            lane.rows,
            lane_bytes(lane),
            coder_words(lane.coder, &arch.models, &names)
        );
    }
    println!();
    println!(
        "{:>10}  {:<13}  {:<16}  {:<11}  name",
        "bytes", "size", "format", "lanes"
    );
    let mut lanes = arch.lanes.iter().enumerate().filter(|(_, l)| l.rows > 0);
    let mut current = lanes.next();
    let mut left = current.map_or(0, |(_, l)| l.rows);
    for entry in arch.entries() {
        let (mut rows, mut share) = (u64::from(entry.height), 0.0);
        let first = current.map_or(0, |(i, _)| i);
        let mut last = first;
        while rows > 0 {
            let Some((i, lane)) = current else { break };
            let take = rows.min(left);
            share += lane_bytes(lane) as f64 * take as f64 / lane.rows as f64;
            (rows, left, last) = (rows - take, left - take, i);
            if left == 0 {
                current = lanes.next();
                left = current.map_or(0, |(_, l)| l.rows);
            }
        }
        let held_by = if first == last {
            format!("{}", first + 1)
        } else {
            format!("{}-{}", first + 1, last + 1)
        };
        println!(
            "{:>10.0}  {:<13}  {:<16}  {held_by:<11}  {}",
            share,
            format!("{}×{}", entry.width, entry.height),
            format_words(entry.format),
            entry.name
        );
    }
    Ok(())
}

/// The lanes line of `info`: how many, and by which coder.
fn lanes_summary(arch: &Archive) -> String {
    let of = |kind: fn(LaneCoder) -> bool| arch.lanes.iter().filter(|l| kind(l.coder)).count();
    let bits_back = of(|c| matches!(c, LaneCoder::BitsBack { .. }));
    let remembering = of(|c| matches!(c, LaneCoder::BitsBack { memory: true, .. }));
    let context = of(|c| matches!(c, LaneCoder::Context { .. }));
    let mixing = of(|c| matches!(c, LaneCoder::PageMixing(_)));
    let stored = of(|c| c == LaneCoder::Stored);
    let with_memory = if remembering > 0 {
        format!(", {remembering} of them with page memory")
    } else {
        String::new()
    };
    // The coders of exact repeats are named only where an archive has them.
    let rare: String = [
        (of(|c| matches!(c, LaneCoder::Repeat { .. })), "repeat"),
        (of(|c| c == LaneCoder::Zstd), "zstd"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, name)| format!(", {n} {name}"))
    .collect();
    format!(
        "{} ({bits_back} bits-back{with_memory}, {context} context model, {mixing} page mixing, {stored} stored{rare})",
        arch.lanes.len(),
    )
}

/// `vlae-zip info`.
fn info(args: &InfoArgs) -> Result<()> {
    let path = &args.archive;
    let bytes = open_archive(path)?;
    let arch = container::parse(&bytes)
        .with_context(|| format!("{} is not a valid archive", path.display()))?;
    let n = arch.image_count;
    let (smallest, largest) = arch.size_range;
    println!("archive        {}", path.display());
    println!("format         {}", container::VERSION);
    let names = built_in_names();
    for m in &arch.models {
        println!("model          {}", model_words(m, &names));
    }
    if smallest == largest {
        println!("images         {n} of {}×{}", largest.0, largest.1);
    } else {
        println!(
            "images         {n} of mixed sizes ({}×{} to {}×{})",
            smallest.0, smallest.1, largest.0, largest.1
        );
    }
    println!("lanes          {}", lanes_summary(&arch));
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
        "size           {} = {:.2} bits/image ({:.2} in lane payloads)",
        count(bytes.len() as u64, "byte"),
        bytes.len() as f64 * 8.0 / n.max(1) as f64,
        arch.payload_bytes() as f64 * 8.0 / n.max(1) as f64
    );
    info_entries(&arch);
    if args.list {
        println!();
        list(path)?;
    }
    Ok(())
}

/// The first entries, for `info`.
fn info_entries(arch: &Archive) {
    let n = arch.image_count;
    for e in arch.entries().take(3) {
        println!(
            "  {} ({}, {}×{})",
            e.name,
            format_words(e.format),
            e.width,
            e.height
        );
    }
    if n > 3 {
        println!("  … {} more", n - 3);
    }
}

/// `vlae-zip bench`.
fn bench(args: &BenchArgs, quiet: bool) -> Result<()> {
    let (model, coding) = (&args.model, &args.coding);
    let iwae = args
        .iwae
        .map(|k| k as usize)
        .or((coding.iw > 1).then_some(usize::from(coding.iw)));
    let nets = coding_networks(model)?;
    let refs: Vec<&Network> = nets.iter().collect();
    let images = load_any(&args.path, quiet)?;
    let work = tempfile::tempdir().context("cannot create a temporary folder")?;
    let rt = job::round_trip(&refs, &images, coding_options(coding), work.path())?;

    // Under `auto`, the rate is compared with the model that coded most of the rows.
    let main = rt
        .main_model
        .and_then(|id| nets.iter().position(|n| n.is(&id)))
        .unwrap_or(0);
    let source = &model_sources(model)?[main];
    let (m, cfg) = candle_model(source)?;
    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner().with_message("evaluating the model's -ELBO")
    };
    let (stats, iw) = model_figures(&m, &cfg, &images, iwae)?;
    pb.finish_and_clear();
    let figures = BenchFigures {
        rt: &rt,
        stats: &stats,
        iw: iw.map(|r| (iwae.unwrap_or(0), r)),
        model_name: source.name(),
    };
    if args.json {
        figures.print_json();
    } else {
        figures.print_text();
    }
    if !rt.ok {
        anyhow::bail!("decompressed images differ from the originals");
    }
    Ok(())
}

/// What `bench` measured, to print.
struct BenchFigures<'a> {
    rt: &'a job::RoundTrip,
    stats: &'a eval::ElboStats,
    /// Importance samples and the IWAE NLL (mean, standard error), in nats per image.
    iw: Option<(usize, (f64, f64))>,
    model_name: String,
}

impl BenchFigures<'_> {
    fn achieved(&self) -> f64 {
        self.rt.archive_bytes as f64 * 8.0 / self.rt.images as f64
    }

    fn elbo(&self) -> f64 {
        self.stats.neg_elbo_nats() / LN2
    }

    fn print_json(&self) {
        let (rt, n) = (self.rt, self.rt.images as f64);
        // Pages are timed by their pixels, in megapixels a second.
        let megapixels = rt.pixels as f64 / 1e6;
        let mut obj = serde_json::json!({
            "images": rt.images,
            "lanes": rt.lanes,
            "stored_lanes": rt.stored_lanes,
            "latent_bits": rt.latent_bits,
            "archive_bytes": rt.archive_bytes,
            "achieved_bits_per_image": self.achieved(),
            "payload_bits_per_image": rt.payload_bytes as f64 * 8.0 / n,
            "neg_elbo_bits_per_image": self.elbo(),
            "model": self.model_name,
            "model_coded_any_lane": rt.main_model.is_some(),
            "kl_bits_per_image": self.stats.kl_nats / LN2,
            "gap_bits_per_image": self.achieved() - self.elbo(),
            "compress_images_per_sec": n / rt.compress_secs,
            "decompress_images_per_sec": n / rt.decompress_secs,
            "compress_megapixels_per_sec": megapixels / rt.compress_secs,
            "decompress_megapixels_per_sec": megapixels / rt.decompress_secs,
            "threads": rt.threads,
            "decode_tasks": rt.decode_tasks,
            "roundtrip_ok": rt.ok,
        });
        if let Some((k, (nll, se))) = self.iw {
            obj["iwae_samples"] = k.into();
            obj["iwae_nll_bits_per_image"] = (nll / LN2).into();
            obj["iwae_nll_stderr_bits"] = (se / LN2).into();
        }
        println!("{obj}");
    }

    fn print_text(&self) {
        let (rt, n) = (self.rt, self.rt.images as f64);
        let (achieved, elbo) = (self.achieved(), self.elbo());
        println!("images                 {}", rt.images);
        println!(
            "lanes                  {} ({} stored); {} on {}",
            rt.lanes,
            rt.stored_lanes,
            count(rt.decode_tasks as u64, "decoding task"),
            count(rt.threads as u64, "thread")
        );
        let payload_bits = rt.payload_bytes as f64 * 8.0 / n;
        println!("achieved               {achieved:9.3} bits/image  ({}; lane payloads {payload_bits:.3})", count(rt.archive_bytes as u64, "byte"));
        // Page mixing, the context templates and stored lanes use no model: the gap is then
        // no model's.
        let coder = if rt.main_model.is_some() {
            ""
        } else {
            "; it coded no lane"
        };
        println!(
            "model -ELBO            {elbo:9.3} bits/image  ({}; KL {:.3}{coder})",
            self.model_name,
            self.stats.kl_nats / LN2
        );
        if let Some((k, (nll, se))) = self.iw {
            println!(
                "model IWAE NLL (K={k})  {:9.3} ± {:.3} bits/image",
                nll / LN2,
                se / LN2
            );
        }
        println!(
            "gap                    {:+9.3} bits/image  ({:+.3}%)",
            achieved - elbo,
            100.0 * (achieved / elbo - 1.0)
        );
        let megapixels = rt.pixels as f64 / 1e6;
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
        let verdict = if rt.ok { "ok" } else { "FAILED" };
        println!("round trip             {verdict}");
    }
}

/// `vlae-zip show`.
fn show(args: &ShowArgs, quiet: bool) -> Result<()> {
    let model = ModelArgs {
        model: args.model.clone(),
        config: None,
    };
    let net = network(&model_sources(&model)?[0])?;
    let images = load_any(&args.data, quiet)?;
    if images.is_empty() {
        anyhow::bail!("{}: no images", args.data.display());
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
    let scale = args
        .scale
        .map_or(if panel.width < 600 { 4 } else { 1 }, |s| s as usize);
    let (w, h, grey) = vlae_zip::figure::figure(&net, &panel, args.seed, scale);
    let output = &args.output;
    std::fs::write(output, vlae_zip::figure::png(w, h, &grey))
        .with_context(|| format!("cannot write {}", output.display()))?;
    println!("figure: {} ({w}×{h})", output.display());
    Ok(())
}

/// `vlae-zip extract`.
fn extract(args: &ExtractArgs, quiet: bool) -> Result<()> {
    let mut images = idx_images(&args.idx)?;
    images.truncate(args.limit.map_or(usize::MAX, |n| n as usize));
    let staged = folder::StagedFolder::create(&args.output)?;
    let pb = bar(images.len(), "writing", quiet);
    for img in images {
        staged.write(&img.entry, img.pixels)?;
        pb.inc(1);
    }
    staged.commit()?;
    pb.finish_and_clear();
    Ok(())
}

/// The weights to start training from, if `--init` names a model, and the config: the
/// `--init` model's (which `--config`, if given, must equal), else `--config`'s, else the
/// built-in MNIST model's (so that `train` runs from any folder).
fn training_start(args: &TrainArgs) -> Result<(Option<HashMap<String, Tensor>>, VlaeConfig)> {
    let Some(name) = &args.init else {
        let config = match &args.config {
            Some(path) => VlaeConfig::load(path)?,
            None => vlae_zip::models::built_in("mnist")
                .expect("the mnist model is built in")
                .vlae_config()?,
        };
        return Ok((None, config));
    };
    let (tensors, cfg) = model_tensors(&ModelArgs {
        model: name.clone(),
        config: None,
    })?;
    if let Some(path) = &args.config {
        if VlaeConfig::load(path)? != cfg {
            anyhow::bail!(
                "--config {} differs from the config of the --init model {name}",
                path.display()
            );
        }
    }
    Ok((Some(tensors), cfg))
}

/// `vlae-zip train`.
fn train(args: TrainArgs, quiet: bool) -> Result<()> {
    let (init, cfg) = training_start(&args)?;
    let data = args
        .data_path
        .or(args.data)
        .unwrap_or_else(|| "corpus/binarized-mnist/train-images.idx3-ubyte.gz".into());
    let mut images = load_any(&data, quiet)?;
    images.truncate(args.limit.map_or(usize::MAX, |n| n as usize));
    let held_out = match args.validation_images {
        Some(v) => v as usize,
        None if data.is_dir() => images.len().div_ceil(10),
        None => 10_000,
    };
    if held_out >= images.len() {
        anyhow::bail!(
            "{}: {}, and {held_out} are held out for validation: none left to train on",
            data.display(),
            count(images.len() as u64, "image")
        );
    }
    let valid = images.split_off(images.len() - held_out);
    let mut opts = train::TrainOptions::default();
    opts.epochs = args.epochs.map_or(opts.epochs, |v| v as usize);
    opts.batch_size = args.batch_size.map_or(opts.batch_size, |v| v as usize);
    opts.learning_rate = args.learning_rate.unwrap_or(if init.is_some() {
        FINE_TUNING_RATE
    } else {
        opts.learning_rate
    });
    opts.validation_images = held_out;
    opts.augment = Augment {
        shift: args.shift as usize,
        mirror: args.mirror,
    };
    let how = train::Invocation {
        resume: args.resume,
        quiet,
        init,
        minutes: args.minutes,
    };
    let (train_set, valid_set) = (tile_set(images, &cfg), tile_set(valid, &cfg));
    let best = train::train(&train_set, &valid_set, &cfg, &opts, &args.run, how)
        .context("training failed")?;
    let output = args.output.unwrap_or_else(|| {
        let name = args
            .run
            .file_name()
            .map_or("model".into(), |n| n.to_os_string());
        args.run.join(name).with_extension("safetensors")
    });
    std::fs::copy(&best, &output).with_context(|| format!("cannot write {}", output.display()))?;
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

/// `vlae-zip eval`.
fn evaluate(args: &EvalArgs, quiet: bool) -> Result<()> {
    let mut images = load_any(&args.path, quiet)?;
    images.truncate(args.limit.map_or(usize::MAX, |n| n as usize));
    // `auto` means the first built-in model.
    let (m, cfg) = candle_model(&model_sources(&args.model)?[0])?;
    let iwae = args.iwae.map(|k| k as usize);
    let (stats, iw) = model_figures(&m, &cfg, &images, iwae)?;
    let iw = iw.map(|r| (iwae.unwrap_or(1), r));
    print_eval(&stats, iw, args.json);
    Ok(())
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
fn model_sources(args: &ModelArgs) -> Result<Vec<ModelSource>> {
    if args.model == "auto" {
        return Ok(models::BUILT_IN
            .iter()
            .filter(|m| m.auto)
            .map(ModelSource::BuiltIn)
            .collect());
    }
    if let Some(m) = models::built_in(&args.model) {
        return Ok(vec![ModelSource::BuiltIn(m)]);
    }
    let weights = PathBuf::from(&args.model);
    if !weights.exists() {
        let names: Vec<&str> = models::BUILT_IN.iter().map(|m| m.name).collect();
        anyhow::bail!(
            "--model {}: neither `auto`, a built-in model ({}) nor a weights file",
            args.model,
            names.join(", ")
        );
    }
    let config = args
        .config
        .clone()
        .unwrap_or_else(|| weights.with_extension("json"));
    Ok(vec![ModelSource::File { weights, config }])
}

fn network(source: &ModelSource) -> Result<Network> {
    Ok(match source {
        ModelSource::BuiltIn(m) => m.network()?,
        ModelSource::File { weights, config } => Network::load(weights, config)?,
    })
}

/// The networks to compress with.
fn coding_networks(args: &ModelArgs) -> Result<Vec<Network>> {
    model_sources(args)?.iter().map(network).collect()
}

/// The networks to decompress with: those `--model` names, then every other built-in
/// one (each built once).
fn decoding_networks(args: &ModelArgs) -> Result<Vec<Network>> {
    let mut sources = model_sources(args)?;
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
    source_tensors(&model_sources(args)?[0])
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
    let idx = vlae_zip::idx::read_idx(path)?;
    let pixels = idx.rows * idx.cols;
    if idx.pixels.is_empty() {
        anyhow::bail!("{}: the IDX file holds no images", path.display());
    }
    let width = (idx.pixels.len() / pixels)
        .saturating_sub(1)
        .to_string()
        .len()
        .max(5);
    Ok(idx
        .pixels
        .chunks(pixels)
        .enumerate()
        .map(|(i, p)| FolderImage {
            entry: Entry {
                name: format!("{i:0width$}.pbm"),
                format: ImageFormat::Pbm,
                width: idx.cols as u32,
                height: idx.rows as u32,
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

/// Archive bytes from a file, a pipe or standard input.
///
/// Files are memory-mapped and parsed in place: the lanes' payloads are never copied.
/// Modifying or truncating an archive while vlae-zip reads it is not supported. A
/// modification is caught by the checksum, but a truncation under the mapping makes the
/// read fault (SIGBUS) and ends the process at once; the output folder is moved into
/// place only after every image decoded and checked, so no partial output ever appears.
/// Pipes (`<(cat x.vlz)`) and sockets, which cannot be mapped, are read as streams.
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

/// Reads a stream to its end, growing the buffer by fallible reservations: running out of
/// memory is an error naming the stream, not an abort.
fn read_stream(mut stream: impl Read, name: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(bytes),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read the archive from {name}"))
            }
        };
        bytes.try_reserve(n).map_err(|_| {
            anyhow::anyhow!(
                "{name}: not enough memory to hold the archive ({} read so far)",
                folder::human_bytes(bytes.len() as u64)
            )
        })?;
        bytes.extend_from_slice(&chunk[..n]);
    }
}

fn open_archive(path: &Path) -> Result<ArchiveBytes> {
    if path == Path::new("-") {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            anyhow::bail!(
                "standard input is a terminal: an archive must come from a file or a pipe"
            );
        }
        return Ok(ArchiveBytes::Read(read_stream(
            stdin.lock(),
            "standard input",
        )?));
    }
    let shown = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("cannot open {shown}"))?;
    if meta.is_dir() {
        anyhow::bail!("{shown}: is a folder, not an archive");
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {shown}"))?;
    if !meta.is_file() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            let kind = meta.file_type();
            if kind.is_fifo() || kind.is_socket() {
                return Ok(ArchiveBytes::Read(read_stream(file, &shown.to_string())?));
            }
        }
        let kind = vlae_zip::image_io::special_kind(&meta.file_type()).unwrap_or("not a file");
        anyhow::bail!("{shown}: is {kind}, not an archive file or a pipe");
    }
    // SAFETY: a read-only mapping of a file this process does not write; see the stance
    // on concurrent modification above.
    let map =
        unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("cannot map {shown}"))?;
    Ok(ArchiveBytes::Mapped(map))
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
