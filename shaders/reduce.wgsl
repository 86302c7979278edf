// reduce: a strided sum over one axis, which also broadcasts when R = 1 and a stride is zero
// (the means and broadcast terms of the NP/HNP baselines, SPEC §5). CPU twin:
// src/backend/cpu/reduce.rs.
//   y[a·ya + s·ys + k] (+)= alpha · Σ_{r<R} x[a·xa + s·xs + r·xr + k],  a < A, s < S, k < K.
// Two pipelines (override TILED, chosen by the host per shape, ops::reduce::k_tile):
// - one thread per output (a, s, k), index = gid.x + gid.y * row, k fastest;
// - TILED, for few outputs over many terms (bias gradients: 5 to 45 outputs over up to 2^18
//   rows): one workgroup per tile of k_tile outputs k (a power of two), its 256 / k_tile lanes
//   each adding every lane-th term, k fastest across threads (coalesced reads when xr = K),
//   then a fixed-order tree over the lanes (spaced_reduce, shaders/workgroup.wgsl).
// Either way gid.z = chunk c of a split sum (steps::Split) adds r in
// [c·r_chunk, min((c + 1)·r_chunk, R)) and writes y at c·y_chunk.
// Bindings: 0 x (read), 1 y (read_write), 2 uniform ReduceParams.

// The uniform ReduceParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: ReduceParams;

override TILED: bool = false;

@compute @workgroup_size(256)
fn reduce(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    if (TILED) {
        reduce_tile(tid, wid.x + wid.y * groups.x, wid.z);
        return;
    }
    let i = gid.x + gid.y * p.row;
    if (i >= p.outer * p.mid * p.inner) {
        return;
    }
    let k = i % p.inner;
    let s = (i / p.inner) % p.mid;
    let a = i / (p.inner * p.mid);
    store(gid.z, a, s, k, add_terms(gid.z, a * p.xa + s * p.xs + k, 0u, 1u));
}

// One tile's k_tile outputs over chunk c, by the workgroup (thread tid) whose index is `tile`.
fn reduce_tile(tid: u32, tile: u32, c: u32) {
    // Uniform per workgroup, so the barriers below stay in uniform control flow.
    if (tile >= p.outer * p.mid * p.k_tiles) {
        return;
    }
    let lanes = 256u / p.k_tile;
    let lane = tid / p.k_tile;
    let k = (tile % p.k_tiles) * p.k_tile + tid % p.k_tile;
    let s = (tile / p.k_tiles) % p.mid;
    let a = tile / (p.k_tiles * p.mid);
    var acc = 0.0;
    if (k < p.inner) {
        acc = add_terms(c, a * p.xa + s * p.xs + k, lane, lanes);
    }
    let total = spaced_reduce(tid, lanes, p.k_tile, acc, false);
    if (lane == 0u && k < p.inner) {
        store(c, a, s, k, total);
    }
}

// Σ x[base + r·xr] over the r of chunk c from `first` in steps of `step`.
fn add_terms(c: u32, base: u32, first: u32, step: u32) -> f32 {
    let r1 = min((c + 1u) * p.r_chunk, p.r);
    var acc = 0.0;
    for (var r = c * p.r_chunk + first; r < r1; r += step) {
        acc += x[base + r * p.xr];
    }
    return acc;
}

// Writes (or adds) alpha · total at output (a, s, k) of chunk c.
fn store(c: u32, a: u32, s: u32, k: u32, total: f32) {
    let dst = c * p.y_chunk + a * p.ya + s * p.ys + k;
    if ((p.flags & 1u) != 0u) {
        y[dst] = y[dst] + p.alpha * total;
    } else {
        y[dst] = p.alpha * total;
    }
}
