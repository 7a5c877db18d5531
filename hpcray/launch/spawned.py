"""Entry point of the workers the embedded default spawns
(``python -m hpcray.launch.spawned DRIVER_PID``)."""
import sys

from .embedded import serve_spawned

if __name__ == "__main__":
    serve_spawned(int(sys.argv[1]))
