"""Backend-specific fast paths, each behind one config switch and tested
against the plain model it replaces (tests/test_ops.py).

  samplecnn_cpu   SampleCNN for XLA:CPU (`config.model.impl`)
"""
