"""The tag frontend: the name of one of a track's tags (data/tags.py), as
UTF-8 bytes through the text frontend's byte embedding: the word side of
zero-shot tagging, which can read a word it never saw in training."""

from jaxmusic.data import tags
from jaxmusic.models.frontends.text import Text


class Tag(Text):
  """`BxL` byte ids of a tag's name -> `BxLxdim` (Text)."""
  FEATURE = tags.FEATURE
