// reduce: a strided sum over one axis, which also broadcasts when R = 1 and a stride is zero
// (the means and broadcast terms of the NP/HNP baselines, SPEC §5). CPU twin:
// src/backend/cpu/reduce.rs.
//   y[a·ya + s·ys + k] (+)= alpha · Σ_{r<R} x[a·xa + s·xs + r·xr + k],  a < A, s < S, k < K.
// Threads: one per output (a, s, k), index = gid.x + gid.y * row, k fastest; gid.z = chunk c
// of a split sum (steps::Split) adds r in [c·r_chunk, min((c + 1)·r_chunk, R)) and writes y at
// c·y_chunk.
// Bindings: 0 x (read), 1 y (read_write), 2 uniform ReduceParams.

// The uniform ReduceParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: ReduceParams;

@compute @workgroup_size(256)
fn reduce(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * p.row;
    if (i >= p.outer * p.mid * p.inner) {
        return;
    }
    let k = i % p.inner;
    let s = (i / p.inner) % p.mid;
    let a = i / (p.inner * p.mid);
    let r0 = gid.z * p.r_chunk;
    let r1 = min(r0 + p.r_chunk, p.r);
    let base = a * p.xa + s * p.xs + k;
    var acc = 0.0;
    for (var r = r0; r < r1; r++) {
        acc += x[base + r * p.xr];
    }
    let dst = gid.z * p.y_chunk + a * p.ya + s * p.ys + k;
    if ((p.flags & 1u) != 0u) {
        y[dst] = y[dst] + p.alpha * acc;
    } else {
        y[dst] = p.alpha * acc;
    }
}
