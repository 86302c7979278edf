//! Progress bars on long work (zoo and INR generation, training): indicatif with the `progress`
//! feature (on for the `mnfn` binary), silent without it, so the library needs no terminal crate.

use crate::error::{Error, Result};

/// A progress bar, or nothing when hidden or built without the `progress` feature.
pub struct Bar {
    #[cfg(feature = "progress")]
    bar: indicatif::ProgressBar,
}

impl Bar {
    /// A bar of `len` steps drawn with an indicatif `template` when `show` is set.
    pub fn new(show: bool, len: u64, template: &str) -> Result<Self> {
        #[cfg(feature = "progress")]
        {
            let bar = if show {
                let b = indicatif::ProgressBar::new(len);
                b.set_style(
                    indicatif::ProgressStyle::with_template(template)
                        .map_err(|e| Error::Input(format!("progress template: {e}")))?,
                );
                b
            } else {
                indicatif::ProgressBar::hidden()
            };
            Ok(Bar { bar })
        }
        #[cfg(not(feature = "progress"))]
        {
            let _ = (show, len, template, Error::Input);
            Ok(Bar {})
        }
    }

    /// Advances by `n` steps.
    pub fn inc(&self, n: u64) {
        #[cfg(feature = "progress")]
        self.bar.inc(n);
        #[cfg(not(feature = "progress"))]
        let _ = n;
    }

    /// Shows `msg` beside the bar.
    pub fn set_message(&self, msg: String) {
        #[cfg(feature = "progress")]
        self.bar.set_message(msg);
        #[cfg(not(feature = "progress"))]
        let _ = msg;
    }

    /// Removes the bar.
    pub fn finish_and_clear(&self) {
        #[cfg(feature = "progress")]
        self.bar.finish_and_clear();
    }
}
