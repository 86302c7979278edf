// activation: y = act(x) elementwise. CPU twin: src/backend/cpu/activation.rs.
// Threads: one per element, index = gid.x + gid.y * row (2-D dispatch past 65,535 groups).
// Layout: flat arrays of `len` f32.
// Bindings: 0 x (read), 1 y (read_write), 2 uniform ActParams.

// The uniform ActParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: ActParams;

// 2π split for Cody–Waite range reduction: C1 has few mantissa bits, so k·C1 is exact.
const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_LO: f32 = 0.0019353071795864769;
const INV_TWO_PI: f32 = 0.15915494309189535;

// sin on [0, ∞): reduce to [-π, π] first (WGSL's sin is only accurate there, SPEC §9.7).
fn sin_reduced(ax: f32) -> f32 {
    let k = round(ax * INV_TWO_PI);
    let r = (ax - k * TWO_PI_HI) - k * TWO_PI_LO;
    return sin(r);
}

// tanh on [0, ∞): 1 − 2/(exp(2a) + 1) never overflows (SPEC §9.7); below 0.25 its odd Taylor
// series avoids the cancellation near 0 (CPU twin: tanh_abs in src/backend/cpu/activation.rs).
fn tanh_abs(a: f32) -> f32 {
    if (a < 0.25) {
        let a2 = a * a;
        return a * (1.0 + a2 * (-1.0 / 3.0 + a2 * (2.0 / 15.0 + a2 * (-17.0 / 315.0 + a2 * (62.0 / 2835.0)))));
    }
    return 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
}

fn apply(v: f32, act: u32) -> f32 {
    switch act {
        case 0u: { return max(v, 0.0); }
        // Odd functions on |v| with the sign restored, so sign flips commute bitwise.
        case 1u: { return sign(v) * tanh_abs(abs(v)); }
        case 2u: { return sign(v) * sin_reduced(abs(v)); }
        case 3u: { return abs(v); }
        default: { return 1.0 / (1.0 + exp(-v)); }
    }
}

@compute @workgroup_size(256)
fn activation(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * p.row;
    if (i < p.len) {
        y[i] = apply(x[i], p.act);
    }
}
