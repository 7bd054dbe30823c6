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
/// Called first thing in `main`, before any thread exists, as mimalloc requires of options.
fn keep_freed_memory() {
    // SAFETY: sets a plain integer option before any other thread runs.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

#[derive(Parser)]
#[command(
    version,
    about = "Lossless bi-level image compression with a VLAE and bits-back ANS"
)]
struct Cli {
    /// Print nothing but results and errors (no progress bars).
    #[arg(short, long, global = true)]
    quiet: bool,
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

#[derive(Subcommand)]
enum Command {
    /// Compress images into one archive: files as they are named, folders' .pbm and .png
    /// images (searched recursively) under their relative paths.
    Compress {
        /// Image files and folders.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Archive to write; `-` for standard output.
        #[arg(short, long)]
        output: PathBuf,
        /// Overwrite an existing output file.
        #[arg(short, long)]
        force: bool,
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        coding: CodingArgs,
    },
    /// Decompress an archive into DIR (which must not exist or be empty).
    Decompress {
        /// Archive to read; `-` for standard input.
        archive: PathBuf,
        /// Folder to create.
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// List the models built into this binary.
    Models,
    /// Describe an archive.
    Info {
        /// Archive to describe.
        archive: PathBuf,
    },
    /// Compress, decompress and verify a folder (or an IDX file); report rate against the
    /// model's −ELBO and speed both ways.
    Bench {
        /// Folder of images, or an IDX file.
        path: PathBuf,
        /// Also estimate the model's NLL by importance sampling with K samples.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
        iwae: Option<u32>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        coding: CodingArgs,
    },
    /// Draw what z keeps: originals, reconstructions sampled given z ~ q(z|x), and samples
    /// from the prior, one panel above the other, as a PNG.
    Show {
        /// Folder of images, or an IDX file: up to 12 tile-sized images side by side, or a
        /// crop of 8×3 tiles of the first image.
        data: PathBuf,
        /// PNG to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Model: a built-in name or a safetensors path (`auto`: the first built-in).
        #[arg(long, default_value = "auto")]
        model: String,
        /// Screen pixels per image pixel [default: 4 for digits, 1 for pages].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16))]
        scale: Option<u32>,
        /// Seed of the samples.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Write the images of an IDX file as numbered PBM files.
    Extract {
        /// IDX file (optionally gzipped).
        idx: PathBuf,
        /// Folder to create.
        #[arg(short, long)]
        output: PathBuf,
        /// Only the first N images.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
    },
    /// Train a model on a folder of bi-level images of any size, or an IDX file. Writes
    /// OUTPUT.safetensors and OUTPUT.json, usable at once with --model.
    Train {
        /// Training images: a folder (PBM/PNG, any sizes, searched recursively) or an IDX3
        /// file, optionally gzipped. The last images (see --validation-images) are held out.
        #[arg(value_name = "DATA", conflicts_with = "data")]
        data_path: Option<PathBuf>,
        /// The same as DATA (kept for older scripts).
        #[arg(long, hide = true)]
        data: Option<PathBuf>,
        /// Model config (JSON). Defaults to the --init model's config, else the MNIST one.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Start from this model's weights (a built-in name or a safetensors path) and
        /// fine-tune; its config is used.
        #[arg(long)]
        init: Option<String>,
        /// Run folder for checkpoints and the log.
        #[arg(long, default_value = "runs/vlae-mnist")]
        run: PathBuf,
        /// Where to write the best weights (and the config beside them, as .json);
        /// defaults to RUN/NAME.safetensors, NAME being the run folder's name.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Continue the run in --run from its last checkpoint.
        #[arg(long)]
        resume: bool,
        /// Stop after N minutes of this invocation, keeping the best weights (resume to go on).
        #[arg(long, value_parser = positive_number)]
        minutes: Option<f64>,
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        epochs: Option<u32>,
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
        batch_size: Option<u32>,
        /// Defaults to 0.002, or 0.0005 when fine-tuning with --init.
        #[arg(long, value_parser = positive_number)]
        learning_rate: Option<f64>,
        /// Train on only the first N images (for smoke tests).
        #[arg(long, value_parser = clap::value_parser!(u32).range(2..))]
        limit: Option<u32>,
        /// Images held out for validation, from the end [default: 10000 of an IDX file, a
        /// tenth of a folder].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        validation_images: Option<u32>,
        /// Move single-tile training images by up to N pixels each way.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=8))]
        shift: u32,
        /// Mirror single-tile training images left to right half of the time (for data
        /// whose mirror images are as likely, such as silhouettes; never characters).
        #[arg(long)]
        mirror: bool,
    },
    /// Report the model's −ELBO (and optionally IWAE NLL) on a folder of images or an
    /// IDX file.
    Eval {
        /// Folder of images, or an IDX file.
        path: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
        /// Importance samples for an IWAE NLL estimate.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
        iwae: Option<u32>,
        /// Evaluate only the first N images.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
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

fn main() -> ExitCode {
    keep_freed_memory();
    default_sigpipe();
    let cli = Cli::parse();
    match commands::run(cli.command, cli.quiet) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vlae-zip: error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
