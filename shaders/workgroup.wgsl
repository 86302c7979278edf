// workgroup: the cooperative reduction several shaders share (loss, sum_squares, pool_grad,
// reduce); the host prepends this file to those that ask for it (`shader!(name, Params,
// workgroup)` in src/backend/gpu/ops/mod.rs). No entry point; for workgroups of 256 threads.

// One value per thread of the workgroup.
var<workgroup> lanes_scratch: array<f32, 256>;

// v reduced over each aligned segment of `lanes` threads (a power of two, at most 256): the
// sum, or the maximum when `take_max`, combined in a fixed tree order, so every run gives the
// same bits (no atomics). Every thread gets its segment's result. It holds barriers: every
// thread of the workgroup calls it, with the same `lanes` and `take_max`.
fn segment_reduce(tid: u32, lanes: u32, v: f32, take_max: bool) -> f32 {
    return spaced_reduce(tid, lanes, 1u, v, take_max);
}

// segment_reduce over segments whose `lanes` threads lie `step` apart (lanes · step divides
// 256): thread tid is lane (tid / step) % lanes of the segment that starts at tid - lane·step.
fn spaced_reduce(tid: u32, lanes: u32, step: u32, v: f32, take_max: bool) -> f32 {
    lanes_scratch[tid] = v;
    workgroupBarrier();
    let lane = (tid / step) % lanes;
    for (var stride = lanes / 2u; stride > 0u; stride >>= 1u) {
        if (lane < stride) {
            let a = lanes_scratch[tid];
            let b = lanes_scratch[tid + stride * step];
            lanes_scratch[tid] = select(a + b, max(a, b), take_max);
        }
        workgroupBarrier();
    }
    let r = lanes_scratch[tid - lane * step];
    // The next call overwrites the scratch only after every thread has read this one's result.
    workgroupBarrier();
    return r;
}
