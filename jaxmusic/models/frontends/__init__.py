"""Frontends: the encoder's input (a waveform crop, a piano-roll or
multitrack-roll crop, event tokens, a text's or a tag's bytes, a
sheet-music snippet) to a `BxFxC` frame sequence. One file an input;
each declares what it reads, its width, its frames per crop on the
collection's grid, its augmentations, its validation and its
reconstruction target (base.py).

The frame grid belongs to the prepared collection (its manifest's
`sample_rate` and `hop_length`, the run's `data.sample_rate` and
`data.hop_length`) and to the encoder (`frame_hop`): an encoder's hop is a
whole multiple of the collection's, so frame targets made on the
collection's frames are read at the encoder's (fairseq's `label_rate`:
HuBERT's 100 Hz MFCC codes at its 50 Hz frames). With the centred layouts
frame k of every frontend stands at sample k * hop, so the same seconds of
waveform, mel or piano roll give the same number of frames, and one set of
frame targets serves all three.

A new input is a file here and one line in FRONTENDS.
"""

from jaxmusic.models.frontends.base import Frontend
from jaxmusic.models.frontends.chroma import Chroma
from jaxmusic.models.frontends.image import Image
from jaxmusic.models.frontends.mel import Mel
from jaxmusic.models.frontends.multitrack import Multitrack
from jaxmusic.models.frontends.pianoroll import PianoRoll
from jaxmusic.models.frontends.tag import Tag
from jaxmusic.models.frontends.text import Text
from jaxmusic.models.frontends.tokens import Tokens
from jaxmusic.models.frontends.waveform import CENTRED_KERNELS
from jaxmusic.models.frontends.waveform import CENTRED_STRIDES
from jaxmusic.models.frontends.waveform import FAIRSEQ_KERNELS
from jaxmusic.models.frontends.waveform import FAIRSEQ_STRIDES
from jaxmusic.models.frontends.waveform import receptive_field
from jaxmusic.models.frontends.waveform import Waveform

__all__ = ["Chroma", "Frontend", "Image", "Mel", "Multitrack", "PianoRoll",
           "Tag", "Text", "Tokens",
           "CENTRED_KERNELS", "CENTRED_STRIDES", "FAIRSEQ_KERNELS",
           "FAIRSEQ_STRIDES", "receptive_field", "Waveform"]

FRONTENDS: dict[str, type[Frontend]] = {
    "waveform": Waveform,
    "mel": Mel,
    "chroma": Chroma,
    "pianoroll": PianoRoll,
    "multitrack": Multitrack,
    "text": Text,
    "tag": Tag,
    "tokens": Tokens,
    "image": Image,
}
