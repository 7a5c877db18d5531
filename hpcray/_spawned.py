"""Entry point of the workers the embedded default spawns (``python -m hpcray._spawned PID``)."""
import sys

from .job import serve_spawned

if __name__ == "__main__":
    serve_spawned(int(sys.argv[1]))
