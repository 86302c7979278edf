// activation: y = act(x) elementwise. CPU twin: src/backend/cpu/activation.rs.
// Threads: one per element, index = gid.x + gid.y * row (2-D dispatch past 65,535 groups).
// Layout: flat arrays of `len` f32.
// Bindings: 0 x (read), 1 y (read_write), 2 uniform ActParams.

// The uniform ActParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host,
// with shaders/math.wgsl (activate).

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: ActParams;

@compute @workgroup_size(256)
fn activation(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * p.row;
    if (i < p.len) {
        y[i] = activate(x[i], p.act);
    }
}
