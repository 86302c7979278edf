// sum_squares: out[0] (+)= Σ x² (the squared gradient norm for clipping). CPU twin:
// src/backend/cpu/sum_squares.rs.
// Threads: one workgroup of 256; thread t sums elements t, t + 256, …, then a fixed-order tree
// combines the partial sums (deterministic, no atomics).
// Bindings: 0 x (read), 1 out (read_write), 2 uniform SumParams.

// The uniform SumParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: SumParams;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn sum_squares(@builtin(local_invocation_index) tid: u32) {
    var acc = 0.0;
    for (var i = tid; i < p.len; i += 256u) {
        acc += x[i] * x[i];
    }
    partial[tid] = acc;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (tid < stride) {
            partial[tid] += partial[tid + stride];
        }
        workgroupBarrier();
    }
    if (tid == 0u) {
        if ((p.flags & 1u) != 0u) {
            out[0] = out[0] + partial[0];
        } else {
            out[0] = partial[0];
        }
    }
}
