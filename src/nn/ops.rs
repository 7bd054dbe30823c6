//! Custom CPU ops that make training practical on a small CPU.
//!
//! [`Gather`] is im2col: it turns every convolution of the model into one gather plus one
//! matmul. //! candle's native CPU conv2d trains our masked convolutions about 4× slower, its backward
//! pass going through `conv_transpose2d`; building the same columns from `pad`/`narrow`/
//! `cat` is slower still. The gather reads a [`TapTable`], so masks, strides and upsampling
//! are all just tables, and its backward is the matching scatter-add (col2im).
#![forbid(unsafe_code)]

use crate::geometry::TapTable;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// Forward op: `(B·n_in, C)` rows → `(B·n_out, taps·C + 1)` columns, the last column all
/// ones so that the following matmul adds the bias too (a separate broadcast add cost more
/// than the gather itself).
pub struct Gather(pub Arc<TapTable>);

/// Backward op: `(B·n_out, taps·C + 1)` column gradients → `(B·n_in, C)` row gradients.
struct Scatter(Arc<TapTable>);

fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<(&'a [f32], usize, usize)> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op} expects f32")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op} expects a contiguous tensor")
    };
    let (rows, cols) = layout.shape().dims2()?;
    Ok((&data[start..end], rows, cols))
}

impl CustomOp1 for Gather {
    fn name(&self) -> &'static str {
        "gather-taps"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let t = &*self.0;
        let (x, rows, c) = contiguous_f32(storage, layout, self.name())?;
        if rows % t.n_in != 0 {
            candle_core::bail!("gather: {rows} rows is not a multiple of {}", t.n_in)
        }
        let batch = rows / t.n_in;
        let width = t.taps * c + 1;
        let mut out = vec![0f32; batch * t.n_out * width];
        out.par_chunks_mut(t.n_out * width)
            .enumerate()
            .for_each(|(b, img)| {
                let xin = &x[b * t.n_in * c..(b + 1) * t.n_in * c];
                for (p, row) in img.chunks_exact_mut(width).enumerate() {
                    row[width - 1] = 1.0;
                    for (dst, &s) in row.chunks_exact_mut(c).zip(t.sources(p)) {
                        if !TapTable::is_padding(s) {
                            dst.copy_from_slice(&xin[s as usize * c..(s as usize + 1) * c]);
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((batch * t.n_out, width))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            grad_res
                .contiguous()?
                .apply_op1_no_bwd(&Scatter(self.0.clone()))?,
        ))
    }
}

impl CustomOp1 for Scatter {
    fn name(&self) -> &'static str {
        "scatter-taps"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let t = &*self.0;
        let (g, rows, width) = contiguous_f32(storage, layout, self.name())?;
        let c = (width - 1) / t.taps;
        let batch = rows / t.n_out;
        let mut out = vec![0f32; batch * t.n_in * c];
        out.par_chunks_mut(t.n_in * c)
            .enumerate()
            .for_each(|(b, img)| {
                let gin = &g[b * t.n_out * width..(b + 1) * t.n_out * width];
                for (p, row) in gin.chunks_exact(width).enumerate() {
                    for (src, &s) in row[..width - 1].chunks_exact(c).zip(t.sources(p)) {
                        if !TapTable::is_padding(s) {
                            let dst = &mut img[s as usize * c..(s as usize + 1) * c];
                            dst.iter_mut().zip(src).for_each(|(d, v)| *d += v);
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((batch * t.n_in, c))))
    }
}

/// ELU (α = 1) with a one-pass backward. candle's own `elu` backward builds masks with
/// about ten elementwise passes over the activation; here it is one, reading the output:
/// for y = elu(x), dy/dx = 1 where y > 0 and y + 1 elsewhere.
pub struct Elu;

/// The backward of [`Elu`], a function of (output, output gradient).
struct EluGrad;

impl CustomOp1 for Elu {
    fn name(&self) -> &'static str {
        "elu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, _, _) = contiguous_f32(storage, layout, self.name())?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(1 << 14)
            .zip(x.par_chunks(1 << 14))
            .for_each(|(y, x)| {
                for (y, &x) in y.iter_mut().zip(x) {
                    // exp − 1 rather than expm1: glibc's expm1f took a sixth of a training step,
                    // and training does not need its accuracy near 0.
                    *y = if x > 0.0 { x } else { x.exp() - 1.0 };
                }
            });
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            res.apply_op2_no_bwd(&grad_res.contiguous()?, &EluGrad)?,
        ))
    }
}

impl CustomOp2 for EluGrad {
    fn name(&self) -> &'static str {
        "elu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (y, _, _) = contiguous_f32(s1, l1, self.name())?;
        let (g, _, _) = contiguous_f32(s2, l2, self.name())?;
        let mut out = vec![0f32; y.len()];
        out.par_chunks_mut(1 << 14)
            .zip(y.par_chunks(1 << 14).zip(g.par_chunks(1 << 14)))
            .for_each(|(o, (y, g))| {
                for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                    *o = if y > 0.0 { g } else { g * (y + 1.0) };
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{square_taps, Resample};
    use candle_core::{Device, Var};

    /// The gather's backward must be the exact adjoint of its forward:
    /// <gather(x), g> == <x, scatter(g)> for any x, g.
    #[test]
    fn scatter_is_the_adjoint_of_gather() -> Result<()> {
        let dev = Device::Cpu;
        let table = Arc::new(TapTable::new(6, 6, Resample::Down2, &square_taps(3)));
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (2 * 36, 3), &dev)?)?;
        let cols = x.as_tensor().apply_op1(Gather(table))?;
        assert_eq!(cols.dims(), &[2 * 9, 28]);
        let ones = cols.narrow(1, 27, 1)?.flatten_all()?.to_vec1::<f32>()?;
        assert!(
            ones.iter().all(|&v| v == 1.0),
            "bias column must be all ones"
        );
        let taps = cols.narrow(1, 0, 27)?;
        let g = Tensor::randn(0f32, 1., taps.shape(), &dev)?;
        let lhs = (&taps * &g)?.sum_all()?.to_scalar::<f32>()?;
        let grads = (&taps * &g)?.sum_all()?.backward()?;
        let gx = grads.get(x.as_tensor()).expect("gradient");
        let rhs = (x.as_tensor() * gx)?.sum_all()?.to_scalar::<f32>()?;
        assert!(
            (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
        Ok(())
    }

    #[test]
    fn fused_elu_matches_candle_elu_and_its_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::new(
            &[[-3f32, -0.5, 0.0], [0.25, 2.0, -1e-3]],
            &dev,
        )?)?;
        let w = Tensor::new(&[[1f32, -2.0, 3.0], [0.5, 1.5, -1.0]], &dev)?;
        let ours = x.as_tensor().apply_op1(Elu)?;
        let theirs = x.as_tensor().elu(1.0)?;
        let diff = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6);
        let g_ours = (&ours * &w)?.sum_all()?.backward()?;
        let g_theirs = (&theirs * &w)?.sum_all()?.backward()?;
        let (a, b) = (
            g_ours.get(x.as_tensor()).unwrap(),
            g_theirs.get(x.as_tensor()).unwrap(),
        );
        assert!((a - b)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-6);
        Ok(())
    }
}
