// activation_grad: dx (+)= dy ⊙ act'(x), x the forward input (SPEC §8.2). CPU twin:
// src/backend/cpu/activation_grad.rs.
// Threads: one per element, index = gid.x + gid.y * row. Layout: flat arrays of `len` f32.
// Bindings: 0 x (read), 1 dy (read), 2 dx (read_write), 3 uniform ActParams.

// The uniform ActParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: ActParams;

const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_LO: f32 = 0.0019353071795864769;
const INV_TWO_PI: f32 = 0.15915494309189535;

// cos on [0, ∞), range-reduced to [-π, π] first (SPEC §9.7).
fn cos_reduced(ax: f32) -> f32 {
    let k = round(ax * INV_TWO_PI);
    let r = (ax - k * TWO_PI_HI) - k * TWO_PI_LO;
    return cos(r);
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

fn derivative(v: f32, act: u32) -> f32 {
    switch act {
        case 0u: { return select(0.0, 1.0, v > 0.0); }
        case 1u: {
            let t = tanh_abs(abs(v));
            return 1.0 - t * t;
        }
        case 2u: { return cos_reduced(abs(v)); }
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
