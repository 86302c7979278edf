//! The device buffers of a compiled plan and where each of its buffer ids lives: its own device
//! buffer, or a member's offset in one of the optimizer's arenas (`arena::Arena`). Every
//! binding, upload and readback goes through here, so an id's offset is applied everywhere.

use wgpu::util::DeviceExt;

use super::arena::{self, Arena};
use super::readback::Read;
use super::{buffer_bytes, to_f32};
use crate::plan::{BufId, BufKind, Plan};

/// Where one id lives: a device buffer, at a byte offset, of `size` bytes.
#[derive(Clone, Copy)]
struct Slot {
    buffer: usize,
    offset: u64,
    size: u64,
}

/// Device buffers and, by id (the plan's buffers, then whatever the backend adds: the spare
/// binding, partial sums, the whole arenas), their slots.
pub struct Memory {
    device: wgpu::Device,
    buffers: Vec<wgpu::Buffer>,
    slots: Vec<Slot>,
}

/// Every buffer is a storage buffer that can be written and copied from.
const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

impl Memory {
    /// The plan's buffers, parameters filled and the rest zeroed: arena members at their
    /// offsets in the four arenas (device buffers 0 to 3), every other buffer its own.
    pub fn allocate(device: &wgpu::Device, plan: &Plan, arena: Option<&Arena>) -> Self {
        let mut mem = Memory {
            device: device.clone(),
            buffers: Vec::new(),
            slots: Vec::with_capacity(plan.bufs.len()),
        };
        let mut place = vec![None; plan.bufs.len()];
        if let Some(a) = arena {
            let mut values = vec![vec![0.0; a.len]; arena::ROLES];
            for &(id, role, at) in &a.members {
                place[id] = Some((role, at));
                if let BufKind::Param(v) = &plan.bufs[id].kind {
                    values[role][at..at + v.len()].copy_from_slice(&to_f32(v));
                }
            }
            for v in values {
                let buffer = mem.filled(v);
                mem.buffers.push(buffer);
            }
        }
        for (d, place) in plan.bufs.iter().zip(place) {
            match (place, &d.kind) {
                (Some((role, at)), _) => mem.slots.push(Slot {
                    buffer: role,
                    offset: 4 * at as u64,
                    size: buffer_bytes(d.len),
                }),
                (None, BufKind::Param(v)) => {
                    let mut data = to_f32(v);
                    data.resize(buffer_bytes(d.len) as usize / 4, 0.0);
                    let buffer = mem.filled(data);
                    mem.push(buffer);
                }
                (None, _) => {
                    let buffer = mem.empty("plan buffer", d.len);
                    mem.push(buffer);
                }
            }
        }
        mem
    }

    fn filled(&self, data: Vec<f32>) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytemuck::cast_slice(&data),
                usage: USAGE,
            })
    }

    fn empty(&self, label: &str, len: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: buffer_bytes(len),
            usage: USAGE,
            mapped_at_creation: false,
        })
    }

    /// Adds a whole device buffer as the next id.
    fn push(&mut self, buffer: wgpu::Buffer) -> BufId {
        self.slots.push(Slot {
            buffer: self.buffers.len(),
            offset: 0,
            size: buffer.size(),
        });
        self.buffers.push(buffer);
        self.slots.len() - 1
    }

    /// A new zeroed buffer of `len` values as the next id.
    pub fn scratch(&mut self, label: &str, len: usize) -> BufId {
        let buffer = self.empty(label, len);
        self.push(buffer)
    }

    /// Ids for the four whole arenas of `a`, in role order; returns the first.
    pub fn arenas(&mut self, a: &Arena) -> BufId {
        let first = self.slots.len();
        for role in 0..arena::ROLES {
            self.slots.push(Slot {
                buffer: role,
                offset: 0,
                size: buffer_bytes(a.len),
            });
        }
        first
    }

    /// Ids so far.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The device buffer id `id` lives in (ids sharing one share an arena).
    pub fn home(&self, id: BufId) -> usize {
        self.slots[id].buffer
    }

    /// Bytes bound for id `id`.
    pub fn size(&self, id: BufId) -> u64 {
        self.slots[id].size
    }

    /// Id `id` as a binding.
    pub fn binding(&self, id: BufId) -> wgpu::BufferBinding<'_> {
        let s = self.slots[id];
        wgpu::BufferBinding {
            buffer: &self.buffers[s.buffer],
            offset: s.offset,
            size: std::num::NonZeroU64::new(s.size),
        }
    }

    /// Queues `data` (as f32) for id `id`.
    pub fn write(&self, queue: &wgpu::Queue, id: BufId, data: &[f64]) {
        let s = self.slots[id];
        let v = to_f32(data);
        queue.write_buffer(&self.buffers[s.buffer], s.offset, bytemuck::cast_slice(&v));
    }

    /// A read of `len` values of id `id` through `staging`.
    pub fn read<'a>(&'a self, id: BufId, staging: &'a wgpu::Buffer, len: usize) -> Read<'a> {
        let s = self.slots[id];
        Read {
            from: &self.buffers[s.buffer],
            offset: s.offset,
            staging,
            len,
        }
    }
}
