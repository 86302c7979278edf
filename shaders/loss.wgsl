// loss: loss[0] = L(pred, target) and dpred = ∂L/∂pred (SPEC §8.4). CPU twin:
// src/backend/cpu/loss.rs. Kinds: 0 ½Σp², 1 mean (p − t)², 2 BCE on probabilities with logs
// clamped at −100 and gradient (p − t)/max(p(1 − p), 1e-12)/N (PyTorch's BCELoss), 3 softmax
// cross-entropy of logit rows of `classes` against target probabilities.
// Threads: one workgroup of 256; thread i takes elements (rows for softmax) i, i + 256, …;
// the loss is a fixed-order tree sum in workgroup memory (deterministic, no atomics).
// Bindings: 0 pred, 1 target (read), 2 loss, 3 dpred (read_write), 4 uniform LossParams.

// The uniform LossParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> pred: array<f32>;
@group(0) @binding(1) var<storage, read> tgt: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> dpred: array<f32>;
@group(0) @binding(4) var<uniform> p: LossParams;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn loss(@builtin(local_invocation_index) tid: u32) {
    let n = f32(p.len);
    var acc = 0.0;
    if (p.kind == 3u) {
        let rows = p.len / p.classes;
        for (var r = tid; r < rows; r += 256u) {
            let at = r * p.classes;
            var m = pred[at];
            for (var i = 1u; i < p.classes; i++) {
                m = max(m, pred[at + i]);
            }
            var z = 0.0;
            for (var i = 0u; i < p.classes; i++) {
                z += exp(pred[at + i] - m);
            }
            for (var i = 0u; i < p.classes; i++) {
                let l = pred[at + i] - m;
                acc -= tgt[at + i] * (l - log(z)) / f32(rows);
                dpred[at + i] = (exp(l) / z - tgt[at + i]) / f32(rows);
            }
        }
    } else {
        for (var i = tid; i < p.len; i += 256u) {
            let v = pred[i];
            switch p.kind {
                case 0u: {
                    acc += 0.5 * v * v;
                    dpred[i] = v;
                }
                case 1u: {
                    let d = v - tgt[i];
                    acc += d * d / n;
                    dpred[i] = 2.0 * d / n;
                }
                default: {
                    let t = tgt[i];
                    acc -= (t * max(log(v), -100.0) + (1.0 - t) * max(log(1.0 - v), -100.0)) / n;
                    dpred[i] = (v - t) / max(v * (1.0 - v), 1e-12) / n;
                }
            }
        }
    }
    partial[tid] = acc;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        if (tid < stride) {
            partial[tid] += partial[tid + stride];
        }
        workgroupBarrier();
    }
    if (tid == 0u) {
        loss_out[0] = partial[0];
    }
}
