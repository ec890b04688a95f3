"""What this machine can take: detection of CPUs, memory, cgroup limits and boards
(detect.py), the tuning that follows (recommend.py) and `mongars doctor` (cli.py).

Nothing is read at import; ``detect()`` reads a few small files under a root
(``/`` by default, a fake tree in tests)."""

from mongars.hardware.detect import Hardware, detect
from mongars.hardware.recommend import Recommendations, default_llm_threads, recommend

__all__ = ["Hardware", "Recommendations", "default_llm_threads", "detect", "recommend"]
