// activation: y = act(x) elementwise. CPU twin: src/backend/cpu/activation.rs.
// Threads: one per element, index = gid.x + gid.y * row (2-D dispatch past 65,535 groups).
// Layout: flat arrays of `len` f32.
// Bindings: 0 x (read), 1 y (read_write), 2 uniform ActParams.

// The uniform ActParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host,
// with shaders/math.wgsl (reduce_angle, tanh_abs).

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: ActParams;

fn apply(v: f32, act: u32) -> f32 {
    switch act {
        case 0u: { return max(v, 0.0); }
        // Odd functions on |v| with the sign restored, so sign flips commute bitwise.
        case 1u: { return sign(v) * tanh_abs(abs(v)); }
        case 2u: { return sign(v) * sin(reduce_angle(abs(v))); }
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
