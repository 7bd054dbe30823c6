//! Loading model weights for the coder: named f32 arrays read from the safetensors file
//! (memory-mapped), checked against the shapes the config implies, and the model's
//! fingerprint, which archives record so that decoding with another model fails clearly.

use crate::config::{ConfigError, VlaeConfig};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// Bytes of the model fingerprint stored in archives.
pub const FINGERPRINT_LEN: usize = 16;

/// A fingerprint as lowercase hex, as `vlae-zip info` and errors print it.
pub fn fingerprint_hex(f: &[u8; FINGERPRINT_LEN]) -> String {
    f.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model {path}: {reason}")]
    Io {
        path: String,
        reason: std::io::Error,
    },
    #[error("model {path} is not a valid safetensors file: {reason}")]
    Format { path: String, reason: String },
    #[error("model {path}: tensor {name} {problem}")]
    Tensor {
        path: String,
        name: String,
        problem: String,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// All tensors of a model as f32 arrays, by name.
pub struct Weights {
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    path: String,
    fingerprint: [u8; FINGERPRINT_LEN],
}

impl Weights {
    /// Loads `path` and fingerprints it together with `cfg`.
    pub fn load(path: &Path, cfg: &VlaeConfig) -> Result<Self, ModelError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|reason| ModelError::Io {
            path: name.clone(),
            reason,
        })?;
        // SAFETY: the mapping is read-only and lives only inside this function; a file
        // truncated underneath us would fault, which is the accepted memmap2 trade-off.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|reason| ModelError::Io {
            path: name.clone(),
            reason,
        })?;
        Self::from_bytes(&map, &name, cfg)
    }

    /// Parses safetensors bytes; `name` is used in errors.
    pub fn from_bytes(bytes: &[u8], name: &str, cfg: &VlaeConfig) -> Result<Self, ModelError> {
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| ModelError::Format {
            path: name.into(),
            reason: e.to_string(),
        })?;
        let mut tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)> = BTreeMap::new();
        for (tname, view) in st.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(ModelError::Tensor {
                    path: name.into(),
                    name: tname,
                    problem: format!("has dtype {:?}, expected F32", view.dtype()),
                });
            }
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            tensors.insert(tname, (view.shape().to_vec(), data));
        }
        // Fingerprint: config JSON, then every tensor's name, shape and little-endian data
        // in name order, so re-saving the same weights keeps the fingerprint.
        let mut h = Sha256::new();
        h.update(cfg.to_json().as_bytes());
        for (tname, (shape, data)) in &tensors {
            h.update((tname.len() as u64).to_le_bytes());
            h.update(tname.as_bytes());
            for &d in shape {
                h.update((d as u64).to_le_bytes());
            }
            for v in data {
                h.update(v.to_le_bytes());
            }
        }
        let mut fingerprint = [0u8; FINGERPRINT_LEN];
        fingerprint.copy_from_slice(&h.finalize()[..FINGERPRINT_LEN]);
        Ok(Weights {
            tensors,
            path: name.into(),
            fingerprint,
        })
    }

    /// The model fingerprint.
    pub fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        self.fingerprint
    }

    /// The tensor `name`, checked to have `shape`.
    pub fn take(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let err = |problem: String| ModelError::Tensor {
            path: self.path.clone(),
            name: name.into(),
            problem,
        };
        let (s, data) = self
            .tensors
            .get(name)
            .ok_or_else(|| err("is missing".into()))?;
        if s != shape {
            return Err(err(format!(
                "has shape {s:?}, the config implies {shape:?}"
            )));
        }
        Ok(data.clone())
    }
}
