//! The per-core L2 size the machine reports, which sizes the row blocks of fused chains
//! (`fuse.rs`), so blocks fit the cache of the CPU at hand rather than of the machine they were
//! tuned on.

use std::sync::OnceLock;

/// Assumed where the OS does not say (the smallest L2 of current x86-64 and Arm server cores).
const FALLBACK: usize = 256 << 10;

/// Overrides the size read from the OS (bytes, or with a `K`/`M` suffix as sysfs writes it):
/// for virtual machines that report a wrong L2, and to try other block sizes.
pub const L2_ENV: &str = "MNFN_L2_BYTES";

/// Bytes of L2 cache per core: [`L2_ENV`], else Linux's `/sys/devices/system/cpu/cpu0/cache`,
/// else 256 KiB.
pub fn l2_bytes() -> usize {
    static L2: OnceLock<usize> = OnceLock::new();
    *L2.get_or_init(|| {
        if let Ok(v) = std::env::var(L2_ENV) {
            match parse_size(v.trim()) {
                Some(bytes) if bytes > 0 => return bytes,
                _ => log::warn!("{L2_ENV}={v:?} is not a size such as 524288, 512K or 1M; ignored"),
            }
        }
        read_l2().unwrap_or(FALLBACK)
    })
}

fn read_l2() -> Option<usize> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    dir.flatten().find_map(|entry| {
        let field = |name: &str| std::fs::read_to_string(entry.path().join(name)).ok();
        let level = field("level")?;
        let kind = field("type")?;
        if level.trim() != "2" || kind.trim() == "Instruction" {
            return None;
        }
        parse_size(field("size")?.trim())
    })
}

/// `512K`, `2M` or a plain byte count, as sysfs writes cache sizes.
fn parse_size(s: &str) -> Option<usize> {
    let (digits, scale) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1 << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        _ => (s, 1),
    };
    digits.parse::<usize>().ok()?.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sysfs_sizes_parse() {
        assert_eq!(super::parse_size("512K"), Some(512 << 10));
        assert_eq!(super::parse_size("2M"), Some(2 << 20));
        assert_eq!(super::parse_size("1024"), Some(1024));
        assert_eq!(super::parse_size("K"), None);
        assert_eq!(super::parse_size("x"), None);
        assert!(super::l2_bytes() >= 1 << 10);
    }
}
