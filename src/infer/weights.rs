//! Loading model weights for the coder: named f32 arrays parsed from safetensors bytes
//! (a file's, or bytes compiled into the binary), checked against the shapes the
//! architecture implies, and the model's fingerprints, which archives record so that
//! decoding with another model fails clearly.
//!
//! Files are read, not memory-mapped: every value is converted to an aligned f32 array
//! anyway, so a mapping would save nothing and would turn a concurrent truncation of the
//! file into a SIGBUS.
#![forbid(unsafe_code)]

use crate::config::{ConfigError, VlaeConfig};
use crate::container::ModelId;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// A model's full fingerprint: SHA-256 over its canonical config and tensors
/// (format-spec.md §1.3). Archives store its first 8 bytes.
pub type Fingerprint = [u8; 32];

/// Prefix hashed before a fingerprint's fields (format-spec.md §1.3).
const FINGERPRINT_DOMAIN: &[u8] = b"vlae-zip model v2\0";

/// Bytes as lowercase hex, as `vlae-zip info` and errors print them.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    fingerprint: Fingerprint,
}

impl Weights {
    /// Reads `path` and fingerprints it together with `cfg`.
    pub fn load(path: &Path, cfg: &VlaeConfig) -> Result<Self, ModelError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|reason| ModelError::Io {
            path: name.clone(),
            reason,
        })?;
        Self::from_bytes(&bytes, &name, cfg)
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
        // Both fingerprints hash every tensor's name, shape and little-endian data in name
        // order, so re-saving the same weights keeps them; they differ in how the config
        // is encoded.
        let hash = |config: &[u8]| {
            let mut h = Sha256::new();
            h.update(config);
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
            <[u8; 32]>::from(h.finalize())
        };
        let fingerprint = hash(&[FINGERPRINT_DOMAIN, &cfg.canonical_bytes()].concat());
        Ok(Weights {
            tensors,
            path: name.into(),
            fingerprint,
        })
    }

    /// The model fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The id archives record for this model: its fingerprint's first 8 bytes.
    pub fn id(&self) -> ModelId {
        ModelId(self.fingerprint[..8].try_into().expect("8 bytes"))
    }

    /// The number of values in all tensors.
    pub fn parameters(&self) -> usize {
        self.tensors.values().map(|(_, v)| v.len()).sum()
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
