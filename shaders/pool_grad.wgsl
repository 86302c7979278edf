// pool_grad: backward of one invariant-pool piece (SPEC §8.3). CPU twin:
// src/backend/cpu/pool_grad.rs. For the entry vector x = x[b, r, s, :] (length E = C·f) with
// n = ‖x‖, u = x / max(n, ε) and ĝ = out_grad[b, c, offset + s·f + t] / R (e = c·f + t):
//   h = γ ⊙ ĝ (affine), 2u ⊙ ĝ (square) or ĝ;
//   dx (+)= (h − s·(uᵀh)) / n with s = u (L2) or sign(x) (L1); h / ε when n ≤ ε (0 at x = 0
//   when ε = 0); h if no norm;
//   affine pieces also write rows ĝ ⊙ u and ĝ, reduced to ∂γ, ∂β by later strided sums.
// Threads: one per entry vector (b, r, s), index = gid.x + gid.y * row.
// Bindings: 0 x, 1 gamma, 2 dout (read), 3 dx, 4 gamma rows, 5 beta rows (read_write),
// 6 uniform PoolParams.

// The uniform PoolParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<storage, read_write> grows: array<f32>;
@group(0) @binding(5) var<storage, read_write> brows: array<f32>;
@group(0) @binding(6) var<uniform> p: PoolParams;

// ĝ for entry element i of batch b, position s.
fn upstream(b: u32, s: u32, i: u32) -> f32 {
    let c = i / p.f;
    let t = i % p.f;
    let channels = p.e / p.f;
    return dout[(b * channels + c) * p.width + p.offset + s * p.f + t] / f32(p.r);
}

@compute @workgroup_size(256)
fn pool_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let id = gid.x + gid.y * p.row;
    if (id >= p.batch * p.r * p.s) {
        return;
    }
    let s = id % p.s;
    let b = id / (p.s * p.r);
    let at = id * p.e;
    let norm_kind = p.flags & 3u;
    let square = (p.flags & 4u) != 0u;
    let affine = (p.flags & 8u) != 0u;
    let eps = bitcast<f32>(p.eps_bits);
    // ‖x‖ as m·‖x/m‖ (m = max|x|) for L2, so tiny entries do not underflow (SPEC §9.4).
    var n = 1.0;
    if (norm_kind != 0u) {
        var m = 0.0;
        var s1 = 0.0;
        for (var i = 0u; i < p.e; i++) {
            let v = abs(x[at + i]);
            m = max(m, v);
            s1 += v;
        }
        n = s1;
        if (norm_kind == 2u) {
            var s2 = 0.0;
            if (m > 0.0) {
                for (var i = 0u; i < p.e; i++) {
                    let v = x[at + i] / m;
                    s2 = fma(v, v, s2);
                }
            }
            n = m * sqrt(s2);
        }
    }
    let denom = select(max(n, eps), 1.0, norm_kind == 0u);
    // First pass: uᵀh (and the affine rows).
    var dot = 0.0;
    for (var i = 0u; i < p.e; i++) {
        let u = select(0.0, x[at + i] / denom, denom > 0.0);
        let g = upstream(b, s, i);
        var h = g;
        if (affine) {
            h = gamma[i] * g;
            grows[at + i] = g * u;
            brows[at + i] = g;
        } else if (square) {
            h = 2.0 * u * g;
        }
        dot += u * h;
    }
    for (var i = 0u; i < p.e; i++) {
        let xi = x[at + i];
        let u = select(0.0, xi / denom, denom > 0.0);
        let g = upstream(b, s, i);
        var h = g;
        if (affine) {
            h = gamma[i] * g;
        } else if (square) {
            h = 2.0 * u * g;
        }
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
            dx[at + i] = dx[at + i] + d;
        } else {
            dx[at + i] = d;
        }
    }
}
