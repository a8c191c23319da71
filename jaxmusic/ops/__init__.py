"""Backend-specific fast paths, each behind one config switch
(`config.model.impl`: `auto` picks them on CPU in float32) and tested against
the plain version it replaces (tests/test_ops.py).

  samplecnn_cpu   SampleCNN for XLA:CPU (Winograd convs, fused BN/ReLU/pool)
  grouped_conv    the transformer's positional conv, with an im2col kernel
                  gradient
"""
