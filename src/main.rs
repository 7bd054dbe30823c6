//! The `vlae-zip` command line: a thin face over the library.

mod commands;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mimalloc.h` of libmimalloc-sys 0.1.49, the
/// version Cargo.toml pins exactly.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Training and evaluation allocate and free the same large activations every step. By
/// default mimalloc hands freed pages back to the OS and the kernel zeroes them again on
/// the next touch, which took a fifth of a training step; keeping them is 15% faster.
/// Only for training and evaluation: coding frees tables of other sizes than it takes
/// next (page mixing's tables, images), and kept they doubled the address space that
/// compressing a 6800 × 8800 page needs, past a 1 GB `ulimit -v`. Called before any
/// thread exists, as mimalloc requires of options.
fn keep_freed_memory() {
    // SAFETY: sets a plain integer option before any other thread runs.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

/// What the exit status says, shown at the end of every `--help`.
const EXIT_STATUS: &str = "\
Exit status: 0 when everything succeeded; 1 on an error (the message names the file and \
the reason, and no partial output is left); 2 on a usage error (an unknown option or an \
invalid value).";

#[derive(Parser)]
#[command(
    version,
    about = "Lossless bi-level image compression with a VLAE and bits-back ANS",
    after_help = EXIT_STATUS
)]
struct Cli {
    /// Print nothing but results and errors (no progress bars).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Threads that code and decode [default: all cores].
    #[arg(short = 'T', long, global = true, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    #[command(subcommand)]
    command: Command,
}

/// Which model to use.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// `auto` (every built-in model; each lane takes the one that codes it smallest), a
    /// built-in model's name (see `vlae-zip models`), or a path to safetensors weights.
    /// Decoding always also offers the built-in models: archives name theirs.
    #[arg(long, default_value = "auto")]
    pub model: String,
    /// Model config (JSON) for a weights path; defaults to the weights' path with a .json
    /// extension.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `--lane-coder` values.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LaneCoderArg {
    Smallest,
    BitsBack,
}

/// How to code.
#[derive(Args, Clone)]
pub struct CodingArgs {
    /// At least this many lanes: independent runs of rows, coded and decoded in parallel.
    /// Default: one per 625 tiles that the model codes (625 digits, or about 40% of a
    /// 200-dpi text page), K/4 times as many with `--iw K` from K = 8, rounded to an even
    /// count, and at least two for inputs larger than one lane. More lanes decode on more
    /// cores and cost a few hundred bits each.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub lanes: Option<u32>,
    /// Which coders lanes may use: the smallest of the bits-back chain, the context model
    /// and stored bits, or the bits-back chain alone (to measure the model).
    #[arg(long, value_enum, default_value_t = LaneCoderArg::Smallest)]
    pub lane_coder: LaneCoderArg,
    /// Importance-weighted bits-back with up to K samples per tile: the rate approaches
    /// the model's IWAE bound instead of its −ELBO, at about K times the work.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub iw: u16,
    /// log2 of the number of buckets each latent dimension is discretized into. Default:
    /// 6, and on inputs of at most 64 digits' pixels also 3, keeping the smaller archive.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub latent_bits: Option<u8>,
}

/// How much a decompression may write before it starts.
#[derive(Args, Clone)]
pub struct LimitArgs {
    /// Most files to write [default: 100000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_files: Option<u64>,
    /// Most bytes to write, as a number with an optional unit: k, M, G, T (powers of
    /// 1000) or Ki, Mi, Gi, Ti (of 1024), each with or without B. PNG files count at their
    /// largest (rows stored uncompressed) [default: 8G].
    #[arg(long, value_parser = byte_count)]
    pub max_bytes: Option<u64>,
    /// Lift both limits, and the check of free space and inodes (which counts PNG files at
    /// their largest too).
    #[arg(long, conflicts_with_all = ["max_files", "max_bytes"])]
    pub allow_large: bool,
    /// Most memory decoding may hold at once (the coders' tables and the lanes decoded
    /// together), in the units of --max-bytes; an archive that needs more is refused
    /// before decoding [default: no limit].
    #[arg(long, value_parser = byte_count)]
    pub memory_limit: Option<u64>,
}

#[derive(Args)]
pub struct CompressArgs {
    /// Image files and folders; `-` for one image on standard input (stored as stdin.pbm
    /// or stdin.png).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Archive to write; `-` for standard output (never a terminal).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace an existing output file (or symbolic link).
    #[arg(short, long)]
    pub force: bool,
    /// Most memory compressing may hold at once (the images and the coders' tables), in
    /// the units of --max-bytes: fewer threads code where all of them would need more, and
    /// inputs that need more on one thread are refused before coding [default: what the
    /// address-space limit, `ulimit -v`, leaves; else no limit].
    #[arg(long, value_parser = byte_count)]
    pub memory_limit: Option<u64>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub coding: CodingArgs,
}

#[derive(Args)]
pub struct DecompressArgs {
    /// Archive to read: a file, a pipe, or `-` for standard input.
    pub archive: PathBuf,
    /// Only these images, by the names `vlae-zip list` shows (a folder's name takes all of
    /// it). Only the lanes holding them are decoded; the file checksum is checked, the
    /// pixel checksum (over every image) is left to `vlae-zip test`.
    pub names: Vec<String>,
    /// Folder to create, or an empty folder to fill [default: the archive's path without
    /// .vlz].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Args)]
pub struct TestArgs {
    /// Archives to test.
    #[arg(required = true)]
    pub archives: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Args)]
pub struct InfoArgs {
    /// Archive to describe.
    pub archive: PathBuf,
    /// Also list every lane and image, as `vlae-zip list` does.
    #[arg(long)]
    pub list: bool,
}

#[derive(Args)]
pub struct ListArgs {
    /// Archive to list.
    pub archive: PathBuf,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Folder of images, or an IDX file.
    pub path: PathBuf,
    /// Also estimate the model's NLL by importance sampling with K samples.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub iwae: Option<u32>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub coding: CodingArgs,
}

#[derive(Args)]
pub struct ShowArgs {
    /// Folder of images, or an IDX file: up to 12 tile-sized images side by side, or a
    /// crop of 8×3 tiles of the first image.
    pub data: PathBuf,
    /// PNG to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Model: a built-in name or a safetensors path (`auto`: the first built-in).
    #[arg(long, default_value = "auto")]
    pub model: String,
    /// Screen pixels per image pixel [default: 4 for digits, 1 for pages].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub scale: Option<u32>,
    /// Seed of the samples.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args)]
pub struct ExtractArgs {
    /// IDX file (optionally gzipped).
    pub idx: PathBuf,
    /// Folder to create.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Only the first N images.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
}

#[derive(Args)]
pub struct TrainArgs {
    /// Training images: a folder (PBM/PNG, any sizes, searched recursively) or an IDX3
    /// file, optionally gzipped. The last images (see --validation-images) are held out.
    #[arg(value_name = "DATA", conflicts_with = "data")]
    pub data_path: Option<PathBuf>,
    /// The same as DATA (kept for older scripts).
    #[arg(long, hide = true)]
    pub data: Option<PathBuf>,
    /// Model config (JSON). Defaults to the --init model's config, else the MNIST one.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Start from this model's weights (a built-in name or a safetensors path) and
    /// fine-tune; its config is used.
    #[arg(long)]
    pub init: Option<String>,
    /// Run folder for checkpoints and the log.
    #[arg(long, default_value = "runs/vlae-mnist")]
    pub run: PathBuf,
    /// Where to write the best weights (and the config beside them, as .json);
    /// defaults to RUN/NAME.safetensors, NAME being the run folder's name.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Continue the run in --run from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Stop after N minutes of this invocation, keeping the best weights (resume to go on).
    #[arg(long, value_parser = positive_number)]
    pub minutes: Option<f64>,
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: Option<u32>,
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub batch_size: Option<u32>,
    /// Defaults to 0.002, or 0.0005 when fine-tuning with --init.
    #[arg(long, value_parser = positive_number)]
    pub learning_rate: Option<f64>,
    /// Train on only the first N images (for smoke tests).
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..))]
    pub limit: Option<u32>,
    /// Images held out for validation, from the end [default: 10000 of an IDX file, a
    /// tenth of a folder].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub validation_images: Option<u32>,
    /// Move single-tile training images by up to N pixels each way.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=8))]
    pub shift: u32,
    /// Mirror single-tile training images left to right half of the time (for data whose
    /// mirror images are as likely, such as silhouettes; never characters).
    #[arg(long)]
    pub mirror: bool,
}

#[derive(Args)]
pub struct EvalArgs {
    /// Folder of images, or an IDX file.
    pub path: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Importance samples for an IWAE NLL estimate.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub iwae: Option<u32>,
    /// Evaluate only the first N images.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// Compress images into one archive: files as they are named, folders' .pbm, .png, .tif
    /// and .tiff images (searched recursively) under their relative paths.
    #[command(after_help = EXIT_STATUS)]
    Compress(CompressArgs),
    /// Decompress an archive into a new folder or an empty one, all of it or the images
    /// named; the output appears only once every image decoded and checked.
    #[command(after_help = EXIT_STATUS)]
    Decompress(DecompressArgs),
    /// Decode every image of each archive and check its checksums, writing nothing.
    #[command(after_help = EXIT_STATUS)]
    Test(TestArgs),
    /// List an archive's lanes (their coders and bytes) and images (size, format, bytes).
    #[command(after_help = EXIT_STATUS)]
    List(ListArgs),
    /// Describe an archive.
    #[command(after_help = EXIT_STATUS)]
    Info(InfoArgs),
    /// List the models built into this binary.
    Models,
    /// Compress, decompress and verify a folder (or an IDX file); report rate against the
    /// model's −ELBO and speed both ways.
    Bench(BenchArgs),
    /// Draw what z keeps: originals, reconstructions sampled given z ~ q(z|x), and samples
    /// from the prior, one panel above the other, as a PNG.
    Show(ShowArgs),
    /// Write the images of an IDX file as numbered PBM files.
    Extract(ExtractArgs),
    /// Train a model on a folder of bi-level images of any size, or an IDX file. Writes
    /// OUTPUT.safetensors and OUTPUT.json, usable at once with --model.
    Train(TrainArgs),
    /// Report the model's −ELBO (and optionally IWAE NLL) on a folder of images or an
    /// IDX file.
    Eval(EvalArgs),
}

/// A byte count with an optional unit: `8G`, `500MB`, `64KiB`, `1000`.
fn byte_count(s: &str) -> Result<u64, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let unit = unit.strip_suffix('B').unwrap_or(unit);
    let scale: u64 = match unit {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit (use k, M, G, T, Ki, Mi, Gi or Ti)"
            ))
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?} is not a positive byte count"))
}

/// A finite number above 0: a learning rate or a time budget.
fn positive_number(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

/// Lets a closed stdout end the process as it ends `cat` or `head`: Rust ignores
/// SIGPIPE, which makes every print to a closed pipe a panic.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Ends the process cleanly on SIGINT, SIGTERM and SIGHUP: a thread of its own waits for
/// them, removes whatever this process was staging (a partial archive or output folder),
/// then ends the process by the same signal, so that the shell sees how it ended.
fn clean_up_on_signals() {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            // Without the handlers the signals keep their default: no cleanup, but no harm.
            return;
        };
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                vlae_zip::folder::abandon_staging();
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        });
    }
}

/// Sizes rayon's pool: `threads`, or rayon's default of every core (and
/// RAYON_NUM_THREADS, where set) when not given.
fn set_threads(threads: Option<u16>) -> anyhow::Result<()> {
    if let Some(n) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.into())
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot start {n} threads: {e}"))?;
    }
    Ok(())
}

/// One malloc arena for the whole process. Rust allocates through mimalloc, but glibc
/// gives every thread that calls its malloc (thread-local destructors do) an arena of
/// 64 MiB of address space: under a `ulimit -v` of 1 GB, six threads' arenas took a
/// third of it, and compressing a 6800 × 8800 page on two threads aborted.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    // SAFETY: sets a plain integer parameter of glibc's allocator before any thread runs.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}

fn main() -> ExitCode {
    one_malloc_arena();
    default_sigpipe();
    let cli = Cli::parse();
    if matches!(cli.command, Command::Train(_) | Command::Eval(_)) {
        keep_freed_memory();
    }
    clean_up_on_signals();
    let result = set_threads(cli.threads).and_then(|()| commands::run(cli.command, cli.quiet));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            commands::print_error(&err);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::byte_count;

    #[test]
    fn byte_counts_take_units_of_1000_and_1024() {
        assert_eq!(byte_count("1000"), Ok(1000));
        assert_eq!(byte_count("8G"), Ok(8_000_000_000));
        assert_eq!(byte_count("500MB"), Ok(500_000_000));
        assert_eq!(byte_count("1k"), Ok(1000));
        assert_eq!(byte_count("64KiB"), Ok(65_536));
        assert_eq!(byte_count("2Gi"), Ok(2 << 30));
        for bad in ["", "0", "G", "8X", "-1", "99999999999T"] {
            assert!(byte_count(bad).is_err(), "{bad}");
        }
    }
}
