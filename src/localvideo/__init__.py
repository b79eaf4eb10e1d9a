"""localvideo: local AI video — observe your own screen, or synthesize clips on your GPU."""

__version__ = "0.1.0"
