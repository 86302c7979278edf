//! Reading device buffers back to the host: the one path `run` and `read` share.

use futures_intrusive::channel::shared::oneshot_channel;

use super::GpuContext;
use crate::error::{Error, Result};

/// A buffer to read from byte `offset` on: copied into `staging` (from [`staging`]), of which
/// `len` values are wanted.
pub struct Read<'a> {
    pub from: &'a wgpu::Buffer,
    pub offset: u64,
    pub staging: &'a wgpu::Buffer,
    pub len: usize,
}

/// A mappable buffer holding `len` f32 values (at least one), for [`Read::staging`].
pub fn staging(device: &wgpu::Device, len: usize) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("staging"),
        size: (len.max(1) * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Records the copies of `reads` into `enc` and submits it. With nothing to read it returns at
/// once, while the device works (training steps); otherwise it waits and returns the values.
pub fn submit_and_read(
    ctx: &GpuContext,
    enc: wgpu::CommandEncoder,
    reads: &[Read],
) -> Result<Vec<Vec<f64>>> {
    Ok(submit_and_read_bytes(ctx, enc, reads)?
        .iter()
        .map(|b| {
            let vals: &[f32] = bytemuck::cast_slice(b);
            super::convert(vals, f64::from)
        })
        .collect())
}

/// [`submit_and_read`] returning each read's first `4·len` bytes as they are on the device.
pub fn submit_and_read_bytes(
    ctx: &GpuContext,
    mut enc: wgpu::CommandEncoder,
    reads: &[Read],
) -> Result<Vec<Vec<u8>>> {
    for r in reads {
        enc.copy_buffer_to_buffer(r.from, r.offset, r.staging, 0, r.staging.size());
    }
    ctx.queue.submit([enc.finish()]);
    if reads.is_empty() {
        return Ok(Vec::new());
    }
    let mapped: Vec<_> = reads
        .iter()
        .map(|r| {
            let (tx, rx) = oneshot_channel();
            r.staging
                .slice(..)
                .map_async(wgpu::MapMode::Read, move |res| {
                    let _ = tx.send(res);
                });
            rx
        })
        .collect();
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Device(format!("device poll failed: {e}")))?;
    for (i, rx) in mapped.iter().enumerate() {
        pollster::block_on(rx.receive())
            .ok_or_else(|| Error::Device("readback channel closed".into()))?
            .map_err(|e| Error::Device(format!("mapping buffer {i} failed: {e}")))?;
    }
    let mut out = Vec::with_capacity(reads.len());
    for r in reads {
        {
            let view = r
                .staging
                .get_mapped_range(..)
                .map_err(|e| Error::Device(format!("reading a buffer: {e}")))?;
            out.push(view[..4 * r.len].to_vec());
        }
        r.staging.unmap();
    }
    Ok(out)
}
