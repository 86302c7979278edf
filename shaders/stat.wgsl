// stat: the seven STATNN statistics of one tensor per batch item and channel (SPEC §5.4): mean,
// unbiased variance, and the quantiles 0, .25, .5, .75, 1 with linear interpolation between order
// statistics (torch.quantile). CPU twin: src/backend/cpu/stat.rs.
// Workgroups: one per (b, c), index = wid.x + wid.y * row; 256 threads share the slice. Sums
// use a fixed-order tree; order statistics come from stable ranks (rank of x_i =
// #{x_j < x_i} + #{j < i : x_j = x_i}), each rank held by exactly one element, so the thread
// that owns the element with a wanted rank is its only writer (no atomics, no sorting).
// Layout: x is (B, M, C·f) (M = R·S, or n for a bias, f = 1); out is (B, C, width) and this op
// writes out[b, c, offset + k], k < 7.
// Bindings: 0 x (read), 1 out (read_write), 2 uniform StatParams.

// The uniform StatParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: StatParams;

var<workgroup> partial: array<f32, 256>;
// Values at the floor (0..5) and ceiling (5..10) order statistic of each quantile.
var<workgroup> order_stats: array<f32, 10>;

// Element i (< m·f) of the (b, c) slice.
fn at(b: u32, c: u32, i: u32) -> f32 {
    let m = i / p.f;
    let t = i % p.f;
    return x[(b * p.m + m) * p.channels * p.f + c * p.f + t];
}

// Tree sum of every thread's `v` (all threads call it).
fn tree_sum(tid: u32, v: f32) -> f32 {
    partial[tid] = v;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (tid < stride) {
            partial[tid] += partial[tid + stride];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(256)
fn stat(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let id = wid.x + wid.y * p.row;
    // Uniform per workgroup, so the barriers below stay in uniform control flow.
    let live = id < p.batch * p.channels;
    let b = id / p.channels;
    let c = id % p.channels;
    let n = p.m * p.f;
    var s = 0.0;
    if (live) {
        for (var i = tid; i < n; i += 256u) {
            s += at(b, c, i);
        }
    }
    let mean = tree_sum(tid, s) / f32(n);
    var ss = 0.0;
    if (live) {
        for (var i = tid; i < n; i += 256u) {
            let d = at(b, c, i) - mean;
            ss = fma(d, d, ss);
        }
    }
    let var_sum = tree_sum(tid, ss);
    if (live) {
        for (var i = tid; i < n; i += 256u) {
            let xi = at(b, c, i);
            var rank = 0u;
            for (var j = 0u; j < n; j++) {
                let xj = at(b, c, j);
                if (xj < xi || (xj == xi && j < i)) {
                    rank += 1u;
                }
            }
            for (var q = 0u; q < 5u; q++) {
                let pos = f32(q) * 0.25 * f32(n - 1u);
                if (rank == u32(floor(pos))) {
                    order_stats[q] = xi;
                }
                if (rank == u32(ceil(pos))) {
                    order_stats[5u + q] = xi;
                }
            }
        }
    }
    workgroupBarrier();
    if (live && tid == 0u) {
        let dst = (b * p.channels + c) * p.width + p.offset;
        out[dst] = mean;
        out[dst + 1u] = var_sum / max(f32(n) - 1.0, 1.0);
        for (var q = 0u; q < 5u; q++) {
            let pos = f32(q) * 0.25 * f32(n - 1u);
            let lo = order_stats[q];
            out[dst + 2u + q] = lo + (pos - floor(pos)) * (order_stats[5u + q] - lo);
        }
    }
}
