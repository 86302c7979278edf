// sum_squares: out[0] (+)= Σ x² (the squared gradient norm for clipping). CPU twin:
// src/backend/cpu/sum_squares.rs.
// Two phases (bit 1 of p.flags), deterministic, no atomics:
// 0: `groups` workgroups of 256; workgroup w sums x² over [w·span, (w + 1)·span) (thread t:
//    w·span + t, + 256, …, then a fixed-order tree) into partials[w].
// 1: one workgroup of 256 sums partials[0..groups] the same way into out[0] (added to it with
//    bit 0, accumulate).
// Bindings: 0 x (read), 1 out, 2 partials (read_write), 3 uniform SumParams.

// The uniform SumParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host,
// with shaders/workgroup.wgsl (segment_reduce).

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<uniform> p: SumParams;

@compute @workgroup_size(256)
fn sum_squares(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
    var acc = 0.0;
    if ((p.flags & 2u) != 0u) {
        for (var w = tid; w < p.groups; w += 256u) {
            acc += partials[w];
        }
        let total = segment_reduce(tid, 256u, acc, false);
        if (tid == 0u) {
            out[0] = select(total, out[0] + total, (p.flags & 1u) != 0u);
        }
        return;
    }
    let end = min(wid.x * p.span + p.span, p.len);
    for (var i = wid.x * p.span + tid; i < end; i += 256u) {
        acc += x[i] * x[i];
    }
    let total = segment_reduce(tid, 256u, acc, false);
    if (tid == 0u) {
        partials[wid.x] = total;
    }
}
