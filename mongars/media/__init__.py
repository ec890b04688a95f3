"""Image input (BLIP captions) and speech audio (espeak-ng)."""
