// siren: a batch of SIRENs with per-sample weights at shared points (SPEC §1.4, §6.3).
// CPU twin: src/backend/cpu/siren.rs.
// Threads: one per (sample b, point p), index = gid.x + gid.y * row, b = index / points.
// Layout: params (B, D) with per layer W (n_out × n_in, row-major) then b; coords (P, n0);
// out (B, P, nL); trace (B, P, 2·Σ hidden) with per hidden layer a then ω·cos(ω z).
// Bindings: 0 params, 1 coords (read), 2 out, 3 trace (read_write), 4 uniform SirenParams.

// The uniform SirenParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host,
// with shaders/math.wgsl (reduce_angle).

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var<storage, read> coords: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> trace: array<f32>;
@group(0) @binding(4) var<uniform> p: SirenParams;

// Widest layer the per-thread arrays hold (checked on the host).
const MAX_WIDTH: u32 = 64u;
fn width(i: u32) -> u32 {
    return p.widths[i / 4u][i % 4u];
}

@compute @workgroup_size(256)
fn siren(@builtin(global_invocation_id) gid: vec3<u32>) {
    let index = gid.x + gid.y * p.row;
    if (index >= p.batch * p.points) {
        return;
    }
    let b = index / p.points;
    let pt = index % p.points;
    var cur: array<f32, 64>;
    var nxt: array<f32, 64>;
    let n0 = width(0u);
    for (var k = 0u; k < n0; k++) {
        cur[k] = coords[pt * n0 + k];
    }
    var poff = b * p.d;
    var toff = index * p.h2;
    for (var i = 1u; i <= p.layers; i++) {
        let n_in = width(i - 1u);
        let n_out = width(i);
        for (var j = 0u; j < n_out; j++) {
            var z = params[poff + n_out * n_in + j];
            for (var k = 0u; k < n_in; k++) {
                z += params[poff + j * n_in + k] * cur[k];
            }
            if (i < p.layers) {
                let r = reduce_angle(p.omega * z);
                let s = sin(r);
                nxt[j] = s;
                trace[toff + j] = s;
                trace[toff + n_out + j] = p.omega * cos(r);
            } else {
                out[index * n_out + j] = z;
            }
        }
        if (i < p.layers) {
            for (var j = 0u; j < n_out; j++) {
                cur[j] = nxt[j];
            }
            toff += 2u * n_out;
        }
        poff += n_out * (n_in + 1u);
    }
}
