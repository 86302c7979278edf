// siren_grad: backward of `siren.wgsl` to the per-sample parameters (SPEC §8.4), in two phases.
// CPU twin: src/backend/cpu/siren_grad.rs.
// Threads: phase 0 one per (sample b, point p), back-propagating dout into ∂z of every layer;
// phase 1 one per (sample b, parameter q), summing over points in order (no atomics).
// Index = gid.x + gid.y * row. Layout as in siren.wgsl; dz (B, P, Σ_{i≥1} n_i), layer i at
// column Σ_{1≤m<i} n_m; dparams (B, D).
// Bindings: 0 params, 1 coords, 2 trace, 3 dout (read), 4 dz, 5 dparams (read_write),
// 6 uniform SirenParams (flags: bit 0 accumulate, bit 1 phase).

// The uniform SirenParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var<storage, read> coords: array<f32>;
@group(0) @binding(2) var<storage, read> trace: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dz: array<f32>;
@group(0) @binding(5) var<storage, read_write> dparams: array<f32>;
@group(0) @binding(6) var<uniform> p: SirenParams;

fn width(i: u32) -> u32 {
    return p.widths[i / 4u][i % 4u];
}

// Offsets of layer i (1-based): parameters in a sample's row, ∂z in a point's dz row, and
// (hidden layers) values in a point's trace row.
struct Offsets {
    param: u32,
    z: u32,
    tr: u32,
}

fn offsets(i: u32) -> Offsets {
    var o = Offsets(0u, 0u, 0u);
    for (var m = 1u; m < i; m++) {
        o.param += width(m) * (width(m - 1u) + 1u);
        o.z += width(m);
        o.tr += 2u * width(m);
    }
    return o;
}

fn dz_width() -> u32 {
    return offsets(p.layers).z + width(p.layers);
}

// Phase 0: ∂z_L = dout, ∂z_{i−1}[k] = (Σ_j W_i[j,k] ∂z_i[j]) · ω cos(ω z_{i−1}[k]).
fn point_pass(index: u32) {
    let s = dz_width();
    let nl = width(p.layers);
    var g: array<f32, 64>;
    var nxt: array<f32, 64>;
    let last = offsets(p.layers);
    for (var j = 0u; j < nl; j++) {
        g[j] = dout[index * nl + j];
        dz[index * s + last.z + j] = g[j];
    }
    for (var i = p.layers; i >= 2u; i--) {
        let n_in = width(i - 1u);
        let n_out = width(i);
        let o = offsets(i);
        let prev = offsets(i - 1u);
        let row = (index / p.points) * p.d + o.param;
        for (var k = 0u; k < n_in; k++) {
            var acc = 0.0;
            for (var j = 0u; j < n_out; j++) {
                acc += params[row + j * n_in + k] * g[j];
            }
            nxt[k] = acc * trace[index * p.h2 + prev.tr + n_in + k];
            dz[index * s + prev.z + k] = nxt[k];
        }
        for (var k = 0u; k < n_in; k++) {
            g[k] = nxt[k];
        }
    }
}

// Phase 1: ∂W_i[j,k] = Σ_p ∂z_i[p,j]·a_{i−1}[p,k] (a_0 = coords), ∂b_i[j] = Σ_p ∂z_i[p,j].
fn param_pass(index: u32) {
    let b = index / p.d;
    let q = index % p.d;
    let s = dz_width();
    var i = 1u;
    var o = offsets(1u);
    loop {
        let size = width(i) * (width(i - 1u) + 1u);
        if (q < o.param + size || i == p.layers) {
            break;
        }
        i++;
        o = offsets(i);
    }
    let n_in = width(i - 1u);
    let local = q - o.param;
    let prev = offsets(i - 1u);
    var acc = 0.0;
    if (local < width(i) * n_in) {
        let j = local / n_in;
        let k = local % n_in;
        for (var pt = 0u; pt < p.points; pt++) {
            let at = b * p.points + pt;
            var a: f32;
            if (i == 1u) {
                a = coords[pt * n_in + k];
            } else {
                a = trace[at * p.h2 + prev.tr + k];
            }
            acc += dz[at * s + o.z + j] * a;
        }
    } else {
        let j = local - width(i) * n_in;
        for (var pt = 0u; pt < p.points; pt++) {
            acc += dz[(b * p.points + pt) * s + o.z + j];
        }
    }
    if ((p.flags & 1u) != 0u) {
        acc += dparams[index];
    }
    dparams[index] = acc;
}

@compute @workgroup_size(256)
fn siren_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let index = gid.x + gid.y * p.row;
    if ((p.flags & 2u) == 0u) {
        if (index < p.batch * p.points) {
            point_pass(index);
        }
    } else if (index < p.batch * p.d) {
        param_pass(index);
    }
}
