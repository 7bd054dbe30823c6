//! Training loop: Adam with exponential learning-rate decay, free bits, EMA weights for
//! evaluation, and checkpoints that survive being killed at any moment.
//!
//! A run lives in one folder: `config.json`, `checkpoint.safetensors` (weights, EMA
//! weights, Adam moments and the run state, written to a temporary name and renamed, so a
//! kill never leaves a torn checkpoint), `best.safetensors` (the EMA weights with the best
//! validation −ELBO so far) and `train.log`.
#![forbid(unsafe_code)]

use super::data::{Augment, TileSet};
use super::eval::{evaluate_elbo, normal_noise};
use super::vlae::{pixels_tensor, Vlae};
use crate::config::VlaeConfig;
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Hyper-parameters of the optimization (the architecture is in [`VlaeConfig`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainOptions {
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Epochs over which the learning rate halves.
    pub lr_half_life_epochs: f64,
    pub epochs: usize,
    /// Free bits: nats per pixel of KL below which a latent group is not penalized.
    pub free_bits_per_pixel: f64,
    /// Number of latent groups the free bits apply to.
    pub free_bits_groups: usize,
    pub ema_decay: f64,
    /// Images held out for validation (taken from the end of the set).
    pub validation_images: usize,
    pub checkpoint_secs: u64,
    pub seed: u64,
    /// How single-tile images are varied (runs before it existed had none).
    #[serde(default)]
    pub augment: Augment,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            batch_size: 64,
            learning_rate: 2e-3,
            lr_half_life_epochs: 12.0,
            epochs: 60,
            free_bits_per_pixel: 0.01,
            free_bits_groups: 4,
            ema_decay: 0.999,
            validation_images: 10_000,
            checkpoint_secs: 240,
            seed: 1,
            augment: Augment::default(),
        }
    }
}

/// Where a run stands; saved inside every checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct RunState {
    epoch: usize,
    /// Next batch within the epoch's permutation.
    batch: usize,
    step: u64,
    best_valid_nats: Option<f64>,
    train_secs: f64,
}

const CHECKPOINT: &str = "checkpoint.safetensors";
const STATE_KEY: &str = "run_state_json";

/// Adam's per-variable moments.
struct Adam {
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

struct Trainer {
    names: Vec<String>,
    vars: Vec<Var>,
    ema: Vec<Tensor>,
    adam: Adam,
    state: RunState,
}

impl Trainer {
    fn snapshot(&self) -> Result<HashMap<String, Tensor>> {
        let mut map = HashMap::new();
        for (i, name) in self.names.iter().enumerate() {
            map.insert(format!("param.{name}"), self.vars[i].as_tensor().clone());
            map.insert(format!("ema.{name}"), self.ema[i].clone());
            map.insert(format!("adam_m.{name}"), self.adam.m[i].clone());
            map.insert(format!("adam_v.{name}"), self.adam.v[i].clone());
        }
        let json = serde_json::to_vec(&self.state).expect("state serializes");
        map.insert(
            STATE_KEY.into(),
            Tensor::from_vec(json.clone(), json.len(), &Device::Cpu)?,
        );
        Ok(map)
    }

    fn restore(&mut self, path: &Path) -> Result<()> {
        let map = candle_core::safetensors::load(path, &Device::Cpu)?;
        let get = |k: String| {
            map.get(&k)
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg(format!("checkpoint lacks {k}")))
        };
        for (i, name) in self.names.iter().enumerate() {
            self.vars[i].set(&get(format!("param.{name}"))?)?;
            self.ema[i] = get(format!("ema.{name}"))?;
            self.adam.m[i] = get(format!("adam_m.{name}"))?;
            self.adam.v[i] = get(format!("adam_v.{name}"))?;
        }
        let json = get(STATE_KEY.into())?.to_vec1::<u8>()?;
        self.state =
            serde_json::from_slice(&json).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        Ok(())
    }

    fn ema_model(&self, cfg: &VlaeConfig) -> Result<(Vlae, HashMap<String, Tensor>)> {
        let map: HashMap<_, _> = self
            .names
            .iter()
            .cloned()
            .zip(self.ema.iter().cloned())
            .collect();
        let model = Vlae::new(
            VarBuilder::from_tensors(map.clone(), DType::F32, &Device::Cpu),
            cfg,
        )?;
        Ok((model, map))
    }
}

/// Writes tensors to `path` through a temporary file and a rename.
fn save_atomic(map: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let tmp = path.with_extension("tmp");
    candle_core::safetensors::save(map, &tmp)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// How one invocation of [`train`] runs, beyond the run's own options.
#[derive(Default)]
pub struct Invocation {
    /// Continue the run from its checkpoint.
    pub resume: bool,
    /// No progress bar; the log still gets every line.
    pub quiet: bool,
    /// Weights to start a new run from (fine-tuning), by name.
    pub init: Option<HashMap<String, Tensor>>,
    /// Stop after this much training time, validating and keeping the best weights.
    pub minutes: Option<f64>,
}

/// Trains on the tiles of `train_set`, validating on those of `valid_set`, in `run_dir`.
/// Logs to `run_dir/train.log` and shows a progress bar unless quiet. Returns the path
/// of the best weights so far.
// Longer than 80 lines: the epoch loop logs, checkpoints and stops on time between
// batches, from state the loop itself holds.
pub fn train(
    train_set: &TileSet,
    valid_set: &TileSet,
    cfg: &VlaeConfig,
    opts: &TrainOptions,
    run_dir: &Path,
    how: Invocation,
) -> Result<PathBuf> {
    let Invocation {
        resume,
        quiet,
        init,
        minutes,
    } = how;
    let started = Instant::now();
    let ckpt_path = prepare_run_dir(run_dir, cfg, opts, resume)?;

    let pixels = cfg.tile_pixels();
    let n_train = train_set.len();
    if n_train < opts.batch_size || valid_set.is_empty() {
        candle_core::bail!(
            "too few tiles with ink and paper: {n_train} to train on (at least a batch of {} needed), {} to validate on",
            opts.batch_size,
            valid_set.len()
        )
    }
    let valid_canvases = valid_set.grid_canvases();

    let varmap = VarMap::new();
    let model = Vlae::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        cfg,
    )?;
    let mut tr = Trainer::new(&varmap)?;
    if resume && ckpt_path.exists() {
        tr.restore(&ckpt_path)?;
    } else if let Some(init) = init {
        tr.start_from(&init)?;
    }
    let params: usize = tr.vars.iter().map(|v| v.elem_count()).sum();

    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run_dir.join("train.log"))?;
    let mut say = |line: String| -> Result<()> {
        writeln!(log, "{line}")?;
        log.flush()?;
        if quiet {
            Ok(())
        } else {
            eprintln!("{line}");
            Ok(())
        }
    };
    say(format!(
        "start: {} parameters, {n_train} training tiles from {} images / {} validation tiles from {} images, epoch {} batch {} step {}",
        params, train_set.images(), valid_set.len(), valid_set.images(), tr.state.epoch, tr.state.batch, tr.state.step
    ))?;

    let batches = n_train / opts.batch_size;
    let group = cfg.latent_dim / opts.free_bits_groups.max(1);
    let free_nats = opts.free_bits_per_pixel * pixels as f64 / opts.free_bits_groups.max(1) as f64;
    let mut last_ckpt = Instant::now();
    let out_of_time = || minutes.is_some_and(|m| started.elapsed().as_secs_f64() >= m * 60.0);
    'epochs: while tr.state.epoch < opts.epochs {
        let mut order: Vec<usize> = (0..n_train).collect();
        order.shuffle(&mut StdRng::seed_from_u64(
            opts.seed ^ (tr.state.epoch as u64) << 20,
        ));
        let bar = epoch_bar(quiet, batches, &tr.state);
        let (mut sum_loss, mut sum_kl, mut seen) = (0f64, 0f64, 0usize);
        let epoch_start = Instant::now();
        while tr.state.batch < batches {
            let t0 = Instant::now();
            let idx =
                &order[tr.state.batch * opts.batch_size..(tr.state.batch + 1) * opts.batch_size];
            let (loss, neg_elbo, kl) = batch_loss(
                &model,
                train_set,
                idx,
                opts,
                tr.state.step,
                cfg.latent_dim,
                (group, free_nats),
            )?;
            if !neg_elbo.is_finite() {
                say(format!(
                    "step {}: non-finite loss, batch skipped",
                    tr.state.step
                ))?;
            } else {
                let grads = loss.backward()?;
                let epoch_f = tr.state.epoch as f64 + tr.state.batch as f64 / batches as f64;
                let lr = opts.learning_rate * 0.5f64.powf(epoch_f / opts.lr_half_life_epochs);
                adam_step(&mut tr, &grads, lr, opts.ema_decay)?;
                sum_loss += neg_elbo;
                sum_kl += kl;
                seen += 1;
            }
            tr.state.step += 1;
            tr.state.batch += 1;
            tr.state.train_secs += t0.elapsed().as_secs_f64();
            bar.inc(1);
            if tr.state.batch % 20 == 0 {
                bar.set_message(format!(
                    "-elbo {:.2} nats, kl {:.2} bits",
                    sum_loss / seen.max(1) as f64,
                    sum_kl / seen.max(1) as f64 / std::f64::consts::LN_2
                ));
            }
            if out_of_time() {
                bar.finish_and_clear();
                let (v, kl, improved) = validate(&mut tr, cfg, &valid_canvases, run_dir)?;
                save_atomic(&tr.snapshot()?, &ckpt_path)?;
                say(format!(
                    "time budget reached: epoch {} batch {}/{batches} step {} | valid (ema) -elbo {:.3} nats = {:.2} bits, kl {:.2} bits{} | {:.1} h trained",
                    tr.state.epoch, tr.state.batch, tr.state.step, v, v / std::f64::consts::LN_2,
                    kl / std::f64::consts::LN_2, if improved { " (best)" } else { "" },
                    tr.state.train_secs / 3600.0
                ))?;
                break 'epochs;
            }
            if last_ckpt.elapsed().as_secs() >= opts.checkpoint_secs {
                save_atomic(&tr.snapshot()?, &ckpt_path)?;
                last_ckpt = Instant::now();
                say(format!(
                    "checkpoint: epoch {} batch {}/{batches} step {} train -elbo {:.3} nats ({:.2} bits), kl {:.2} bits",
                    tr.state.epoch, tr.state.batch, tr.state.step,
                    sum_loss / seen.max(1) as f64, sum_loss / seen.max(1) as f64 / std::f64::consts::LN_2,
                    sum_kl / seen.max(1) as f64 / std::f64::consts::LN_2
                ))?;
            }
        }
        bar.finish_and_clear();
        let rate = (seen * opts.batch_size) as f64 / epoch_start.elapsed().as_secs_f64();
        let (v, valid_kl, improved) = validate(&mut tr, cfg, &valid_canvases, run_dir)?;
        say(format!(
            "epoch {} done: train -elbo {:.3} nats, kl {:.2} bits | valid (ema) -elbo {:.3} nats = {:.2} bits, kl {:.2} bits{} | {:.0} tiles/s, {:.1} h trained",
            tr.state.epoch,
            sum_loss / seen.max(1) as f64,
            sum_kl / seen.max(1) as f64 / std::f64::consts::LN_2,
            v,
            v / std::f64::consts::LN_2,
            valid_kl / std::f64::consts::LN_2,
            if improved { " (best)" } else { "" },
            rate,
            tr.state.train_secs / 3600.0
        ))?;
        tr.state.epoch += 1;
        tr.state.batch = 0;
        save_atomic(&tr.snapshot()?, &ckpt_path)?;
        last_ckpt = Instant::now();
    }
    Ok(run_dir.join("best.safetensors"))
}

/// Seeds the generator that jitters tile positions, mixed with the run's seed and step.
const JITTER_SEED: u64 = 0x6a09_e667_f3bc_c908;

/// Validates the EMA weights on `canvases`, keeping them as `best.safetensors` when they
/// Makes the run folder, refusing to overwrite a run unless resuming one of the same
/// config, and records the config and options; returns the checkpoint's path.
fn prepare_run_dir(
    run_dir: &Path,
    cfg: &VlaeConfig,
    opts: &TrainOptions,
    resume: bool,
) -> Result<PathBuf> {
    std::fs::create_dir_all(run_dir)?;
    let ckpt_path = run_dir.join(CHECKPOINT);
    if resume {
        let saved = VlaeConfig::load(&run_dir.join("config.json"))
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        if &saved != cfg {
            candle_core::bail!("{} was trained with a different config", run_dir.display())
        }
    } else if ckpt_path.exists() {
        candle_core::bail!(
            "{} already holds a run: pass --resume to continue it",
            run_dir.display()
        )
    }
    std::fs::write(run_dir.join("config.json"), cfg.to_json())?;
    std::fs::write(
        run_dir.join("options.json"),
        serde_json::to_string_pretty(opts).expect("options serialize"),
    )?;
    Ok(ckpt_path)
}

impl Trainer {
    /// The variables of `varmap`, sorted by name, with their EMA and zero Adam moments.
    fn new(varmap: &VarMap) -> Result<Self> {
        let mut named: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .expect("varmap lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, vars): (Vec<_>, Vec<_>) = named.into_iter().unzip();
        let zeros = |v: &Var| v.as_tensor().detach().zeros_like();
        Ok(Trainer {
            ema: vars
                .iter()
                .map(|v| v.as_tensor().detach().copy())
                .collect::<Result<_>>()?,
            adam: Adam {
                m: vars.iter().map(zeros).collect::<Result<_>>()?,
                v: vars.iter().map(zeros).collect::<Result<_>>()?,
            },
            names,
            vars,
            state: RunState::default(),
        })
    }

    /// Sets every variable, and its EMA, to `init`'s tensor of the same name.
    fn start_from(&mut self, init: &HashMap<String, Tensor>) -> Result<()> {
        for (i, name) in self.names.iter().enumerate() {
            let t = init.get(name).ok_or_else(|| {
                candle_core::Error::Msg(format!("the initial model lacks {name}"))
            })?;
            self.vars[i].set(t)?;
            self.ema[i] = t.clone();
        }
        Ok(())
    }
}

/// An epoch's progress bar, hidden when quiet.
fn epoch_bar(quiet: bool, batches: usize, state: &RunState) -> indicatif::ProgressBar {
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(batches as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    bar.set_prefix(state.epoch.to_string());
    bar.set_position(state.batch as u64);
    bar
}

/// The loss of the batch of tiles `idx` at step `step` (its jitter and noise seeded by the
/// step, so a resumed run draws what the uninterrupted one would), with its −ELBO and KL
/// in nats. `(group, free_nats)`: the latent groups' size and their free nats.
fn batch_loss(
    model: &Vlae,
    train_set: &TileSet,
    idx: &[usize],
    opts: &TrainOptions,
    step: u64,
    latent_dim: usize,
    (group, free_nats): (usize, f64),
) -> Result<(Tensor, f64, f64)> {
    let mut batch = Vec::with_capacity(idx.len() * model.sample_pixels());
    let mut jitter = StdRng::seed_from_u64(opts.seed ^ JITTER_SEED ^ step);
    for &i in idx {
        train_set.push_canvas(i, Some((&mut jitter, opts.augment)), &mut batch);
    }
    let mut rng = StdRng::seed_from_u64(opts.seed.wrapping_mul(0x9e37_79b9).wrapping_add(step));
    let noise = normal_noise(&mut rng, idx.len(), latent_dim)?;
    let terms = model.elbo_terms(&pixels_tensor(&batch, &Device::Cpu)?, &noise)?;
    let recon = terms.recon.mean_all()?;
    let kl_groups = terms
        .kl_per_dim
        .mean(0)?
        .reshape((latent_dim / group, group))?
        .sum(1)?;
    let loss = (&recon + kl_groups.maximum(free_nats)?.sum_all()?)?;
    let kl = kl_groups.sum_all()?.to_scalar::<f32>()? as f64;
    let neg_elbo = recon.to_scalar::<f32>()? as f64 + kl;
    Ok((loss, neg_elbo, kl))
}

/// beat every validation so far: (−ELBO, KL) in nats per tile, and whether they did.
fn validate(
    tr: &mut Trainer,
    cfg: &VlaeConfig,
    canvases: &[u8],
    run_dir: &Path,
) -> Result<(f64, f64, bool)> {
    let (ema_model, ema_map) = tr.ema_model(cfg)?;
    let valid = evaluate_elbo(&ema_model, canvases, cfg.latent_dim, 500)?;
    let v = valid.neg_elbo_nats();
    let improved = tr.state.best_valid_nats.is_none_or(|b| v < b);
    if improved {
        tr.state.best_valid_nats = Some(v);
        save_atomic(&ema_map, &run_dir.join("best.safetensors"))?;
    }
    Ok((v, valid.kl_nats, improved))
}

/// One Adam step (β = 0.9, 0.999) on every variable, then the EMA (Polyak) update.
fn adam_step(
    tr: &mut Trainer,
    grads: &candle_core::backprop::GradStore,
    lr: f64,
    ema_decay: f64,
) -> Result<()> {
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
    let t = tr.state.step as i32 + 1;
    let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
    // Warm-up: early on, average over the steps taken so far rather than the decay horizon.
    let ema_decay = ema_decay.min((1.0 + t as f64) / (10.0 + t as f64));
    for i in 0..tr.vars.len() {
        // A factorized decoder (first_kernel 1) has an input layer with no taps: nothing
        // to update, and candle refuses to set an empty variable.
        if tr.vars[i].elem_count() == 0 {
            continue;
        }
        let Some(g) = grads.get(tr.vars[i].as_tensor()) else {
            continue;
        };
        // Optimizer state must not keep op graphs: a gradient's graph would hold the whole
        // step's activations alive, and chaining them leaks a step's memory per step.
        let (g, w) = (g.detach(), tr.vars[i].as_tensor().detach());
        let m = ((&tr.adam.m[i] * b1)? + (&g * (1.0 - b1))?)?;
        let v = ((&tr.adam.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
        let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + eps)?)?;
        tr.vars[i].set(&(&w - (update * lr)?)?)?;
        tr.ema[i] =
            ((&tr.ema[i] * ema_decay)? + (tr.vars[i].as_tensor().detach() * (1.0 - ema_decay))?)?;
        tr.adam.m[i] = m;
        tr.adam.v[i] = v;
    }
    Ok(())
}
