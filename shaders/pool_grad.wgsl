// pool_grad: backward of one invariant-pool piece (SPEC §8.3). CPU twin:
// src/backend/cpu/pool_grad.rs. For the entry vector x = x[b, r, s, :] (length E = C·f) with
// n = ‖x‖, u = x / max(n, ε) and ĝ = out_grad[b, c, offset + s·f + t] / R (e = c·f + t):
//   h = γ ⊙ ĝ (affine), 2u ⊙ ĝ (square) or ĝ;
//   dx (+)= (h − s·(uᵀh)) / n with s = u (L2) or sign(x) (L1); h / ε when n ≤ ε (0 at x = 0
//   when ε = 0); h if no norm;
//   affine pieces also write the row ĝ ⊙ u of each entry (b, r, s) to `grows`, which a strided
//   sum over r then reduces to the op's (B·S, E) rows of Σ_r ĝ ⊙ u (steps::Step::PoolGrad), and
//   the entries with r = 0 write the row Σ_r ĝ = out_grad[b, :, s] to `brows` at b·S + s.
// Threads: workgroups of 256; each entry vector (b, r, s) gets a segment of p.lanes threads
// (a power of two: E rounded up, at most 256), 256 / lanes entries per workgroup, entry index
// = (wid.x + wid.y · groups in x) · (256 / lanes) + tid / lanes. Lane l takes elements l,
// l + lanes, …; max|x|, Σ|x|, Σ(x/m)² and uᵀh are fixed-order tree reductions over the
// segment in workgroup memory (segment_reduce), so no thread loops over the whole vector.
// Bindings: 0 x, 1 gamma, 2 dout (read), 3 dx, 4 per-entry gamma rows, 5 beta rows
// (read_write), 6 e_out (read_write) and 7 e_in (read) of the epilogue (any buffers when
// unused), 8 uniform PoolParams.
// Epilogue (src/backend/gpu/epilogue.rs), when the pipeline constant EPILOGUE is 2: the
// activation gradient that reads dx next, folded in: e_out (+ e_out if flags & 32) =
// dx ⊙ act'(e_in), act = p.act, as activation_grad.wgsl computes it from the stored dx.

// The uniform PoolParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host,
// with shaders/workgroup.wgsl (segment_reduce) and shaders/math.wgsl (activation_derivative).

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<storage, read_write> grows: array<f32>;
@group(0) @binding(5) var<storage, read_write> brows: array<f32>;
@group(0) @binding(6) var<storage, read_write> e_out: array<f32>;
@group(0) @binding(7) var<storage, read> e_in: array<f32>;
@group(0) @binding(8) var<uniform> p: PoolParams;

// 0 none, 2 activation gradient (a constant, so the other pipeline carries none).
override EPILOGUE: u32 = 0u;

// The output gradient for entry element i of batch b, position s (ĝ times R).
fn out_grad(b: u32, s: u32, i: u32) -> f32 {
    let c = i / p.f;
    let t = i % p.f;
    let channels = p.e / p.f;
    return dout[(b * channels + c) * p.width + p.offset + s * p.f + t];
}

// ĝ for entry element i of batch b, position s.
fn upstream(b: u32, s: u32, i: u32) -> f32 {
    return out_grad(b, s, i) / f32(p.r);
}

// h for entry element i with normalised value u and upstream g.
fn head(i: u32, u: f32, g: f32) -> f32 {
    if ((p.flags & 8u) != 0u) {
        return gamma[i] * g;
    }
    if ((p.flags & 4u) != 0u) {
        return 2.0 * u * g;
    }
    return g;
}

@compute @workgroup_size(256)
fn pool_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let lane = tid % p.lanes;
    let id = (wid.x + wid.y * groups.x) * (256u / p.lanes) + tid / p.lanes;
    // Threads past the last entry take no elements but still join every reduction's barriers.
    let len = select(0u, p.e, id < p.batch * p.r * p.s);
    let s = id % p.s;
    let r = (id / p.s) % p.r;
    let b = id / (p.s * p.r);
    let at = id * p.e;
    let norm_kind = p.flags & 3u;
    let affine = (p.flags & 8u) != 0u;
    let eps = bitcast<f32>(p.eps_bits);
    // ‖x‖ as m·‖x/m‖ (m = max|x|) for L2, so tiny entries do not underflow (SPEC §9.4).
    var n = 1.0;
    if (norm_kind == 1u) {
        var s1 = 0.0;
        for (var i = lane; i < len; i += p.lanes) {
            s1 += abs(x[at + i]);
        }
        n = segment_reduce(tid, p.lanes, s1, false);
    } else if (norm_kind == 2u) {
        var m = 0.0;
        for (var i = lane; i < len; i += p.lanes) {
            m = max(m, abs(x[at + i]));
        }
        m = segment_reduce(tid, p.lanes, m, true);
        var s2 = 0.0;
        if (m > 0.0) {
            for (var i = lane; i < len; i += p.lanes) {
                let v = x[at + i] / m;
                s2 = fma(v, v, s2);
            }
        }
        n = m * sqrt(segment_reduce(tid, p.lanes, s2, false));
    }
    let denom = select(max(n, eps), 1.0, norm_kind == 0u);
    // uᵀh (and the affine rows); without a norm dx is h and needs no dot.
    var dot = 0.0;
    for (var i = lane; i < len; i += p.lanes) {
        let u = select(0.0, x[at + i] / denom, denom > 0.0);
        let g = upstream(b, s, i);
        if (affine) {
            grows[at + i] = g * u;
            if (r == 0u) {
                brows[(b * p.s + s) * p.e + i] = out_grad(b, s, i);
            }
        }
        dot += u * head(i, u, g);
    }
    if (norm_kind != 0u) {
        dot = segment_reduce(tid, p.lanes, dot, false);
    }
    for (var i = lane; i < len; i += p.lanes) {
        let xi = x[at + i];
        let u = select(0.0, xi / denom, denom > 0.0);
        let h = head(i, u, upstream(b, s, i));
        var d = h;
        if (norm_kind != 0u) {
            if (n == 0.0 && eps == 0.0) {
                // Exact normalisation has no gradient at the zero vector.
                d = 0.0;
            } else if (n <= eps) {
                d = h / eps;
            } else if (norm_kind == 2u) {
                d = (h - u * dot) / n;
            } else {
                d = (h - sign(xi) * dot) / n;
            }
        }
        if ((p.flags & 16u) != 0u) {
            d = dx[at + i] + d;
        }
        dx[at + i] = d;
        if (EPILOGUE == 2u) {
            let v = d * activation_derivative(e_in[at + i], p.act);
            if ((p.flags & 32u) != 0u) {
                e_out[at + i] = e_out[at + i] + v;
            } else {
                e_out[at + i] = v;
            }
        }
    }
}
