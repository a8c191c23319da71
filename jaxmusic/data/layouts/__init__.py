"""Benchmark datasets in the layouts they are distributed in, each with its
official split: a module a dataset, registered here by source name."""

from jaxmusic.data.layouts import dcase2018_task5
from jaxmusic.data.layouts import emomusic
from jaxmusic.data.layouts import giantsteps_key
from jaxmusic.data.layouts import gtzan_filtered
from jaxmusic.data.layouts import mtg_jamendo
from jaxmusic.data.layouts import nsynth
from jaxmusic.data.layouts import vocalset

SOURCES = {
    "emomusic": emomusic.read,
    "giantsteps_key": giantsteps_key.read,
    "gtzan_filtered": gtzan_filtered.read,
    "nsynth": nsynth.read,
    **dcase2018_task5.SOURCES,
    **mtg_jamendo.SOURCES,
    **vocalset.SOURCES,
}
