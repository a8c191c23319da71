"""Foreign checkpoint formats, one file each, both directions:
`transformers.py` (HubertModel, Wav2Vec2Model, MERT's port). `runs.py`
turns them into jaxmusic run directories and back."""
