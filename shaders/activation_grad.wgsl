// activation_grad: dx (+)= dy ⊙ act'(x), x the forward input (SPEC §8.2). CPU twin:
// src/backend/cpu/activation_grad.rs.
// Threads: one per element, index = gid.x + gid.y * row. Layout: flat arrays of `len` f32.
// Bindings: 0 x (read), 1 dy (read), 2 dx (read_write), 3 uniform ActParams.

// The uniform ActParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host,
// with shaders/math.wgsl (activation_derivative).

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: ActParams;

@compute @workgroup_size(256)
fn activation_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * p.row;
    if (i < p.len) {
        let v = dy[i] * activation_derivative(x[i], p.act);
        if ((p.flags & 1u) != 0u) {
            dx[i] = dx[i] + v;
        } else {
            dx[i] = v;
        }
    }
}
