// pool: one invariant-pool piece (SPEC §4): normalise each entry vector x[b, r, s, :] of length
// E = C·f, optionally square it or map it by γ ⊙ u + β, then average over r. CPU twin:
// src/backend/cpu/pool.rs.
// Threads: one per output value (b, s, e), index = gid.x + gid.y * row.
// Layout: x is (B, R, S, E) row-major; out is (B, C, width) and this piece writes
// out[b, c, offset + s·f + t] with e = c·f + t.
// Bindings: 0 x (read), 1 gamma (read), 2 beta (read), 3 out (read_write), 4 uniform PoolParams.

// The uniform PoolParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: PoolParams;

// ‖v‖ of the entry vector starting at `base`, unclamped; L2 is computed as m·‖v/m‖ with
// m = max|v| so the sum of squares neither overflows nor underflows (SPEC §9.4).
fn entry_norm(base: u32, kind: u32) -> f32 {
    if (kind == 0u) {
        return 1.0;
    }
    var m = 0.0;
    var s1 = 0.0;
    for (var i = 0u; i < p.e; i++) {
        let v = abs(x[base + i]);
        m = max(m, v);
        s1 = s1 + v;
    }
    if (kind == 1u) {
        return s1;
    }
    if (m == 0.0) {
        return 0.0;
    }
    var s2 = 0.0;
    for (var i = 0u; i < p.e; i++) {
        let v = x[base + i] / m;
        s2 = fma(v, v, s2);
    }
    return m * sqrt(s2);
}

@compute @workgroup_size(256)
fn pool(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * p.row;
    if (i >= p.batch * p.s * p.e) {
        return;
    }
    let e = i % p.e;
    let s = (i / p.e) % p.s;
    let b = i / (p.e * p.s);
    let kind = p.flags & 3u;
    var acc = 0.0;
    for (var r = 0u; r < p.r; r++) {
        let base = ((b * p.r + r) * p.s + s) * p.e;
        // F.normalize: x / max(‖x‖, ε); with ε = 0 a zero vector stays zero.
        let denom = select(max(entry_norm(base, kind), bitcast<f32>(p.eps_bits)), 1.0, kind == 0u);
        var u = select(0.0, x[base + e] / denom, denom > 0.0);
        // As the CPU twin: the affine map takes precedence over squaring.
        if ((p.flags & 8u) != 0u) {
            u = fma(gamma[e], u, beta[e]);
        } else if ((p.flags & 4u) != 0u) {
            u = u * u;
        }
        acc = acc + u;
    }
    let c = e / p.f;
    let t = e % p.f;
    let channels = p.e / p.f;
    out[(b * channels + c) * p.width + p.offset + s * p.f + t] = acc / f32(p.r);
}
