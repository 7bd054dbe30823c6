//! The native half of the `vlae_zip` Python package: the library's front door
//! (`vlae_zip::{compress, decompress}`), archive facts, the built-in models, and the
//! model's −ELBO, over 2-D uint8 arrays. The Python half (`vlae_zip/__init__.py`) turns
//! what callers pass into such arrays; everything here expects 0/1 `uint8` images.
//!
//! Coding runs with the GIL released, in a rayon pool of `threads` threads when given.

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::sync::OnceLock;
use vlae_zip::container::{self, LaneCoder, ModelId};
use vlae_zip::infer::network::Network;
use vlae_zip::models::BUILT_IN;
use vlae_zip::nn::{data::TileSet, eval};
use vlae_zip::{Image, Limits, Options};

const LN2: f64 = std::f64::consts::LN_2;

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Runs `f` with the GIL released, in a pool of `threads` threads when given.
fn run_detached<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    f: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    let pool = match threads {
        None => None,
        Some(0) => return Err(value_error("threads must be at least 1")),
        Some(n) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))?,
        ),
    };
    Ok(py.detach(move || match pool {
        Some(pool) => pool.install(f),
        None => f(),
    }))
}

/// The names the command-line tool gives an IDX file's images: `00000.pbm`, `00001.pbm`,
/// …, zero-padded to at least five digits.
fn idx_names(n: usize) -> impl Iterator<Item = String> {
    let width = n.saturating_sub(1).to_string().len().max(5);
    (0..n).map(move |i| format!("{i:0width$}.pbm"))
}

/// Copies the arrays into images named as an IDX file's are.
fn images_of(arrays: &[PyReadonlyArray2<'_, u8>]) -> Vec<Image> {
    arrays
        .iter()
        .zip(idx_names(arrays.len()))
        .map(|(a, name)| {
            let shape = a.shape();
            let pixels: Vec<u8> = a.as_array().iter().copied().collect();
            Image::pbm(&name, shape[1] as u32, shape[0] as u32, pixels)
        })
        .collect()
}

/// Compresses 2-D 0/1 uint8 arrays into archive bytes, named `00000.pbm`, `00001.pbm`, …
#[pyfunction]
#[pyo3(signature = (images, model = "auto", iw = 1, threads = None, lanes = None, max_memory_bytes = None))]
fn compress<'py>(
    py: Python<'py>,
    images: Vec<PyReadonlyArray2<'py, u8>>,
    model: &str,
    iw: u32,
    threads: Option<usize>,
    lanes: Option<usize>,
    max_memory_bytes: Option<u64>,
) -> PyResult<Bound<'py, PyBytes>> {
    if !(1..=1024).contains(&iw) {
        return Err(value_error(format!("iw must be 1 to 1024, not {iw}")));
    }
    if lanes == Some(0) {
        return Err(value_error("lanes must be at least 1"));
    }
    let images = images_of(&images);
    let options = Options {
        model: model.to_string(),
        importance_samples: iw,
        lanes,
        max_memory_bytes,
    };
    let bytes = run_detached(py, threads, || vlae_zip::compress(&images, &options))?
        .map_err(value_error)?;
    Ok(PyBytes::new(py, &bytes))
}

/// Decompresses archive bytes into (name, 2-D uint8 array) pairs, in archive order, or
/// in the order of `names` when given.
#[pyfunction]
#[pyo3(signature = (data, names = None, threads = None))]
fn decompress<'py>(
    py: Python<'py>,
    data: &[u8],
    names: Option<Vec<String>>,
    threads: Option<usize>,
) -> PyResult<Vec<(String, Bound<'py, PyArray2<u8>>)>> {
    let picked: Vec<Image> = run_detached(py, threads, || match &names {
        None => vlae_zip::decompress(data, &Limits::default()),
        Some(names) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            vlae_zip::decompress_named(data, &names, &Limits::default())
        }
    })?
    .map_err(value_error)?;
    picked
        .into_iter()
        .map(|img| {
            let shape = (img.height as usize, img.width as usize);
            let arr = Array2::from_shape_vec(shape, img.pixels).map_err(value_error)?;
            Ok((img.name, arr.into_pyarray(py)))
        })
        .collect()
}

/// The built-in models' networks, built once, for naming the models an archive uses.
fn built_in_networks() -> &'static [(&'static str, Network)] {
    static NETS: OnceLock<Vec<(&'static str, Network)>> = OnceLock::new();
    NETS.get_or_init(|| {
        BUILT_IN
            .iter()
            .filter_map(|m| Some((m.name, m.network().ok()?)))
            .collect()
    })
}

/// A model id's built-in name, or the id itself.
fn model_name(id: &ModelId) -> String {
    built_in_networks()
        .iter()
        .find(|(_, net)| net.is(id))
        .map_or_else(|| id.to_string(), |(name, _)| name.to_string())
}

fn coder_name(coder: LaneCoder, models: &[ModelId]) -> String {
    match coder {
        LaneCoder::BitsBack { model, .. } => match models.get(model as usize) {
            Some(id) => format!("bits-back ({})", model_name(id)),
            None => "bits-back".into(),
        },
        other => other.info().name.into(),
    }
}

/// What an archive holds, without decoding it.
#[pyfunction]
fn info<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyDict>> {
    let arch = container::parse(data).map_err(value_error)?;
    let d = PyDict::new(py);
    let n = arch.image_count;
    d.set_item("images", n)?;
    d.set_item("lanes", arch.lanes.len())?;
    let coders: Vec<String> = arch
        .lanes
        .iter()
        .map(|l| coder_name(l.coder, &arch.models))
        .collect();
    d.set_item("coders", coders)?;
    let models: Vec<String> = arch.models.iter().map(model_name).collect();
    d.set_item("models", models)?;
    d.set_item("bytes", data.len())?;
    d.set_item("bits_per_image", data.len() as f64 * 8.0 / n.max(1) as f64)?;
    d.set_item("latent_bits", arch.latent_bits)?;
    let names: Vec<String> = arch.entries().map(|e| e.name).collect();
    d.set_item("names", names)?;
    Ok(d)
}

/// The built-in models.
#[pyfunction(name = "models")]
fn built_in_models<'py>(py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
    BUILT_IN
        .iter()
        .map(|m| {
            let net = m.network().map_err(value_error)?;
            let d = PyDict::new(py);
            d.set_item("name", m.name)?;
            d.set_item("trained_on", m.trained_on)?;
            d.set_item("tile", net.config().tile)?;
            d.set_item("parameters", net.parameters())?;
            d.set_item("auto", m.auto)?;
            Ok(d)
        })
        .collect()
}

/// The model's −ELBO in bits per image, as `vlae-zip eval --json` reports it
/// (`neg_elbo_bits_per_image`): `auto` is the first built-in model `auto` codes with.
#[pyfunction]
#[pyo3(signature = (images, model = "auto", threads = None))]
fn elbo(
    py: Python<'_>,
    images: Vec<PyReadonlyArray2<'_, u8>>,
    model: &str,
    threads: Option<usize>,
) -> PyResult<f64> {
    let source = if model == "auto" {
        BUILT_IN.iter().find(|m| m.auto)
    } else {
        vlae_zip::models::built_in(model)
    }
    .ok_or_else(|| value_error(format!("no built-in model is called {model:?}")))?;
    let images = images_of(&images);
    if let Some(img) = images.iter().find(|i| i.pixels.iter().any(|&p| p > 1)) {
        return Err(value_error(format!(
            "image {:?}: pixel values are bi-level, 0 or 1",
            img.name
        )));
    }
    let count = images.len();
    run_detached(py, threads, move || -> Result<f64, String> {
        let cfg = source.vlae_config().map_err(|e| e.to_string())?;
        let m = eval::load_model_bytes(source.weights, &cfg).map_err(|e| e.to_string())?;
        let set = TileSet::new(
            images
                .into_iter()
                .map(|i| vlae_zip::nn::data::Image {
                    width: i.width as usize,
                    height: i.height as usize,
                    pixels: i.pixels,
                })
                .collect(),
            cfg.canvas(),
        );
        if set.is_empty() {
            // Only blank tiles: the model codes nothing.
            return Ok(0.0);
        }
        let per_image = set.len() as f64 / count.max(1) as f64;
        let stats = eval::evaluate_elbo(&m, &set.grid_canvases(), cfg.latent_dim, 500)
            .map_err(|e| e.to_string())?;
        Ok(stats.neg_elbo_nats() * per_image / LN2)
    })?
    .map_err(PyRuntimeError::new_err)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(compress, m)?)?;
    m.add_function(wrap_pyfunction!(decompress, m)?)?;
    m.add_function(wrap_pyfunction!(info, m)?)?;
    m.add_function(wrap_pyfunction!(built_in_models, m)?)?;
    m.add_function(wrap_pyfunction!(elbo, m)?)?;
    Ok(())
}
