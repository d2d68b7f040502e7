//! Progress bars on stderr, drawn only when stderr is a terminal: one bar per layer, for
//! downloads (`cfsgate_oci::registry::FetchProgress`: the layer's bytes against its size) and
//! for imports and builds (`cfsgate_oci::Progress`: file content hashed, a spinner).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use cfsgate_oci::registry::{FetchProgress, NoFetchProgress};
use cfsgate_oci::{BlobDigest, Layer, NoProgress, Progress};
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a spinner redraws by itself (a large file can take seconds between updates).
const TICK: Duration = Duration::from_millis(120);

/// The bars of one command's layers.
pub struct LayerBars {
    multi: MultiProgress,
    /// How many layers the image has (shown as `layer N/LAYERS`).
    layers: usize,
    /// The bars by layer index, and the layer an import is applying (content goes to it).
    bars: Mutex<(HashMap<usize, ProgressBar>, Option<usize>)>,
}

impl LayerBars {
    /// Bars for an image of `layers` layers, or `None` when stderr is not a terminal.
    pub fn for_stderr(layers: usize) -> Option<Self> {
        std::io::stderr().is_terminal().then(|| LayerBars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            layers,
            bars: Mutex::new((HashMap::new(), None)),
        })
    }

    fn bars(&self) -> MutexGuard<'_, (HashMap<usize, ProgressBar>, Option<usize>)> {
        // Only bar handles live here: a panic elsewhere cannot leave them inconsistent.
        self.bars.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, index: usize, bar: ProgressBar) {
        let bar = self.multi.add(bar);
        let mut bars = self.bars();
        bars.0.insert(index, bar);
        bars.1 = Some(index);
    }
}

/// `bars` as an import's progress (nothing drawn without bars).
pub fn import_progress(bars: &Option<LayerBars>) -> &dyn Progress {
    match bars {
        Some(bars) => bars,
        None => &NoProgress,
    }
}

/// `bars` as a download's progress (nothing drawn without bars).
pub fn fetch_progress(bars: &Option<LayerBars>) -> &dyn FetchProgress {
    match bars {
        Some(bars) => bars,
        None => &NoFetchProgress,
    }
}

/// Remove the bars from the terminal (before the command's own output).
pub fn clear(bars: &Option<LayerBars>) {
    if let Some(bars) = bars {
        let _ = bars.multi.clear();
    }
}

impl Progress for LayerBars {
    fn layer_started(&self, index: usize, layer: &Layer) {
        let style = ProgressStyle::with_template(
            "{prefix} {spinner} {bytes} of file content hashed ({binary_bytes_per_sec}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::no_length().with_style(style);
        let short = layer.digest.hex();
        bar.set_prefix(format!(
            "layer {}/{} {}",
            index + 1,
            self.layers,
            &short[..12.min(short.len())]
        ));
        bar.set_message(format!("[{} compressed]", HumanBytes(layer.size)));
        bar.enable_steady_tick(TICK);
        self.add(index, bar);
    }

    fn content(&self, bytes: u64) {
        let bars = self.bars();
        if let Some(bar) = bars.1.and_then(|i| bars.0.get(&i)) {
            bar.inc(bytes);
        }
    }

    fn layer_done(&self, index: usize, _layer: &Layer) {
        if let Some(bar) = self.bars().0.remove(&index) {
            bar.finish_with_message("done");
        }
    }
}

impl FetchProgress for LayerBars {
    fn layer_started(&self, index: usize, digest: &BlobDigest, size: u64) {
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} ({binary_bytes_per_sec}, {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = ProgressBar::new(size).with_style(style.progress_chars("=> "));
        bar.set_prefix(format!("layer {} {}", index + 1, &digest.hex()[..12]));
        self.add(index, bar);
    }

    fn layer_bytes(&self, index: usize, bytes: u64) {
        if let Some(bar) = self.bars().0.get(&index) {
            bar.inc(bytes);
        }
    }

    fn layer_done(&self, index: usize, _downloaded: bool) {
        if let Some(bar) = self.bars().0.remove(&index) {
            bar.finish();
        }
    }
}
