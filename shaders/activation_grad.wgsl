// activation_grad: dx (+)= dy ⊙ act'(x), x the forward input (SPEC §8.2). CPU twin:
// src/backend/cpu/activation_grad.rs.
// Threads: one per element, index = gid.x + gid.y * row. Layout: flat arrays of `len` f32.
// Bindings: 0 x (read), 1 dy (read), 2 dx (read_write), 3 uniform ActParams.

// The uniform ActParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host,
// with shaders/math.wgsl (reduce_angle, tanh_abs).

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: ActParams;

fn derivative(v: f32, act: u32) -> f32 {
    switch act {
        case 0u: { return select(0.0, 1.0, v > 0.0); }
        case 1u: {
            let t = tanh_abs(abs(v));
            return 1.0 - t * t;
        }
        case 2u: { return cos(reduce_angle(abs(v))); }
        case 3u: { return sign(v); }
        default: {
            let s = 1.0 / (1.0 + exp(-v));
            return s * (1.0 - s);
        }
    }
}

@compute @workgroup_size(256)
fn activation_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * p.row;
    if (i < p.len) {
        let v = dy[i] * derivative(x[i], p.act);
        if ((p.flags & 1u) != 0u) {
            dx[i] = dx[i] + v;
        } else {
            dx[i] = v;
        }
    }
}
