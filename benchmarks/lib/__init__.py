"""Libraries of the benchmark modules (not benchmarks themselves).

``linalg_kernels`` (our batched linear-algebra kernels; their CUDA/Metal
source text is in ``kernels/``), ``transformer_mlx`` (the MLX encoders),
``model_inputs`` (texts, tokenizers, reference models; shipped data in
``data/``) and ``timing`` (the timing loop of what times their callables
without asv). They live inside ``benchmarks/`` because asv's runner makes only
the benchmark package importable.
"""
