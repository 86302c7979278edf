// pool: one invariant-pool piece (SPEC §4): normalise each entry vector x[b, r, s, :] of length
// E = C·f, optionally square it or map it by γ ⊙ u + β, then average over r. CPU twin:
// src/backend/cpu/pool.rs.
// Threads: one workgroup of 256 per output column (b, s), index = wid.x + wid.y · groups in x.
// For each chunk of 256 rows r, thread t first computes the norm of entry r = chunk + t once
// (into workgroup memory); then thread t sums the normalised values of e = t, t + 256, … over
// the chunk's rows in order, so each output adds its rows in the CPU twin's order.
// Layout: x is (B, R, S, E) row-major; out is (B, C, width) and this piece writes
// out[b, c, offset + s·f + t] with e = c·f + t.
// Bindings: 0 x (read), 1 gamma (read), 2 beta (read), 3 out (read_write), 4 uniform PoolParams.

// The uniform PoolParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: PoolParams;

// The normalising denominators of the current chunk's rows.
var<workgroup> denoms: array<f32, 256>;

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
fn pool(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let col = wid.x + wid.y * groups.x;
    if (col >= p.batch * p.s) {
        return;
    }
    let s = col % p.s;
    let b = col / p.s;
    let kind = p.flags & 3u;
    let channels = p.e / p.f;
    for (var r0 = 0u; r0 < p.r; r0 += 256u) {
        if (r0 + tid < p.r) {
            let base = ((b * p.r + r0 + tid) * p.s + s) * p.e;
            // F.normalize: x / max(‖x‖, ε); with ε = 0 a zero vector stays zero.
            denoms[tid] = select(max(entry_norm(base, kind), bitcast<f32>(p.eps_bits)), 1.0, kind == 0u);
        }
        workgroupBarrier();
        let rows = min(256u, p.r - r0);
        for (var e = tid; e < p.e; e += 256u) {
            let at = (b * channels + e / p.f) * p.width + p.offset + s * p.f + e % p.f;
            // The running sum over r is carried in the output from one chunk to the next.
            var acc = select(out[at], 0.0, r0 == 0u);
            for (var k = 0u; k < rows; k++) {
                let denom = denoms[k];
                var u = select(0.0, x[((b * p.r + r0 + k) * p.s + s) * p.e + e] / denom, denom > 0.0);
                // As the CPU twin: the affine map takes precedence over squaring.
                if ((p.flags & 8u) != 0u) {
                    u = fma(gamma[e], u, beta[e]);
                } else if ((p.flags & 4u) != 0u) {
                    u = u * u;
                }
                acc = acc + u;
            }
            out[at] = select(acc, acc / f32(p.r), r0 + rows == p.r);
        }
        workgroupBarrier();
    }
}
