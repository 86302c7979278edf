//! The CPU in words: its model, the SIMD extensions the GEMM kernels can use, and the L2 that
//! sizes the fused chains' blocks. `mnfn info` and `mnfn bench` print it, so every measured
//! number can be recorded beside the machine it came from.

/// For example `AMD EPYC; x86_64 with AVX-512F, AVX2, FMA; L2 1024 KiB per core`.
pub fn describe() -> String {
    format!(
        "{}; {}; L2 {} KiB per core",
        model_name().unwrap_or_else(|| "CPU model unknown".into()),
        isa(),
        super::cache::l2_bytes() >> 10
    )
}

/// Linux's `model name` from /proc/cpuinfo.
fn model_name() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map(|(_, name)| name.trim().to_string())
}

/// The architecture and the SIMD extensions detected at run time.
fn isa() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let found: Vec<&str> = [
            ("AVX-512F", std::arch::is_x86_feature_detected!("avx512f")),
            ("AVX2", std::arch::is_x86_feature_detected!("avx2")),
            ("FMA", std::arch::is_x86_feature_detected!("fma")),
        ]
        .iter()
        .filter(|(_, has)| *has)
        .map(|(name, _)| *name)
        .collect();
        if found.is_empty() {
            "x86_64 with SSE2 only".into()
        } else {
            format!("x86_64 with {}", found.join(", "))
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_description_names_the_architecture_and_the_l2() {
        let text = super::describe();
        assert!(text.contains(std::env::consts::ARCH), "{text}");
        assert!(text.contains(" KiB per core"), "{text}");
    }
}
