// math: functions shared by several shaders; the host prepends this file to those that ask for
// it (`shader!(name, Params, math)` in src/backend/gpu/ops/mod.rs). No entry point.

// 2π split for Cody–Waite range reduction: TWO_PI_HI has few mantissa bits, so k·TWO_PI_HI is
// exact.
const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_LO: f32 = 0.0019353071795864769;
const INV_TWO_PI: f32 = 0.15915494309189535;

// x reduced to [−π, π] (WGSL's sin and cos are only accurate there, SPEC §9.7).
fn reduce_angle(x: f32) -> f32 {
    let k = round(x * INV_TWO_PI);
    return (x - k * TWO_PI_HI) - k * TWO_PI_LO;
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

// act(v) by code (Activation::code: 0 ReLU, 1 tanh, 2 sin, 3 abs, else sigmoid); odd functions
// on |v| with the sign restored, so sign flips commute bitwise (CPU twin:
// src/backend/cpu/activation.rs).
fn activate(v: f32, act: u32) -> f32 {
    switch act {
        case 0u: { return max(v, 0.0); }
        case 1u: { return sign(v) * tanh_abs(abs(v)); }
        case 2u: { return sign(v) * sin(reduce_angle(abs(v))); }
        case 3u: { return abs(v); }
        default: { return 1.0 / (1.0 + exp(-v)); }
    }
}

// act'(v) by the same codes (CPU twin: src/backend/cpu/activation_grad.rs).
fn activation_derivative(v: f32, act: u32) -> f32 {
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
