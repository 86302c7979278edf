// loss: loss[0] = L(pred, target) and dpred = ∂L/∂pred (SPEC §8.4). CPU twin:
// src/backend/cpu/loss.rs. Kinds: 0 ½Σp², 1 mean (p − t)², 2 BCE on probabilities with logs
// clamped at −100 and gradient (p − t)/max(p(1 − p), 1e-12)/N (PyTorch's BCELoss), 3 softmax
// cross-entropy of logit rows of `classes` against target probabilities.
// Two phases (p.phase), deterministic, no atomics:
// 0: `groups` workgroups of 256; workgroup w takes items (elements, or rows for softmax)
//    [w·span, (w + 1)·span), thread t items w·span + t, + 256, …; it writes dpred and its
//    fixed-order tree sum of the loss terms to partials[w].
// 1: one workgroup of 256 sums partials[0..groups] (thread t: t, t + 256, …, then a tree) into
//    loss[0].
// Bindings: 0 pred, 1 target (read), 2 loss, 3 dpred, 4 partials (read_write),
// 5 uniform LossParams.

// The uniform LossParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host,
// with shaders/workgroup.wgsl (segment_reduce).

@group(0) @binding(0) var<storage, read> pred: array<f32>;
@group(0) @binding(1) var<storage, read> tgt: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> dpred: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<uniform> p: LossParams;

// The loss term of softmax row r, writing the row's dpred.
fn softmax_row(r: u32, rows: u32) -> f32 {
    let at = r * p.classes;
    var m = pred[at];
    for (var i = 1u; i < p.classes; i++) {
        m = max(m, pred[at + i]);
    }
    var z = 0.0;
    for (var i = 0u; i < p.classes; i++) {
        z += exp(pred[at + i] - m);
    }
    var acc = 0.0;
    for (var i = 0u; i < p.classes; i++) {
        let l = pred[at + i] - m;
        acc -= tgt[at + i] * (l - log(z)) / f32(rows);
        dpred[at + i] = (exp(l) / z - tgt[at + i]) / f32(rows);
    }
    return acc;
}

// The loss term of element i of kinds 0-2, writing its dpred.
fn element(i: u32) -> f32 {
    let n = f32(p.len);
    let v = pred[i];
    switch p.kind {
        case 0u: {
            dpred[i] = v;
            return 0.5 * v * v;
        }
        case 1u: {
            let d = v - tgt[i];
            dpred[i] = 2.0 * d / n;
            return d * d / n;
        }
        default: {
            let t = tgt[i];
            dpred[i] = (v - t) / max(v * (1.0 - v), 1e-12) / n;
            return -(t * max(log(v), -100.0) + (1.0 - t) * max(log(1.0 - v), -100.0)) / n;
        }
    }
}

@compute @workgroup_size(256)
fn loss(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
    var acc = 0.0;
    if (p.phase == 1u) {
        for (var w = tid; w < p.groups; w += 256u) {
            acc += partials[w];
        }
        let total = segment_reduce(tid, 256u, acc, false);
        if (tid == 0u) {
            loss_out[0] = total;
        }
        return;
    }
    let rows = p.len / p.classes;
    let items = select(p.len, rows, p.kind == 3u);
    let end = min(wid.x * p.span + p.span, items);
    for (var i = wid.x * p.span + tid; i < end; i += 256u) {
        if (p.kind == 3u) {
            acc += softmax_row(i, rows);
        } else {
            acc += element(i);
        }
    }
    let total = segment_reduce(tid, 256u, acc, false);
    if (tid == 0u) {
        partials[wid.x] = total;
    }
}
