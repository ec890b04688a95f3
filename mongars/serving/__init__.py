"""The Ray Serve application: the embedded llama.cpp model behind HTTP, on replicas
that Ray Serve scales (docs/scale-out.md). The ``ray`` provider (mongars/llm/ray.py)
is its client; both speak :mod:`.protocol`."""
