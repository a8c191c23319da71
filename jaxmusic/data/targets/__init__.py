"""Frame targets for masked prediction, stored beside a prepared collection.

A target set holds, for every segment record of every split, `C x N` int16
codes on the features' frame grid (N = frames_per_segment, frame k at
sample k * hop): C codebooks, each an id below K. It lives in
`PREPARED/targets/NAME/SPLIT.npy` (records x C x N, memory-mapped), and the
manifest names it under "targets" with K, C, the source and the run. The
`frames` pipeline reads a target crop with the same `span` as the input
crop, so targets and inputs cannot drift out of alignment.

Three ways to make one:

  k-means     MiniBatchKMeans on an acoustic feature (`mfcc`: 13 MFCC
              with delta and delta-delta, 39-d, as HuBERT's first
              iteration; `logmel`, `cqt` in dB, `chroma`, `key_chroma`:
              chroma relative to the track's estimated key), or for MIDI
              collections on the piano roll itself (`pianoroll`: 128
              velocities; `roll_chroma`: 12 pitch classes; `roll_texture`:
              what stays when the music is transposed: polyphony, onsets,
              pitch span, loudness and the chord's interval classes;
              `roll_key_chroma`: pitch classes relative to the track's
              estimated key). The fit reads a `fit_fraction` of train
              frames through a fixed-size reservoir (memory bounded by
              `max_fit_frames`, whatever the collection size), then every
              frame of every split is assigned. With `standardize`, each
              dimension is z-scored over the fit's sample first (its
              scale kept beside the centroids): raw MFCC clusters mostly
              c0, the loudness.
  from a run  the same k-means on a trained run's layer-L frame outputs
              (HuBERT's second iteration), streamed segment by segment.
  import      codes computed elsewhere (EnCodec's 8 x 1024 at 75 Hz, ...):
              one `.npy` per track id, resampled to the frame grid.

Assignment is resumable: progress is recorded per split and track, and a
finished fit (`centroids.npy`) is reused.
"""

from jaxmusic.data.targets.frames import acoustic_frames
from jaxmusic.data.targets.frames import estimate_tonic
from jaxmusic.data.targets.frames import key_relative
from jaxmusic.data.targets.frames import pitch_classes
from jaxmusic.data.targets.frames import roll_texture
from jaxmusic.data.targets.kmeans import assign
from jaxmusic.data.targets.kmeans import fit_kmeans
from jaxmusic.data.targets.kmeans import Reservoir
from jaxmusic.data.targets.kmeans import standardize
from jaxmusic.data.targets.kmeans import usage
from jaxmusic.data.targets.kmeans import usage_line
from jaxmusic.data.targets.names import ACOUSTIC
from jaxmusic.data.targets.names import default_name
from jaxmusic.data.targets.names import KMeansSpec
from jaxmusic.data.targets.names import parse_default_name
from jaxmusic.data.targets.names import SOURCES
from jaxmusic.data.targets.names import store_dir
from jaxmusic.data.targets.names import SYMBOLIC
from jaxmusic.data.targets.names import TARGETS_DIR
from jaxmusic.data.targets.store import acoustic_targets
from jaxmusic.data.targets.store import import_targets
from jaxmusic.data.targets.store import kmeans_targets
from jaxmusic.data.targets.store import write_codes

__all__ = ["acoustic_frames", "estimate_tonic", "key_relative",
           "pitch_classes", "roll_texture", "assign", "fit_kmeans",
           "Reservoir", "standardize", "usage", "usage_line", "ACOUSTIC",
           "default_name", "KMeansSpec", "parse_default_name", "SOURCES",
           "store_dir", "SYMBOLIC", "TARGETS_DIR", "acoustic_targets",
           "import_targets", "kmeans_targets", "write_codes"]
