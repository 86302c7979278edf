//! Per-kernel GPU timing (`mnfn bench --profile`): timestamp queries around each dispatch where
//! the adapter has them, else the host's clock around one submission per dispatch.

use std::time::Instant;

use super::Gpu;
use crate::error::{Error, Result};
use crate::plan::Plan;

/// Time spent in one kernel family over a plan's run.
#[derive(Clone, Debug, PartialEq)]
pub struct OpProfile {
    /// The kernel (shader file stem); GEMMs as `gemm`, `gemm_at` or `gemm_bt` by which operand
    /// is stored transposed (the backward pass's products).
    pub family: &'static str,
    /// Dispatches of this kernel in the plan.
    pub dispatches: usize,
    /// Seconds per run (the fastest of the repetitions, per dispatch).
    pub seconds: f64,
    /// Floating-point operations per run (GEMMs only).
    pub flops: f64,
    /// Bytes of the storage buffers bound, per run.
    pub bytes: f64,
}

/// One dispatch's time (`Profile::slowest`).
#[derive(Clone, Debug, PartialEq)]
pub struct DispatchTime {
    /// Position in the plan's dispatches.
    pub index: usize,
    /// Kernel family, as in [`OpProfile::family`].
    pub family: &'static str,
    /// A GEMM's shape, `m×k×n` (and its k chunks when split); None for the other kernels.
    pub shape: Option<String>,
    /// Seconds per run (the fastest of the repetitions).
    pub seconds: f64,
    /// Floating-point operations (GEMMs only).
    pub flops: f64,
    /// Bytes of the storage buffers bound.
    pub bytes: f64,
}

impl std::fmt::Display for DispatchTime {
    /// `#index family[ shape]: ms, rate`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} {}", self.index, self.family)?;
        if let Some(shape) = &self.shape {
            write!(f, " {shape}")?;
        }
        let rate = rate(self.flops, self.bytes, self.seconds);
        write!(f, ": {:.4} ms, {rate}", self.seconds * 1e3)
    }
}

/// Dispatches [`Profile::slowest`] keeps.
pub const SLOWEST: usize = 5;

/// A plan's time by kernel family, slowest first, and its slowest dispatches.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// How the time was taken.
    pub method: &'static str,
    /// Per kernel family.
    pub ops: Vec<OpProfile>,
    /// The [`SLOWEST`] slowest dispatches, slowest first: where tuning pays (a GEMM shape its
    /// tiles fit badly, a sum on too few workgroups).
    pub slowest: Vec<DispatchTime>,
}

/// GFLOP/s where there are FLOPs (GEMMs), else GB/s of the bound buffers.
fn rate(flops: f64, bytes: f64, seconds: f64) -> String {
    if flops > 0.0 {
        format!("{:.1} GFLOP/s", flops / seconds.max(1e-12) / 1e9)
    } else {
        format!("{:.1} GB/s", bytes / seconds.max(1e-12) / 1e9)
    }
}

impl Profile {
    /// A text table: family, dispatches, ms, share, GFLOP/s (GEMM) or GB/s (the others); then
    /// the slowest dispatches, one per line.
    pub fn table(&self) -> String {
        let total: f64 = self.ops.iter().map(|o| o.seconds).sum();
        let mut s = format!(
            "{:<16} {:>10} {:>10} {:>7} {:>12}\n",
            "kernel", "dispatches", "ms", "share", "rate"
        );
        for o in &self.ops {
            s += &format!(
                "{:<16} {:>10} {:>10.3} {:>6.1}% {:>12}\n",
                o.family,
                o.dispatches,
                o.seconds * 1e3,
                100.0 * o.seconds / total.max(1e-12),
                rate(o.flops, o.bytes, o.seconds)
            );
        }
        s += &format!("total {:.3} ms ({})\n", total * 1e3, self.method);
        s += "slowest dispatches:\n";
        for d in &self.slowest {
            s += &format!("  {d}\n");
        }
        s
    }
}

impl Gpu {
    /// Runs `plan` on `inputs` `reps` times (after one warm-up run) timing every dispatch, and
    /// sums the fastest time of each dispatch per kernel family.
    pub fn profile(&self, plan: &Plan, inputs: &[Vec<f64>], reps: usize) -> Result<Profile> {
        let prep = self.upload(plan, inputs)?;
        let n = prep.dispatches.len();
        let timestamps = self
            .ctx
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY);
        let mut best = vec![f64::INFINITY; n];
        for rep in 0..=reps.max(1) {
            let times = if timestamps {
                self.timestamped(&prep.dispatches)?
            } else {
                self.host_timed(&prep.dispatches)?
            };
            if rep > 0 {
                best.iter_mut()
                    .zip(&times)
                    .for_each(|(b, t)| *b = b.min(*t));
            }
        }
        let mut ops: Vec<OpProfile> = Vec::new();
        let mut each = Vec::with_capacity(n);
        for (i, (d, t)) in prep.dispatches.iter().zip(best).enumerate() {
            let time = DispatchTime {
                index: i,
                family: d.family,
                shape: d.shape.clone(),
                seconds: t,
                flops: d.flops,
                bytes: d.bytes,
            };
            log::debug!("dispatch {time}, workgroups {:?}", d.groups);
            let slot = match ops.iter().position(|o| o.family == d.family) {
                Some(slot) => slot,
                None => {
                    ops.push(OpProfile {
                        family: d.family,
                        dispatches: 0,
                        seconds: 0.0,
                        flops: 0.0,
                        bytes: 0.0,
                    });
                    ops.len() - 1
                }
            };
            let o = &mut ops[slot];
            o.dispatches += 1;
            o.seconds += t;
            o.flops += d.flops;
            o.bytes += d.bytes;
            each.push(time);
        }
        ops.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        each.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        each.truncate(SLOWEST);
        Ok(Profile {
            method: if timestamps {
                "GPU timestamp queries, one compute pass per dispatch"
            } else {
                "host clock, one submission per dispatch (no timestamp queries on this adapter)"
            },
            ops,
            slowest: each,
        })
    }

    /// Seconds of each dispatch from timestamps written at the start and end of its own pass.
    fn timestamped(&self, dispatches: &[super::Dispatch]) -> Result<Vec<f64>> {
        let dev = &self.ctx.device;
        let count = u32::try_from(2 * dispatches.len())
            .map_err(|_| Error::Device("too many dispatches to profile".into()))?;
        let set = dev.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("profile"),
            ty: wgpu::QueryType::Timestamp,
            count: count.max(2),
        });
        let bytes = 8 * u64::from(count.max(2));
        let resolved = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile timestamps"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = super::readback::staging(dev, (bytes / 4) as usize);
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("profile"),
        });
        for (i, d) in dispatches.iter().enumerate() {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("profiled dispatch"),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &set,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                }),
            });
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.bind_group, &[]);
            pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
        }
        enc.resolve_query_set(&set, 0..count, &resolved, 0);
        let read = super::readback::Read {
            from: &resolved,
            offset: 0,
            staging: &staging,
            len: (bytes / 4) as usize,
        };
        let raw = super::readback::submit_and_read_bytes(&self.ctx, enc, &[read])?;
        let period = f64::from(self.ctx.queue.get_timestamp_period()) * 1e-9;
        let ticks: Vec<u64> = raw[0]
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .collect();
        Ok(ticks
            .chunks_exact(2)
            .map(|t| t[1].saturating_sub(t[0]) as f64 * period)
            .collect())
    }

    /// Seconds of each dispatch submitted alone and waited for.
    fn host_timed(&self, dispatches: &[super::Dispatch]) -> Result<Vec<f64>> {
        let dev = &self.ctx.device;
        dispatches
            .iter()
            .map(|d| {
                let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("profile"),
                });
                {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("profiled dispatch"),
                        timestamp_writes: None,
                    });
                    pass.set_pipeline(&d.pipeline);
                    pass.set_bind_group(0, &d.bind_group, &[]);
                    pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
                }
                let t0 = Instant::now();
                self.ctx.queue.submit([enc.finish()]);
                dev.poll(wgpu::PollType::wait_indefinitely())
                    .map_err(|e| Error::Device(format!("device poll failed: {e}")))?;
                Ok(t0.elapsed().as_secs_f64())
            })
            .collect()
    }
}
