// adam: one Adam/AdamW update of a parameter buffer in place (PyTorch's update). CPU twin:
// adam in src/backend/cpu/adam.rs. With c = min(1, max_norm / (sqrt(norm_sq) + 1e-6)) when
// clipping (else 1): g = c·grad; Adam adds wd·p to g, AdamW takes lr·wd·p off p;
// m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²; p −= lr·(m/bc₁)/(sqrt(v/bc₂) + eps).
// Threads: one per element, index = gid.x + gid.y * row.
// Bindings: 0 grad, 1 hyper ([lr, bc₁, bc₂]), 2 norm_sq (read), 3 p, 4 m, 5 v (read_write),
// 6 uniform AdamParams.

// The uniform AdamParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> grad: array<f32>;
@group(0) @binding(1) var<storage, read> hyper: array<f32>;
@group(0) @binding(2) var<storage, read> norm_sq: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
@group(0) @binding(6) var<uniform> a: AdamParams;

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * a.row;
    if (i >= a.len) {
        return;
    }
    let lr = hyper[0];
    var c = 1.0;
    if ((a.flags & 1u) != 0u) {
        c = min(1.0, a.max_norm / (sqrt(norm_sq[0]) + 1e-6));
    }
    var pi = p[i];
    var g = grad[i] * c;
    if ((a.flags & 2u) != 0u) {
        pi = pi - lr * a.weight_decay * pi;
    } else {
        g = g + a.weight_decay * pi;
    }
    let mi = a.beta1 * m[i] + (1.0 - a.beta1) * g;
    let vi = a.beta2 * v[i] + (1.0 - a.beta2) * g * g;
    p[i] = pi - lr * (mi / hyper[1]) / (sqrt(vi / hyper[2]) + a.eps);
    m[i] = mi;
    v[i] = vi;
}
