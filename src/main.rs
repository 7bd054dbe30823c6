//! The `vlae-zip` command line: a thin face over the library.

mod commands;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Model weights (safetensors).
    #[arg(long, default_value = "models/vlae-mnist.safetensors")]
    pub model: PathBuf,
    /// Model config (JSON); defaults to the weights' path with a .json extension.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// How to code.
#[derive(Args, Clone)]
pub struct CodingArgs {
    /// Independent bits-back chains; default: one per 1,000 images (whole groups of 4
    /// from 4,000 images on), at most 64.
    #[arg(long)]
    pub lanes: Option<usize>,
    /// log2 of the number of buckets each latent dimension is discretized into.
    #[arg(long, default_value_t = vlae_zip::archive::DEFAULT_LATENT_BITS, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub latent_bits: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Compress every .pbm and .png image under DIR into one archive.
    Compress {
        /// Folder of images (searched recursively).
        dir: PathBuf,
        /// Archive to write.
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
        /// Archive to read.
        archive: PathBuf,
        /// Folder to create.
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
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
        #[arg(long)]
        iwae: Option<usize>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        coding: CodingArgs,
    },
    /// Write the images of an IDX file as numbered PBM files.
    Extract {
        /// IDX file (optionally gzipped).
        idx: PathBuf,
        /// Folder to create.
        #[arg(short, long)]
        output: PathBuf,
        /// Only the first N images.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Train a model on an IDX file of binary images.
    Train {
        /// Training images (IDX3, optionally gzipped).
        #[arg(
            long,
            default_value = "corpus/binarized-mnist/train-images.idx3-ubyte.gz"
        )]
        data: PathBuf,
        /// Model config (JSON).
        #[arg(long, default_value = "models/vlae-mnist.json")]
        config: PathBuf,
        /// Run folder for checkpoints and the log.
        #[arg(long, default_value = "runs/vlae-mnist")]
        run: PathBuf,
        /// Continue the run in --run from its last checkpoint.
        #[arg(long)]
        resume: bool,
        #[arg(long)]
        epochs: Option<usize>,
        #[arg(long)]
        batch_size: Option<usize>,
        #[arg(long)]
        learning_rate: Option<f64>,
        /// Train on only the first N images (for smoke tests).
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        validation_images: Option<usize>,
    },
    /// Report the model's −ELBO (and optionally IWAE NLL) on a folder of images or an
    /// IDX file.
    Eval {
        /// Folder of images, or an IDX file.
        path: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
        /// Importance samples for an IWAE NLL estimate.
        #[arg(long)]
        iwae: Option<usize>,
        /// Evaluate only the first N images.
        #[arg(long)]
        limit: Option<usize>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
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
